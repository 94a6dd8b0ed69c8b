package fleet

import (
	"fmt"
	"maps"
	"slices"

	"labelstation/devcloud/records"
	"labelstation/protocol"
)

// Record kinds of the registry.
const (
	kindStation = "fleet.station"
	kindGroup   = "fleet.group"
	kindCommand = "fleet.command"
)

// load fills the registry from its records.
func (r *Registry) load() error {
	if r.opt.Records == nil {
		return nil
	}
	stations, err := records.ListJSON[Station](r.opt.Records, kindStation)
	if err != nil {
		return fmt.Errorf("fleet: load stations: %w", err)
	}
	for id, st := range stations {
		r.stations[id] = &st
	}
	groups, err := records.ListJSON[Doc](r.opt.Records, kindGroup)
	if err != nil {
		return fmt.Errorf("fleet: load groups: %w", err)
	}
	for g, d := range groups {
		r.groups[g] = &d
	}
	cmds, err := records.ListJSON[Command](r.opt.Records, kindCommand)
	if err != nil {
		return fmt.Errorf("fleet: load commands: %w", err)
	}
	for id, c := range cmds {
		if c.Results == nil {
			c.Results = map[string]protocol.CommandResult{}
		}
		r.cmds[id] = &c
	}
	return nil
}

// save writes one record; without Records it does nothing.
func (r *Registry) save(kind, key string, v any) error {
	if r.opt.Records == nil {
		return nil
	}
	if err := records.PutJSON(r.opt.Records, kind, key, v); err != nil {
		return fmt.Errorf("fleet: store %s %q: %w", kind, key, err)
	}
	return nil
}

// saveStationLocked stores a station as it is now. A failure is logged: the station's own
// messages keep coming and the next one stores it again.
func (r *Registry) saveStationLocked(st *Station) error {
	err := r.save(kindStation, st.ID, st)
	if err != nil {
		r.log.Error("fleet: station not stored", "station", st.ID, "err", err)
	}
	return err
}

func (r *Registry) saveCommandLocked(c *Command) error {
	err := r.save(kindCommand, c.ID, c)
	if err != nil {
		r.log.Error("fleet: command not stored", "command", c.ID, "err", err)
	}
	return err
}

// Republish sends every stored desired document again, retained: after a restart of a broker
// that kept no retained messages, a station or group member subscribing later still finds its
// config. Stations ignore a version they already applied.
func (r *Registry) Republish() error {
	type msg struct {
		topic string
		d     protocol.ConfigDesired
	}
	var out []msg
	r.mu.Lock()
	for _, id := range slices.Sorted(maps.Keys(r.stations)) {
		st := r.stations[id]
		if st.Desired != nil {
			out = append(out, msg{protocol.StationTopic(id, protocol.LeafConfigDesired),
				protocol.ConfigDesired{V: protocol.Version, Version: st.Desired.Version, Config: st.Desired.Config, Group: st.Group}})
		}
	}
	for _, g := range slices.Sorted(maps.Keys(r.groups)) {
		d := r.groups[g]
		out = append(out, msg{protocol.GroupTopic(g, protocol.LeafConfigDesired),
			protocol.ConfigDesired{V: protocol.Version, Version: d.Version, Config: d.Config}})
	}
	r.mu.Unlock()
	var errs []error
	for _, m := range out {
		if err := r.opt.Publish(m.topic, true, m.d); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("fleet: republish: %d of %d documents: %w", len(errs), len(out), errs[0])
	}
	return nil
}
