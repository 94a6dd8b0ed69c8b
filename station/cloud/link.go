// Package cloud is the station's MQTT link to the cloud (docs/protocol.md): a persistent session
// with QoS 1 for jobs, retained presence with a last will, request/reply for badge lookups and
// releases, and a reconnect loop with capped, jittered backoff that resynchronises after every
// reconnect.
package cloud

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"labelstation/protocol"
	"labelstation/station/trust"
)

// Sentinel errors callers branch on.
var (
	// ErrOffline means the broker is not reachable now; nothing was sent.
	ErrOffline = errors.New("cloud: offline")
	// ErrTimeout means a request was sent but no reply came in time.
	ErrTimeout = errors.New("cloud: no reply in time")
)

// Opener verifies a sealed cloud → station message and returns the message inside; settle
// records it in the replay window once it was acted on, or releases it when it was left with the
// broker (station/trust.Verifier).
type Opener interface {
	Open(ctx context.Context, topic string, payload []byte) (msg []byte, settle func(acted bool) error, err error)
}

var _ Opener = (*trust.Verifier)(nil)

// Options configures a Link.
type Options struct {
	Broker    string // mqtts://host:port; tcp:// or mqtt:// only to loopback or with AllowInsecure
	StationID string
	// Verify opens every message on a cloud → station leaf before anything decodes it.
	Verify Opener
	// TLS is the client config for mqtts:// (the private CA of cloud.ca_file); nil: system roots.
	TLS *tls.Config
	// AllowInsecure permits a cleartext broker that is not on loopback (cloud.allow_insecure).
	AllowInsecure bool
	// KeyWait bounds how long a message waits for the cloud's keys when the station has none
	// yet, trying every KeyRetry; zero means 2 min and 5 s.
	KeyWait, KeyRetry time.Duration
	// Password returns the current access token; called on every (re)connect.
	Password func(ctx context.Context) (string, error)
	// OnNotAuthorized is called when the broker refuses the credentials, so the token source
	// refreshes before the next attempt.
	OnNotAuthorized func()
	// OnJob is called for every job message. The message is acknowledged to the broker only
	// when OnJob returns nil, so a job is never lost between the broker and the journal.
	OnJob func(protocol.Job) error
	// OnConfig and OnCommand receive fleet config and commands.
	OnConfig  func(protocol.ConfigDesired)
	OnCommand func(protocol.Command)
	// OnOnline is called with true after each (re)connect and subscription, false when lost.
	OnOnline func(bool)
	// Version is reported in presence.
	Version string
	// RequestTimeout bounds Lookup and Release; zero means 5 s.
	RequestTimeout time.Duration
	// MinBackoff and MaxBackoff bound the reconnect delay; zero means 250 ms and 30 s.
	MinBackoff, MaxBackoff time.Duration
	Now                    func() time.Time
	Logger                 *slog.Logger
}

// Link is a station's connection to the cloud.
type Link struct {
	opt    Options
	client paho.Client
	log    *slog.Logger
	lost   chan struct{}

	// connMu orders onConnect (which paho runs on its own goroutine) against shutdown, so the
	// goodbye presence is always the last one published.
	connMu  sync.Mutex
	closing bool
	closed  chan struct{} // closed at shutdown: handlers waiting for keys give up

	// handlers counts route calls under way; shutdown waits for them, so nothing is written to
	// the state directory (the replay window) after Run returned.
	handlers sync.WaitGroup

	mu      sync.Mutex
	online  bool
	state   string
	pending map[string]chan []byte

	refusedMu   sync.Mutex
	refusedSeen map[string]time.Time // refusal key → when first logged
	refusedWin  time.Time            // start of the current minute of refusals
	refusedN    int                  // refusals logged in it
}

