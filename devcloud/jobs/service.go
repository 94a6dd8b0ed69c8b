package jobs

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"labelstation/devcloud/badgelink"
	"labelstation/devcloud/records"
	"labelstation/devcloud/seed"
	"labelstation/protocol"
)

// Options configures the job service.
type Options struct {
	Seed *seed.Seed
	// Broker is the MQTT broker URL (tcp://host:port); the service is an ordinary client, so
	// devcloud runs as well against an external broker.
	Broker             string
	Username, Password string
	// ClientID is the service's MQTT client id; empty means "devcloud-jobs". Two devclouds on
	// one broker need different ids, or they take each other's session over.
	ClientID string
	// ShareGroup, if set, subscribes to stations' requests as a member of this MQTT shared
	// subscription group ($share/GROUP/...): the broker hands each request to one of the job
	// service replicas in the group, so they run side by side on one store. Each replica then
	// needs its own ClientID, and uses a clean session: a dead replica's queue would otherwise
	// hold requests until it came back.
	ShareGroup string
	// VerifyUser checks a user's access token (Submit Print Job) and returns the user id.
	VerifyUser func(ctx context.Context, token string) (string, error)
	// VerifyCaller, if set, is used instead of VerifyUser: it also names the application
	// acting for the user, whose secret signs the job's callbacks.
	VerifyCaller func(ctx context.Context, token string) (Caller, error)
	// Apps finds applications' callback secrets and retention; nil: none is registered, and a
	// submission with a callback URL is refused.
	Apps Apps
	// API sets retention, rate limits and callbacks.
	API APIOptions
	// TLS is the client TLS config for an mqtts:// Broker.
	TLS *tls.Config
	// BadgeKey keys the badge hash (protocol.BadgeHash); stations receive it in fleet config.
	BadgeKey []byte
	// Store keeps the jobs; nil means a fresh in-memory store. The service does not close it.
	Store Store
	// Records is where state beside the jobs is kept (devcloud passes the store's records);
	// nil means in memory.
	Records records.Store
	// Sealer signs every message to a station (protocol.Seal); its public key is in the
	// issuer's JWKS.
	Sealer *protocol.Sealer
	// OnFleetMessage, if set, receives every station's presence, config report, command
	// result and telemetry (the fleet registry); the service then pushes no config itself.
	OnFleetMessage func(topic string, payload []byte)
	Now            func() time.Time
	Logger         *slog.Logger
	// Submit sets the job API's limits and what submissions are validated for.
	Submit SubmitOptions
	// BadgeLinkURL is the page where a person confirms linking a badge (badge/link); empty
	// refuses link requests. BadgeLinkTTL is how long a code lives; zero means 5 minutes.
	BadgeLinkURL string
	BadgeLinkTTL time.Duration
}

// Service is the job service.
type Service struct {
	seed       *seed.Seed
	store      Store
	verifyUser func(ctx context.Context, token string) (string, error)
	badgeKey   []byte
	badges     map[string]string // badge hash → user id
	links      *badgelink.Registry
	now        func() time.Time
	log        *slog.Logger
	opt        Options
	client     paho.Client
	sealer     atomic.Pointer[protocol.Sealer]

	submitCfg submitState
	api       apiState

	mu         sync.Mutex
	events     map[string][]protocol.Event // station → its latest reports on the event leaf
	eventsCh   chan struct{}               // closed and replaced when one arrives
	configSent map[string]bool
	online     bool
	changed    chan struct{} // closed and replaced when online changes
}

