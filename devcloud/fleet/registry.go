// Package fleet is devcloud's fleet manager: a registry of stations (presence, versions,
// printer state, telemetry, the config they report) fed by their MQTT messages, desired config
// per station and per group, group membership, commands and their results, and the HTTP API
// fleet managers and stationctl use (http.go).
package fleet

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"labelstation/devcloud/records"
	"labelstation/protocol"
)

// Options configures a Registry.
type Options struct {
	// Publish sends a message to the broker (the job service's publish path).
	Publish func(topic string, retained bool, v any) error
	// DefaultConfig is the station document a station gets the first time it is seen.
	DefaultConfig json.RawMessage
	// InitialGroup, if set, names the group of a station seen for the first time (devcloud:
	// the seed's group of its serial).
	InitialGroup func(station string) string
	// OnGroupSet, if set, hears every membership change before the station is told, so the
	// broker lets the station subscribe to its new group (devcloud: Cloud.SetGroups).
	OnGroupSet func(station, group string)
	// Records, if set, keeps stations, desired documents and commands across restarts; New
	// loads what it holds. Nil keeps them in memory only.
	Records records.Store
	Now     func() time.Time
	Logger  *slog.Logger
}

// Doc is a desired document of a station or a group.
type Doc struct {
	Version int64           `json:"version"`
	Config  json.RawMessage `json:"config"`
}

// Station is what the registry knows of one station.
type Station struct {
	ID        string                   `json:"id"`
	Group     string                   `json:"group,omitempty"`
	Online    bool                     `json:"online"`
	Boot      int64                    `json:"boot,omitempty"`
	State     string                   `json:"state,omitempty"`
	Version   string                   `json:"version,omitempty"`
	LastSeen  time.Time                `json:"last_seen,omitzero"`
	Desired   *Doc                     `json:"desired,omitempty"`
	Reported  *protocol.ConfigReported `json:"reported,omitempty"`
	Telemetry *protocol.Telemetry      `json:"telemetry,omitempty"`
}

// Command is a command sent through the API and the answers it got, per station.
type Command struct {
	ID      string                            `json:"id"`
	Target  string                            `json:"target"` // station id or group:NAME
	Name    string                            `json:"name"`
	Args    json.RawMessage                   `json:"args,omitempty"`
	Expires time.Time                         `json:"expires,omitzero"`
	Sent    time.Time                         `json:"sent"`
	Members []string                          `json:"members"` // the stations expected to answer
	Results map[string]protocol.CommandResult `json:"results"`
}

// Event is one entry of the live stream.
type Event struct {
	Kind    string `json:"kind"` // presence, stale_presence, config, command, telemetry, desired
	Station string `json:"station,omitempty"`
	Group   string `json:"group,omitempty"`
	Data    any    `json:"data"`
}

// Registry is the fleet's state, in memory and, with Options.Records, written through to the
// store on every change.
type Registry struct {
	opt Options
	log *slog.Logger

	mu       sync.Mutex
	stations map[string]*Station
	groups   map[string]*Doc
	cmds     map[string]*Command
	subs     map[chan Event]struct{}
}