// New builds a link; Run connects it.
func New(opt Options) (*Link, error) {
	if opt.Broker == "" || opt.StationID == "" || opt.Password == nil || opt.OnJob == nil || opt.Verify == nil {
		return nil, errors.New("cloud: Broker, StationID, Password, OnJob and Verify are required")
	}
	if err := trust.CheckTransport(opt.Broker, opt.AllowInsecure); err != nil {
		return nil, fmt.Errorf("cloud: broker: %w", err)
	}
	if opt.RequestTimeout == 0 {
		opt.RequestTimeout = 5 * time.Second
	}
	if opt.MinBackoff == 0 {
		opt.MinBackoff = 250 * time.Millisecond
	}
	if opt.MaxBackoff == 0 {
		opt.MaxBackoff = 30 * time.Second
	}
	if opt.KeyWait == 0 {
		opt.KeyWait = 2 * time.Minute
	}
	if opt.KeyRetry == 0 {
		opt.KeyRetry = 5 * time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	l := &Link{closed: make(chan struct{}), opt: opt, log: opt.Logger, lost: make(chan struct{}, 1), pending: map[string]chan []byte{}, state: "idle",
		refusedSeen: map[string]time.Time{}}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	will, _ := json.Marshal(protocol.Presence{V: protocol.Version, Station: opt.StationID, Online: false})
	o := paho.NewClientOptions().
		AddBroker(opt.Broker).
		SetClientID(opt.StationID).
		SetCleanSession(false). // persistent session: QoS 1 jobs wait for us while offline
		SetOrderMatters(false). // handlers publish; ordered handlers would deadlock paho
		SetAutoAckDisabled(true).
		SetAutoReconnect(false). // our loop reconnects, with jitter
		SetConnectRetry(false).
		SetConnectTimeout(10*time.Second).
		SetWriteTimeout(10*time.Second).
		SetKeepAlive(30*time.Second).
		SetWill(protocol.StationTopic(opt.StationID, protocol.LeafPresence), string(will), 1, true).
		SetCredentialsProvider(func() (string, string) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			tok, err := opt.Password(ctx)
			if err != nil {
				l.log.Warn("cloud: no access token for the broker", "err", err)
				return opt.StationID, ""
			}
			return opt.StationID, tok
		}).
		SetTLSConfig(opt.TLS).
		SetOnConnectHandler(l.onConnect).
		// Queued QoS 1 messages of the persistent session can arrive before the subscription
		// is renewed; without a default handler paho would drop them.
		SetDefaultPublishHandler(l.route).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			l.log.Warn("cloud: connection lost", "err", err)
			l.setOnline(false)
			select {
			case l.lost <- struct{}{}:
			default:
			}
		})
	l.client = paho.NewClient(o)
	return l, nil
}

// Run connects and keeps the link up until ctx ends, then says goodbye (offline presence).
func (l *Link) Run(ctx context.Context) error {
	backoff := l.opt.MinBackoff
	for {
		t := l.client.Connect()
		var err error
		select {
		case <-t.Done():
			err = t.Error()
		case <-ctx.Done():
			l.shutdown()
			return nil
		}
		if err == nil {
			backoff = l.opt.MinBackoff
			select {
			case <-l.lost:
				continue
			case <-ctx.Done():
				l.shutdown()
				return nil
			}
		}
		if errors.Is(err, packets.ErrorRefusedNotAuthorised) || errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword) {
			l.log.Warn("cloud: broker refused the token; refreshing it", "err", err)
			if l.opt.OnNotAuthorized != nil {
				l.opt.OnNotAuthorized()
			}
		} else {
			l.log.Info("cloud: connect failed", "broker", l.opt.Broker, "err", err, "retry_in", backoff)
		}
		// Full jitter (0.5–1.5 × backoff) so a fleet that lost its broker does not reconnect in step.
		d := backoff/2 + time.Duration(mrand.Int64N(int64(backoff)+1))
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil
		}
		backoff = min(backoff*2, l.opt.MaxBackoff)
	}
}