// New builds the service; Start connects it to the broker.
func New(opt Options) (*Service, error) {
	if opt.Seed == nil || (opt.VerifyUser == nil && opt.VerifyCaller == nil) || len(opt.BadgeKey) < 16 || opt.Sealer == nil {
		return nil, errors.New("jobs: Seed, VerifyUser (or VerifyCaller), Sealer and a BadgeKey of at least 16 bytes are required")
	}
	s := &Service{
		seed: opt.Seed, store: opt.Store, verifyUser: opt.VerifyUser, badgeKey: opt.BadgeKey,
		badges: map[string]string{}, now: opt.Now, log: opt.Logger, opt: opt, configSent: map[string]bool{},
		changed: make(chan struct{}), events: map[string][]protocol.Event{}, eventsCh: make(chan struct{}),
	}
	if s.store == nil {
		s.store = NewMemStore()
	}
	if s.opt.Records == nil {
		s.opt.Records = records.NewMem()
	}
	s.sealer.Store(opt.Sealer)
	if s.now == nil {
		s.now = time.Now
	}
	if s.opt.ClientID == "" {
		s.opt.ClientID = "devcloud-jobs"
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if err := s.submitCfg.init(opt.Submit); err != nil {
		return nil, err
	}
	if err := s.initAPI(opt.API); err != nil {
		return nil, err
	}
	for _, u := range opt.Seed.Users {
		for _, b := range u.Badges {
			s.badges[protocol.BadgeHash(opt.BadgeKey, b)] = u.ID
		}
	}
	s.links = newBadgeLinks(s)
	return s, nil
}

// Records returns where state beside the jobs is kept, for the service's other parts.
func (s *Service) Records() records.Store { return s.opt.Records }

// Store exposes the job store (for devcloud's status page and tests).
func (s *Service) Store() Store { return s.store }

// Start connects to the broker and subscribes to every station's requests. It returns once the
// first connection is up; paho reconnects by itself afterwards and OnConnect resubscribes.
func (s *Service) Start(ctx context.Context) error {
	o := paho.NewClientOptions().
		AddBroker(s.opt.Broker).
		SetClientID(s.opt.ClientID).
		SetUsername(s.opt.Username).
		SetPassword(s.opt.Password).
		SetCleanSession(s.opt.ShareGroup != "").
		SetTLSConfig(s.opt.TLS).
		SetOrderMatters(false). // handlers publish replies; ordered handlers would deadlock paho
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(500 * time.Millisecond).
		SetMaxReconnectInterval(5 * time.Second).
		// paho's default waits 30 s for a CONNACK; a broker that accepted the TCP connection
		// while restarting may never send one, and the service would be deaf for that long.
		SetConnectTimeout(5 * time.Second).
		SetOnConnectHandler(func(c paho.Client) {
			s.subscribe(c)
			s.setOnline(true)
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			s.log.Warn("jobs: broker connection lost", "err", err)
			s.setOnline(false)
		})
	s.client = paho.NewClient(o)
	tok := s.client.Connect()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("jobs: connect %s: %w", s.opt.Broker, err)
		}
	case <-ctx.Done():
		s.client.Disconnect(0)
		return fmt.Errorf("jobs: connect %s: %w", s.opt.Broker, ctx.Err())
	}
	s.StartBackground()
	return nil
}

func (s *Service) setOnline(up bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.online != up {
		s.online = up
		close(s.changed)
		s.changed = make(chan struct{})
	}
}

// WaitOnline returns once the service is connected and subscribed (after a broker restart, say).
func (s *Service) WaitOnline(ctx context.Context) error {
	for {
		s.mu.Lock()
		up, ch := s.online, s.changed
		s.mu.Unlock()
		if up {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("jobs: not connected to %s: %w", s.opt.Broker, ctx.Err())
		}
	}
}

// Close stops the sweeper and the callback sender and disconnects from the broker.
func (s *Service) Close() {
	s.stopBackground()
	if s.client != nil {
		s.client.Disconnect(250)
	}
}