// New builds a registry.
func New(opt Options) (*Registry, error) {
	if opt.Publish == nil {
		return nil, errors.New("fleet: Publish is required")
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.DefaultConfig == nil {
		opt.DefaultConfig = json.RawMessage(`{"v":1}`)
	}
	r := &Registry{opt: opt, log: opt.Logger, stations: map[string]*Station{}, groups: map[string]*Doc{}, cmds: map[string]*Command{}, subs: map[chan Event]struct{}{}}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

// Filters are the topics the registry's Handle wants.
func Filters() []string {
	return []string{
		protocol.AllStations(protocol.LeafPresence), protocol.AllStations(protocol.LeafConfigReported),
		protocol.AllStations(protocol.LeafCmdResult), protocol.AllStations(protocol.LeafTelemetry),
	}
}

// Groups returns the groups a station belongs to (the broker's ACL asks).
func (r *Registry) Groups(station string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st := r.stations[station]; st != nil && st.Group != "" {
		return []string{st.Group}
	}
	return nil
}

// nextVersion keeps versions increasing across devcloud restarts (the registry is in memory,
// stations remember the last version they applied): the clock in milliseconds, or one more.
func (r *Registry) nextVersion(prev int64) int64 {
	return max(prev+1, r.opt.Now().UnixMilli())
}

func (r *Registry) station(id string) *Station {
	st := r.stations[id]
	if st == nil {
		st = &Station{ID: id}
		r.stations[id] = st
	}
	return st
}

// Handle takes one message from a station; bad ones are logged and dropped.
func (r *Registry) Handle(topic string, payload []byte) {
	id, leaf, err := protocol.ParseStationTopic(topic)
	if err != nil || !protocol.ValidName(id) {
		return
	}
	switch leaf {
	case protocol.LeafPresence:
		var p protocol.Presence
		if r.decode(id, leaf, payload, &p) {
			r.presence(id, p)
		}
	case protocol.LeafConfigReported:
		var c protocol.ConfigReported
		if r.decode(id, leaf, payload, &c) {
			r.mu.Lock()
			st := r.station(id)
			// Reports may arrive out of order (concurrent handlers): an older one never
			// replaces a newer one.
			if st.Reported == nil || !c.TS.Before(st.Reported.TS) {
				st.Reported = &c
			}
			st.LastSeen = r.opt.Now()
			r.saveStationLocked(st)
			r.mu.Unlock()
			r.emit(Event{Kind: "config", Station: id, Data: c})
		}
	case protocol.LeafCmdResult:
		var c protocol.CommandResult
		if r.decode(id, leaf, payload, &c) {
			r.mu.Lock()
			// Answers may arrive out of order (the cloud handles messages concurrently):
			// "accepted" never replaces the final answer.
			if cmd := r.cmds[c.ID]; cmd != nil && slices.Contains(cmd.Members, id) {
				if prev, ok := cmd.Results[id]; !ok || prev.Status == protocol.CmdAccepted || prev.Status == "" {
					cmd.Results[id] = c
					r.saveCommandLocked(cmd)
				}
			}
			st := r.station(id)
			st.LastSeen = r.opt.Now()
			r.saveStationLocked(st)
			r.mu.Unlock()
			r.emit(Event{Kind: "command", Station: id, Data: c})
		}
	case protocol.LeafTelemetry:
		var t protocol.Telemetry
		if r.decode(id, leaf, payload, &t) {
			r.mu.Lock()
			st := r.station(id)
			st.Telemetry, st.LastSeen = &t, r.opt.Now()
			r.saveStationLocked(st)
			r.mu.Unlock()
			r.emit(Event{Kind: "telemetry", Station: id, Data: t})
		}
	}
}

func (r *Registry) decode(id, leaf string, b []byte, v any) bool {
	if err := protocol.Decode(b, v); err != nil {
		r.log.Warn("fleet: undecodable message", "station", id, "leaf", leaf, "err", err)
		return false
	}
	return true
}

// presence records a station's presence. One from an older boot than the newest seen — the
// will of a connection the broker noticed dead only after the station came back — is ignored.
func (r *Registry) presence(id string, p protocol.Presence) {
	r.mu.Lock()
	st := r.station(id)
	if p.Boot != 0 && p.Boot < st.Boot {
		r.mu.Unlock()
		r.log.Info("fleet: presence of an older boot ignored", "station", id, "boot", p.Boot, "current", st.Boot)
		r.emit(Event{Kind: "stale_presence", Station: id, Data: p})
		return
	}
	st.Boot = max(st.Boot, p.Boot)
	st.Online, st.LastSeen = p.Online, r.opt.Now()
	if p.State != "" {
		st.State = p.State
	}
	if p.Version != "" {
		st.Version = p.Version
	}
	first := p.Online && st.Desired == nil
	var d protocol.ConfigDesired
	if first {
		if st.Group == "" && r.opt.InitialGroup != nil {
			st.Group = r.opt.InitialGroup(id)
		}
		st.Desired = &Doc{Version: r.nextVersion(0), Config: r.opt.DefaultConfig}
		d = protocol.ConfigDesired{V: protocol.Version, Version: st.Desired.Version, Config: st.Desired.Config, Group: st.Group}
	}
	r.saveStationLocked(st)
	snap := *st
	r.mu.Unlock()
	r.emit(Event{Kind: "presence", Station: id, Data: snap})
	if first {
		if err := r.opt.Publish(protocol.StationTopic(id, protocol.LeafConfigDesired), true, d); err != nil {
			r.log.Error("fleet: first config", "station", id, "err", err)
		}
	}
}

// Stations lists every known station, by id.
func (r *Registry) Stations() []Station {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Station, 0, len(r.stations))
	for _, id := range slices.Sorted(maps.Keys(r.stations)) {
		out = append(out, *r.stations[id])
	}
	return out
}

// Get returns one station.
func (r *Registry) Get(id string) (Station, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.stations[id]
	if st == nil {
		return Station{}, false
	}
	return *st, true
}

// Members lists the stations of a group.
func (r *Registry) Members(group string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.membersLocked(group)
}

func (r *Registry) membersLocked(group string) []string {
	var out []string
	for id, st := range r.stations {
		if st.Group == group {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// StationDoc returns a station's desired document; a station not configured yet has the
// default one, so a first merge patch keeps what every station gets (the badge key).
func (r *Registry) StationDoc(id string) Doc {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st := r.stations[id]; st != nil && st.Desired != nil {
		return *st.Desired
	}
	return Doc{Config: r.opt.DefaultConfig}
}

// GroupDoc returns a group's desired document.
func (r *Registry) GroupDoc(group string) (Doc, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.groups[group]
	if d == nil {
		return Doc{}, false
	}
	return *d, true
}

// SetStationConfig replaces a station's desired document and publishes it (retained).
func (r *Registry) SetStationConfig(id string, cfg json.RawMessage) (Doc, error) {
	return r.updateStation(id, func(st *Station) { st.Desired.Config = cfg })
}

// SetGroup puts a station in a group ("" for none): its own document names the group, so the
// station follows the group's config and commands from the next version on.
func (r *Registry) SetGroup(id, group string) (Doc, error) {
	if group != "" && !protocol.ValidName(group) {
		return Doc{}, fmt.Errorf("fleet: group %q: want 1-64 letters, digits, '-', '_' or '.'", group)
	}
	if r.opt.OnGroupSet != nil && protocol.ValidName(id) {
		r.opt.OnGroupSet(id, group)
	}
	return r.updateStation(id, func(st *Station) { st.Group = group })
}

func (r *Registry) updateStation(id string, change func(*Station)) (Doc, error) {
	if !protocol.ValidName(id) {
		return Doc{}, fmt.Errorf("fleet: station %q: not a station id", id)
	}
	r.mu.Lock()
	st := r.station(id)
	if st.Desired == nil {
		st.Desired = &Doc{Config: r.opt.DefaultConfig}
	}
	prev, prevDoc := *st, *st.Desired
	change(st)
	st.Desired.Version = r.nextVersion(st.Desired.Version)
	doc := *st.Desired
	d := protocol.ConfigDesired{V: protocol.Version, Version: doc.Version, Config: doc.Config, Group: st.Group}
	if err := r.saveStationLocked(st); err != nil {
		// Not stored, so not published: a restart would otherwise forget what stations run.
		*st = prev
		*st.Desired = prevDoc
		r.mu.Unlock()
		return Doc{}, err
	}
	r.mu.Unlock()
	r.emit(Event{Kind: "desired", Station: id, Data: doc})
	if err := r.opt.Publish(protocol.StationTopic(id, protocol.LeafConfigDesired), true, d); err != nil {
		return doc, err
	}
	return doc, nil
}

// SetGroupConfig replaces a group's desired document and publishes it (retained).
func (r *Registry) SetGroupConfig(group string, cfg json.RawMessage) (Doc, error) {
	if !protocol.ValidName(group) {
		return Doc{}, fmt.Errorf("fleet: group %q: want 1-64 letters, digits, '-', '_' or '.'", group)
	}
	r.mu.Lock()
	prev := int64(0)
	if d := r.groups[group]; d != nil {
		prev = d.Version
	}
	doc := Doc{Version: r.nextVersion(prev), Config: cfg}
	if err := r.save(kindGroup, group, doc); err != nil {
		r.mu.Unlock()
		return Doc{}, err
	}
	r.groups[group] = &doc
	r.mu.Unlock()
	r.emit(Event{Kind: "desired", Group: group, Data: doc})
	err := r.opt.Publish(protocol.GroupTopic(group, protocol.LeafConfigDesired), true, protocol.ConfigDesired{V: protocol.Version, Version: doc.Version, Config: cfg})
	return doc, err
}

// Send publishes a command to a station or to every member of a group ("group:NAME").
func (r *Registry) Send(target, id, name string, args json.RawMessage, ttl time.Duration) (Command, error) {
	if !slices.Contains(protocol.Commands, name) {
		return Command{}, fmt.Errorf("fleet: unknown command %q (known: %v)", name, protocol.Commands)
	}
	now := r.opt.Now()
	c := &Command{ID: id, Target: target, Name: name, Args: args, Sent: now, Results: map[string]protocol.CommandResult{}}
	if ttl > 0 {
		c.Expires = now.Add(ttl)
	}
	topic := ""
	r.mu.Lock()
	if g, ok := cutGroup(target); ok {
		if !protocol.ValidName(g) {
			r.mu.Unlock()
			return Command{}, fmt.Errorf("fleet: group %q: not a group name", g)
		}
		c.Members = r.membersLocked(g)
		topic = protocol.GroupTopic(g, protocol.LeafCmd)
	} else {
		if !protocol.ValidName(target) {
			r.mu.Unlock()
			return Command{}, fmt.Errorf("fleet: station %q: not a station id", target)
		}
		c.Members = []string{target}
		topic = protocol.StationTopic(target, protocol.LeafCmd)
	}
	if err := r.saveCommandLocked(c); err != nil {
		r.mu.Unlock()
		return Command{}, err
	}
	r.cmds[id] = c
	snap := *c
	r.mu.Unlock()
	msg := protocol.Command{V: protocol.Version, ID: id, Name: name, Args: args, Expires: c.Expires}
	if err := r.opt.Publish(topic, false, msg); err != nil {
		return snap, err
	}
	return snap, nil
}

// CommandStatus returns a command and its answers so far.
func (r *Registry) CommandStatus(id string) (Command, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.cmds[id]
	if c == nil {
		return Command{}, false
	}
	snap := *c
	snap.Results = maps.Clone(c.Results)
	return snap, true
}

func cutGroup(target string) (string, bool) {
	if len(target) > 6 && target[:6] == "group:" {
		return target[6:], true
	}
	return "", false
}

// Subscribe returns a channel of live events; cancel ends it. A subscriber too slow to keep
// up loses events rather than slowing the registry down.
func (r *Registry) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event, 64)
	r.mu.Lock()
	r.subs[ch] = struct{}{}
	r.mu.Unlock()
	return ch, func() {
		r.mu.Lock()
		delete(r.subs, ch)
		r.mu.Unlock()
	}
}

func (r *Registry) emit(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for ch := range r.subs {
		select {
		case ch <- e:
		default:
		}
	}
}