func (l *Link) shutdown() {
	l.connMu.Lock()
	defer l.connMu.Unlock()
	l.closing = true
	close(l.closed)
	if l.client.IsConnectionOpen() {
		if err := l.publish(protocol.LeafPresence, true, protocol.Presence{V: protocol.Version, Station: l.opt.StationID, Online: false, TS: l.opt.Now()}); err != nil {
			l.log.Warn("cloud: goodbye presence not sent; the broker's last will says offline instead", "err", err)
		}
	} else {
		l.log.Info("cloud: not connected at shutdown; the last will announces offline")
	}
	l.client.Disconnect(250)
	l.setOnline(false)
	idle := make(chan struct{})
	go func() { l.handlers.Wait(); close(idle) }()
	select {
	case <-idle:
	case <-time.After(10 * time.Second):
		// A handler stuck in OnJob: its job is not acknowledged and comes again.
		l.log.Error("cloud: message handlers still running at shutdown")
	}
}

func (l *Link) setOnline(up bool) {
	l.mu.Lock()
	changed := l.online != up
	l.online = up
	l.mu.Unlock()
	if changed && l.opt.OnOnline != nil {
		l.opt.OnOnline(up)
	}
}

// Online reports whether the link is connected and subscribed.
func (l *Link) Online() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.online
}

// onConnect subscribes (again: a broker that lost our session forgets subscriptions) and
// announces presence, then tells the station so it re-sends unreported job status.
func (l *Link) onConnect(c paho.Client) {
	l.connMu.Lock()
	defer l.connMu.Unlock()
	if l.closing {
		return
	}
	t := c.Subscribe(protocol.StationFilter(l.opt.StationID), 1, l.route)
	if !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		l.log.Error("cloud: subscribe failed", "err", t.Error())
		c.Disconnect(0)
		select {
		case l.lost <- struct{}{}:
		default:
		}
		return
	}
	l.mu.Lock()
	state := l.state
	l.mu.Unlock()
	if err := l.publish(protocol.LeafPresence, true, protocol.Presence{V: protocol.Version, Station: l.opt.StationID, Online: true, State: state, Version: l.opt.Version, TS: l.opt.Now()}); err != nil {
		l.log.Warn("cloud: presence", "err", err)
	}
	l.log.Info("cloud: online", "broker", l.opt.Broker, "station", l.opt.StationID)
	l.setOnline(true)
}