func (s *Service) subscribe(c paho.Client) {
	subs := map[string]paho.MessageHandler{
		protocol.AllStations(protocol.LeafLookup):         s.onLookup,
		protocol.AllStations(protocol.LeafRelease):        s.onRelease,
		protocol.AllStations(protocol.LeafJobStatus):      s.onStatus,
		protocol.AllStations(protocol.LeafPresence):       s.onPresence,
		protocol.AllStations(protocol.LeafConfigReported): s.onConfigReported,
		protocol.AllStations(protocol.LeafEvent):          s.onEvent,
		protocol.AllStations(protocol.LeafBadgeLink):      s.onBadgeLink,
	}
	if s.opt.OnFleetMessage != nil {
		fwd := func(_ paho.Client, m paho.Message) { s.opt.OnFleetMessage(m.Topic(), m.Payload()) }
		subs[protocol.AllStations(protocol.LeafCmdResult)] = fwd
		subs[protocol.AllStations(protocol.LeafTelemetry)] = fwd
	}
	for filter, h := range subs {
		if s.opt.ShareGroup != "" {
			filter = "$share/" + s.opt.ShareGroup + "/" + filter
		}
		t := c.Subscribe(filter, 1, h)
		if !t.WaitTimeout(10*time.Second) || t.Error() != nil {
			s.log.Error("jobs: subscribe failed", "filter", filter, "err", t.Error())
		}
	}
}

// Publish sends a message to the broker as the cloud (the fleet registry publishes through it).
func (s *Service) Publish(topic string, retained bool, v any) error {
	return s.publish(topic, retained, v)
}

// SetSealer switches the signing key (a rotation: publish the new key in the JWKS first).
func (s *Service) SetSealer(sl *protocol.Sealer) { s.sealer.Store(sl) }

// publish is the one path by which the cloud talks to stations: every message on a cloud →
// station leaf, of a station or a group, leaves it sealed.
func (s *Service) publish(topic string, retained bool, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("jobs: marshal %s: %w", topic, err)
	}
	if _, leaf, err := protocol.Addressee(topic); err == nil && protocol.FromCloud(leaf) {
		if b, err = s.sealer.Load().Seal(topic, b); err != nil {
			return fmt.Errorf("jobs: seal %s: %w", topic, err)
		}
	}
	t := s.client.Publish(topic, 1, retained, b)
	if !t.WaitTimeout(10 * time.Second) {
		return fmt.Errorf("jobs: publish %s: timed out", topic)
	}
	if err := t.Error(); err != nil {
		return fmt.Errorf("jobs: publish %s: %w", topic, err)
	}
	return nil
}

// decode reads a message from a station's subtree; the broker's ACL guarantees the topic's
// station id is the sender's.
func decode[T any](s *Service, m paho.Message) (station string, v T, ok bool) {
	station, leaf, err := protocol.ParseStationTopic(m.Topic())
	if err != nil {
		return "", v, false
	}
	if err := protocol.Decode(m.Payload(), &v); err != nil {
		s.log.Info("jobs: undecodable message", "station", station, "leaf", leaf, "err", err)
		return "", v, false
	}
	return station, v, true
}

// userByBadge finds who a badge belongs to; an error is the store's (the badge may be linked).
func (s *Service) userByBadge(hash string) (seed.User, bool, error) {
	id, ok, err := s.links.Owner(hash)
	if err != nil || !ok {
		return seed.User{}, false, err
	}
	u, err := s.seed.UserByID(id)
	return u, err == nil, nil
}

func (s *Service) onLookup(_ paho.Client, m paho.Message) {
	station, req, ok := decode[protocol.LookupRequest](s, m)
	if !ok {
		return
	}
	rep := protocol.LookupReply{V: protocol.Version, Req: req.Req, Jobs: []protocol.JobSummary{}}
	if u, ok, err := s.userByBadge(req.Badge); err != nil {
		s.log.Error("jobs: badge lookup", "station", station, "err", err)
		rep.Error = replyError(err)
	} else if !ok {
		rep.Error = &protocol.Error{Code: protocol.CodeUnknownBadge, Message: "this badge is not registered"}
	} else {
		rep.User = &protocol.User{ID: u.ID, Name: u.Name}
		held, err := s.store.List(u.ID, StateHeld)
		if err != nil {
			s.log.Error("jobs: store", "station", station, "err", err)
			rep.Error = replyError(err)
		}
		now := s.now()
		for _, j := range held {
			if j.expired(now) {
				continue // the sweeper has not marked it yet; Release would refuse it
			}
			rep.Jobs = append(rep.Jobs, protocol.JobSummary{ID: j.ID, Title: j.Title, Labels: j.Labels, Submitted: j.Created, Expires: j.Expires})
		}
	}
	if err := s.publish(protocol.StationTopic(station, protocol.LeafLookupReply), false, rep); err != nil {
		s.log.Error("jobs: lookup reply", "station", station, "err", err)
	}
}