// route is the one place cloud → station messages enter the station. Every message on a cloud →
// station leaf (protocol.FromCloud, so a leaf added later too) is verified before anything
// decodes it; what fails is acknowledged, so it cannot clog the session, logged once and
// reported on the event leaf, and never acted on.
func (l *Link) route(_ paho.Client, m paho.Message) {
	l.handlers.Add(1)
	defer l.handlers.Done()
	_, leaf, err := protocol.Addressee(m.Topic())
	if err != nil || protocol.FromStation(leaf) {
		// Outside our tree, or our own station → cloud message echoed by the subscription.
		m.Ack()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.opt.KeyWait)
	defer cancel()
	payload, settle, err := l.opt.Verify.Open(ctx, m.Topic(), m.Payload())
	for errors.Is(err, trust.ErrKeysUnavailable) {
		// Not a verdict on the message: the station has no key set at all yet (first boot
		// with the issuer unreachable). Try again for a while; after that it stays
		// unacknowledged and the broker delivers it again on the next connection.
		l.log.Warn("cloud: message held until the cloud's keys can be fetched", "topic", m.Topic(), "err", err)
		select {
		case <-time.After(l.opt.KeyRetry):
		case <-ctx.Done():
			l.log.Error("cloud: message left with the broker: the cloud's keys cannot be fetched", "topic", m.Topic())
			return
		case <-l.closed:
			return
		}
		payload, settle, err = l.opt.Verify.Open(ctx, m.Topic(), m.Payload())
	}
	if err != nil {
		l.refuse(m.Topic(), leaf, m.Payload(), err)
		m.Ack()
		return
	}
	done := func() {
		if err := settle(true); err != nil {
			l.log.Error("cloud: replay window not saved", "topic", m.Topic(), "err", err)
		}
	}
	switch leaf {
	case protocol.LeafJob:
		var j protocol.Job
		if err := protocol.Decode(payload, &j); err != nil {
			l.log.Error("cloud: undecodable job dropped", "err", err)
			break
		}
		if err := l.opt.OnJob(j); err != nil {
			// Not acknowledged: the broker redelivers it on the next connection.
			l.log.Error("cloud: job not accepted; leaving it with the broker", "job", j.ID, "err", err)
			settle(false)
			return
		}
	case protocol.LeafLookupReply, protocol.LeafReleaseReply:
		var head struct {
			Req string `json:"req"`
		}
		if json.Unmarshal(payload, &head) == nil {
			l.mu.Lock()
			ch := l.pending[head.Req]
			delete(l.pending, head.Req)
			l.mu.Unlock()
			if ch != nil {
				ch <- payload
			}
		}
	case protocol.LeafConfigDesired:
		// Recorded first: a crash while applying it leaves the retained document to be applied
		// again (same id), while an older one stays refused.
		done()
		done = func() {}
		var d protocol.ConfigDesired
		if err := protocol.Decode(payload, &d); err != nil {
			l.log.Error("cloud: undecodable config dropped", "err", err)
		} else if l.opt.OnConfig != nil {
			l.opt.OnConfig(d)
		}
	case protocol.LeafCmd:
		// Recorded before it runs: a reboot must not be replayable once the station is back.
		done()
		done = func() {}
		var c protocol.Command
		if err := protocol.Decode(payload, &c); err != nil {
			l.log.Error("cloud: undecodable command dropped", "err", err)
		} else if l.opt.OnCommand != nil {
			l.opt.OnCommand(c)
		}
	}
	// Acknowledged first: a crash in between leaves the id out of the window, harmless, where the
	// other order would refuse the broker's redelivery as a replay.
	m.Ack()
	done()
}

// refuse logs and reports a message that failed verification, once per message (a broker
// redelivering it does not repeat the log) and at most refusalsPerMinute times a minute.
func (l *Link) refuse(topic, leaf string, payload []byte, verr error) {
	ev := protocol.Event{V: protocol.Version, Kind: protocol.EventRefused, Leaf: leaf, Topic: topic,
		ID: claimedID(payload), Reason: protocol.Reason(verr), Error: verr.Error(), TS: l.opt.Now()}
	key := topic + "|" + ev.Reason + "|" + ev.ID
	now := l.opt.Now()
	l.refusedMu.Lock()
	_, seen := l.refusedSeen[key]
	if now.Sub(l.refusedWin) >= time.Minute || now.Before(l.refusedWin) {
		l.refusedWin, l.refusedN = now, 0
	}
	quiet := seen || l.refusedN >= refusalsPerMinute
	if !quiet {
		l.refusedN++
		if len(l.refusedSeen) >= 1000 {
			clear(l.refusedSeen)
		}
		l.refusedSeen[key] = now
	}
	l.refusedMu.Unlock()
	if quiet {
		return
	}
	l.log.Warn("cloud: message refused", "topic", topic, "reason", ev.Reason, "id", ev.ID, "err", verr)
	if err := l.publish(protocol.LeafEvent, false, ev); err != nil {
		l.log.Info("cloud: refusal not reported", "err", err)
	}
}

// refusalsPerMinute bounds the log and the reports when someone floods the station.
const refusalsPerMinute = 20

// claimedID is the job id, command id or config version a message says it carries, unverified,
// so the fleet manager can tell what was refused.
func claimedID(payload []byte) string {
	var head struct {
		ID      string `json:"id"`
		Version string `json:"version"`
		Req     string `json:"req"`
	}
	json.Unmarshal(protocol.Unverified(payload), &head)
	id := cmp.Or(head.ID, head.Version, head.Req)
	if len(id) > 64 {
		id = id[:64]
	}
	return id
}