func (s *Service) onRelease(_ paho.Client, m paho.Message) {
	station, req, ok := decode[protocol.ReleaseRequest](s, m)
	if !ok {
		return
	}
	if req.All {
		s.releaseAll(station, req)
		return
	}
	rep := protocol.ReleaseReply{V: protocol.Version, Req: req.Req, Released: []string{}}
	u, ok, err := s.userByBadge(req.Badge)
	if err != nil {
		s.log.Error("jobs: badge lookup", "station", station, "err", err)
		rep.Error = replyError(err)
	} else if !ok {
		rep.Error = &protocol.Error{Code: protocol.CodeUnknownBadge, Message: "this badge is not registered"}
	} else {
		released, err := s.store.Release(u.ID, station, req.Jobs, s.now())
		if err != nil {
			// Nothing was released: the transaction rolled back, the jobs stay held.
			s.log.Error("jobs: store", "station", station, "err", err)
			rep.Error = replyError(err)
		}
		for _, j := range released {
			msg := s.jobMessage(station, u, j)
			if err := s.publish(protocol.StationTopic(station, protocol.LeafJob), false, msg); err != nil {
				// The persistent session still holds it if the broker accepted it; log and go on.
				s.log.Error("jobs: send job", "station", station, "job", j.ID, "err", err)
			}
			rep.Released = append(rep.Released, j.ID)
		}
	}
	if err := s.publish(protocol.StationTopic(station, protocol.LeafReleaseReply), false, rep); err != nil {
		s.log.Error("jobs: release reply", "station", station, "err", err)
	}
}

// jobMessage is the job message that delivers released job j of user u to station.
func (s *Service) jobMessage(station string, u seed.User, j Job) protocol.Job {
	format, data, err := deliverable(j.DataFormat, j.Data)
	if err != nil {
		// Validated at submit, so this should not happen; the station fails the job
		// with its own reason rather than the job vanishing here.
		s.log.Error("jobs: converting the job's data", "station", station, "job", j.ID, "err", err)
		format, data = j.DataFormat, j.Data
	}
	return protocol.Job{
		V: protocol.Version, ID: j.ID, Title: j.Title, User: protocol.User{ID: u.ID, Name: u.Name},
		Layout: s.seed.Layouts[j.Layout].Raw, Format: format, Data: data, Labels: j.Labels,
		Expires: j.Expires,
	}
}

func (s *Service) onStatus(_ paho.Client, m paho.Message) {
	station, st, ok := decode[protocol.JobStatus](s, m)
	if !ok {
		return
	}
	j, changed, err := s.store.ApplyStatus(station, st.Job, st.State, st.Printed, st.Seq, st.Error, s.now())
	ack := protocol.JobStatusAck{V: protocol.Version, Job: st.Job, State: st.State, Seq: st.Seq}
	if errors.Is(err, ErrBusy) {
		// Not stored: no acknowledgement, so the station sends it again.
		s.log.Warn("jobs: status not stored, store busy; the station will resend", "station", station, "job", st.Job)
		return
	}
	if err != nil {
		// Refusals are final (unknown job, another station's job): say so, or the station would
		// resend the status forever.
		s.log.Info("jobs: status refused", "station", station, "job", st.Job, "err", err)
		ack.Error = err.Error()
	} else if changed {
		s.log.Info("jobs: status", "station", station, "job", j.ID, "state", j.State, "printed", j.Printed, "of", j.Labels)
		s.callbackQueued()
	}
	// Acknowledged only now that the store holds it; a repeat (same or older seq) is
	// acknowledged again, since the station resends until it hears this.
	if err := s.publish(protocol.StationTopic(station, protocol.LeafJobStatusAck), false, ack); err != nil {
		s.log.Warn("jobs: status ack not sent; the station will resend", "station", station, "job", st.Job, "err", err)
	}
}