func (l *Link) publish(leaf string, retained bool, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("cloud: marshal %s: %w", leaf, err)
	}
	t := l.client.Publish(protocol.StationTopic(l.opt.StationID, leaf), 1, retained, b)
	if !t.WaitTimeout(l.opt.RequestTimeout) {
		return fmt.Errorf("cloud: publish %s: %w", leaf, ErrTimeout)
	}
	if err := t.Error(); err != nil {
		return fmt.Errorf("cloud: publish %s: %w", leaf, err)
	}
	return nil
}

func newReq() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// request publishes v on leaf and waits for the reply carrying the same req id.
func (l *Link) request(ctx context.Context, leaf, req string, v any, reply any) error {
	if !l.Online() {
		return ErrOffline
	}
	ch := make(chan []byte, 1)
	l.mu.Lock()
	l.pending[req] = ch
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.pending, req)
		l.mu.Unlock()
	}()
	if err := l.publish(leaf, false, v); err != nil {
		if !l.Online() {
			return fmt.Errorf("%w: %v", ErrOffline, err)
		}
		return err
	}
	timer := time.NewTimer(l.opt.RequestTimeout)
	defer timer.Stop()
	select {
	case b := <-ch:
		return protocol.Decode(b, reply)
	case <-timer.C:
		return fmt.Errorf("cloud: %s: %w", leaf, ErrTimeout)
	case <-ctx.Done():
		return fmt.Errorf("cloud: %s: %w", leaf, ctx.Err())
	}
}

// Lookup asks for the held jobs of the badge's owner. badge is the keyed hash, never the UID.
func (l *Link) Lookup(ctx context.Context, badge string) (protocol.LookupReply, error) {
	req := protocol.LookupRequest{V: protocol.Version, Req: newReq(), Badge: badge}
	var rep protocol.LookupReply
	err := l.request(ctx, protocol.LeafLookup, req.Req, req, &rep)
	return rep, err
}

// Release releases jobs of the badge's owner to this station; they arrive through OnJob.
func (l *Link) Release(ctx context.Context, badge string, jobs []string) (protocol.ReleaseReply, error) {
	req := protocol.ReleaseRequest{V: protocol.Version, Req: newReq(), Badge: badge, Jobs: jobs}
	var rep protocol.ReleaseReply
	err := l.request(ctx, protocol.LeafRelease, req.Req, req, &rep)
	return rep, err
}

// Report publishes a job status with QoS 1 and waits for the broker's acknowledgement.
func (l *Link) Report(st protocol.JobStatus) error {
	if !l.Online() {
		return ErrOffline
	}
	st.V = protocol.Version
	return l.publish(protocol.LeafJobStatus, false, st)
}

// ReportConfig publishes (retained) what config the station applied.
func (l *Link) ReportConfig(r protocol.ConfigReported) error {
	if !l.Online() {
		return ErrOffline
	}
	r.V = protocol.Version
	return l.publish(protocol.LeafConfigReported, true, r)
}

// ReportCommand answers a command.
func (l *Link) ReportCommand(r protocol.CommandResult) error {
	if !l.Online() {
		return ErrOffline
	}
	r.V = protocol.Version
	return l.publish(protocol.LeafCmdResult, false, r)
}

// SetState updates the state announced in presence (on the next connect, and now if online).
func (l *Link) SetState(state string) {
	l.mu.Lock()
	changed := l.state != state
	l.state = state
	l.mu.Unlock()
	if changed && l.Online() {
		go func() {
			l.connMu.Lock()
			defer l.connMu.Unlock()
			if !l.closing {
				l.publish(protocol.LeafPresence, true, protocol.Presence{V: protocol.Version, Station: l.opt.StationID, Online: true, State: state, Version: l.opt.Version, TS: l.opt.Now()})
			}
		}()
	}
}