// onPresence hands a station its fleet config the first time this process sees it online.
func (s *Service) onPresence(_ paho.Client, m paho.Message) {
	station, p, ok := decode[protocol.Presence](s, m)
	if !ok {
		return
	}
	s.log.Info("jobs: presence", "station", station, "online", p.Online, "state", p.State)
	if s.opt.OnFleetMessage != nil {
		s.opt.OnFleetMessage(m.Topic(), m.Payload())
		return
	}
	if !p.Online {
		return
	}
	s.mu.Lock()
	sent := s.configSent[station]
	s.configSent[station] = true
	s.mu.Unlock()
	if sent {
		return
	}
	if err := s.PushConfig(station, s.DefaultFleetConfig()); err != nil {
		s.log.Error("jobs: push config", "station", station, "err", err)
	}
}

// DefaultFleetConfig is the fleet config devcloud gives every station: the badge hash key.
func (s *Service) DefaultFleetConfig() json.RawMessage {
	b, _ := json.Marshal(map[string]any{"v": 1, "badge": map[string]any{"hash_key": hex.EncodeToString(s.badgeKey)}})
	return b
}

// PushConfig publishes a retained desired config for one station.
func (s *Service) PushConfig(station string, cfg json.RawMessage) error {
	d := protocol.ConfigDesired{V: protocol.Version, Version: s.now().UnixNano(), Config: cfg}
	return s.publish(protocol.StationTopic(station, protocol.LeafConfigDesired), true, d)
}

func (s *Service) onConfigReported(_ paho.Client, m paho.Message) {
	station, r, ok := decode[protocol.ConfigReported](s, m)
	if !ok {
		return
	}
	s.log.Info("jobs: config reported", "station", station, "version", r.Version, "applied", r.Applied, "error", r.Error)
	if s.opt.OnFleetMessage != nil {
		s.opt.OnFleetMessage(m.Topic(), m.Payload())
	}
}

// storeError tells a station the cloud could not read or change its jobs; the user may tap again.
var storeError = &protocol.Error{Code: protocol.CodeInternal, Message: "the job store is unavailable; try again"}

// maxEvents is how many reports per station the service keeps for the fleet manager.
const maxEvents = 100

// onEvent records what a station refused: a forged, replayed or misaddressed message means
// someone else publishes on the station's topics, which the fleet manager must hear about.
func (s *Service) onEvent(_ paho.Client, m paho.Message) {
	station, ev, ok := decode[protocol.Event](s, m)
	if !ok {
		return
	}
	s.log.Warn("jobs: station refused a message", "station", station, "kind", ev.Kind, "leaf", ev.Leaf,
		"id", ev.ID, "reason", ev.Reason, "err", ev.Error)
	s.mu.Lock()
	defer s.mu.Unlock()
	all := append(s.events[station], ev)
	if len(all) > maxEvents {
		all = all[len(all)-maxEvents:]
	}
	s.events[station] = all
	close(s.eventsCh)
	s.eventsCh = make(chan struct{})
}

// Events returns the latest events station reported.
func (s *Service) Events(station string) []protocol.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]protocol.Event(nil), s.events[station]...)
}

// WaitEvents waits until station has reported at least n events.
func (s *Service) WaitEvents(ctx context.Context, station string, n int) ([]protocol.Event, error) {
	for {
		s.mu.Lock()
		all, ch := s.events[station], s.eventsCh
		s.mu.Unlock()
		if len(all) >= n {
			return append([]protocol.Event(nil), all...), nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return all, fmt.Errorf("jobs: %d events from %s, want %d: %w", len(all), station, n, ctx.Err())
		}
	}
}
