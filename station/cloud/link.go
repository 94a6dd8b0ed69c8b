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
	"net"
	"net/url"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"labelstation/internal/supervise"
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
	// OnJob is called for every job message; it returns once the job is journaled, and only
	// then is the message acknowledged to the broker, so a job is never lost between the
	// broker and the journal.
	OnJob func(protocol.Job) error
	// OnReject is called for a job message the station will not print: undecodable (id is ""
	// when even the id is unreadable) or refused by OnJob. The message is acknowledged anyway:
	// an unacknowledged message holds a slot of the broker's in-flight window (Mosquitto: 20)
	// for good, and enough of them make the station deaf. The station records and reports it.
	OnReject func(id string, reason error)
	// Outbox holds the job statuses the job service has not acknowledged; the link sends them
	// (at once after Kick, all again after every reconnect, and again with a per-status
	// backoff from ResendMin to ResendMax) until a job/status/ack marks them reported.
	Outbox Outbox
	// ResendMin and ResendMax bound the resend backoff; zero means 2 s and 60 s.
	ResendMin, ResendMax time.Duration
	// OnStatusAck, if set, also sees every acknowledgement.
	OnStatusAck func(protocol.JobStatusAck)
	// OnConfig and OnCommand receive fleet config and commands.
	OnConfig  func(protocol.ConfigDesired)
	OnCommand func(protocol.Command)
	// OnBadgeLinked, if set, hears that someone confirmed a badge link code this station showed.
	OnBadgeLinked func(protocol.BadgeLinked)
	// OnGroupConfig receives the desired config of the station's group.
	OnGroupConfig func(group string, d protocol.ConfigDesired)
	// Group, if set, names the group whose config and commands the station follows; read at
	// every connect (SetGroup changes it while connected).
	Group func() string
	// Boot is the station's start counter, announced in presence and in the will.
	Boot int64
	// OnOnline is called with true after each (re)connect and subscription, false when lost.
	OnOnline func(bool)
	// Version is reported in presence.
	Version string
	// RequestTimeout bounds Lookup and Release; zero means 5 s.
	RequestTimeout time.Duration
	// MinBackoff and MaxBackoff bound the reconnect delay; zero means 250 ms and 30 s.
	MinBackoff, MaxBackoff time.Duration
	// Probe is how often the broker's TCP port is dialled while a reconnect waits out its
	// backoff after a network failure; a successful dial ends the wait and resets the
	// backoff, so the link is back within about Probe of the broker's return. Zero means 500 ms.
	Probe time.Duration
	// KeepAlive and PingTimeout detect a silently dead connection: a ping goes out after
	// KeepAlive without traffic and the link is declared lost PingTimeout later (plus paho's
	// check interval, KeepAlive/4). Zero means 4 s and 3 s: lost within about 9 s.
	KeepAlive, PingTimeout time.Duration
	Now                    func() time.Time
	Logger                 *slog.Logger
}

// Outbox is where job statuses wait for the job service's acknowledgement: durable (the
// station's journal), so a crash or a broker that forgets loses none.
type Outbox interface {
	// Unreported lists the latest unacknowledged status of each job, oldest job first.
	Unreported() ([]protocol.JobStatus, error)
	// MarkReported records the acknowledgement of the job's status with this seq.
	MarkReported(job string, seq int) error
}

// Link is a station's connection to the cloud.
type Link struct {
	opt      Options
	client   paho.Client
	log      *slog.Logger
	lost     chan struct{}
	kick     chan struct{} // a new status is in the outbox
	resync   chan struct{} // (re)connected: send every unacknowledged status again
	presence chan struct{} // the state changed

	// connMu orders onConnect (which paho runs on its own goroutine) against shutdown, so the
	// goodbye presence is always the last one published.
	connMu  sync.Mutex
	closing bool
	closed  chan struct{} // closed at shutdown: handlers waiting for keys give up

	// handlers counts route calls under way; shutdown waits for them, so nothing is written to
	// the state directory (the replay window) after Run returned.
	handlers sync.WaitGroup

	// probed is set by wait when a TCP probe ended it; only Run's goroutine touches it.
	probed bool

	mu      sync.Mutex
	online  bool
	state   string
	pending map[string]chan []byte

	refusedMu   sync.Mutex
	refusedSeen map[string]time.Time // refusal key → when first logged
	refusedWin  time.Time            // start of the current minute of refusals
	refusedN    int                  // refusals logged in it
	group       string               // the group wanted; guarded by mu
	// connGroup is the group onConnect subscribed to; guarded by mu. resubscribed tells
	// groupLoop about it.
	connGroup    string
	regroup      chan struct{}
	resubscribed chan struct{}
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
	if opt.ResendMin == 0 {
		opt.ResendMin = 2 * time.Second
	}
	if opt.ResendMax == 0 {
		opt.ResendMax = time.Minute
	}
	if opt.Probe == 0 {
		opt.Probe = 500 * time.Millisecond
	}
	if opt.KeepAlive == 0 {
		opt.KeepAlive = 4 * time.Second
	}
	if opt.PingTimeout == 0 {
		opt.PingTimeout = 3 * time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	l := &Link{opt: opt, log: opt.Logger, lost: make(chan struct{}, 1), kick: make(chan struct{}, 1), resync: make(chan struct{}, 1), presence: make(chan struct{}, 1), regroup: make(chan struct{}, 1), resubscribed: make(chan struct{}, 1), pending: map[string]chan []byte{}, state: "idle",
		closed: make(chan struct{}), refusedSeen: map[string]time.Time{}}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if opt.Group != nil {
		l.group = opt.Group()
	}
	will, _ := json.Marshal(protocol.Presence{V: protocol.Version, Station: opt.StationID, Online: false, Boot: opt.Boot})
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
		SetKeepAlive(opt.KeepAlive).
		SetPingTimeout(opt.PingTimeout).
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

// flapping is how long a connection must hold before its loss resets the reconnect backoff.
const flapping = 5 * time.Second

// Run connects and keeps the link up until ctx ends, then says goodbye (offline presence).
func (l *Link) Run(ctx context.Context) error {
	pctx, pcancel := context.WithCancel(ctx)
	pdone := make(chan struct{})
	go func() {
		defer close(pdone)
		supervise.Loop(pctx, l.log, "cloud: presence", supervise.Backoff{Max: 5 * time.Second}, func(ctx context.Context) error {
			l.presenceLoop(ctx)
			return ctx.Err()
		})
	}()
	defer func() { pcancel(); <-pdone }()
	gdone := make(chan struct{})
	go func() {
		defer close(gdone)
		supervise.Loop(pctx, l.log, "cloud: group", supervise.Backoff{Max: 5 * time.Second}, func(ctx context.Context) error {
			l.groupLoop(ctx)
			return ctx.Err()
		})
	}()
	defer func() { pcancel(); <-gdone }()
	if l.opt.Outbox != nil {
		octx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			supervise.Loop(octx, l.log, "cloud: status outbox", supervise.Backoff{Max: 5 * time.Second}, func(ctx context.Context) error {
				l.outbox(ctx)
				return ctx.Err()
			})
		}()
		defer func() { cancel(); <-done }()
	}
	b := supervise.Backoff{Min: l.opt.MinBackoff, Max: l.opt.MaxBackoff}
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
			up := time.Now()
			select {
			case <-l.lost:
			case <-ctx.Done():
				l.shutdown()
				return nil
			}
			// A connection that held is a fresh start; one the broker drops at once (a failed
			// subscription, a rejected session) backs off instead of spinning.
			if time.Since(up) >= flapping {
				b.Reset()
				continue
			}
			if !l.wait(ctx, b.Next(), true) {
				return nil
			}
			continue
		}
		refused := errors.Is(err, packets.ErrorRefusedNotAuthorised) || errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword)
		d, probing := l.delay(ctx, b.Next(), !refused)
		if refused {
			l.log.Warn("cloud: broker refused the token; refreshing it", "err", err)
			if l.opt.OnNotAuthorized != nil {
				l.opt.OnNotAuthorized()
			}
		} else {
			l.log.Info("cloud: connect failed", "broker", l.opt.Broker, "err", err, "retry_in", d)
		}
		if !l.waitFor(ctx, d, probing) {
			return nil
		}
		if l.probed {
			b.Reset()
		}
	}
}

// wait waits out a reconnect delay after a backoff of d (see delay).
func (l *Link) wait(ctx context.Context, d time.Duration, probe bool) bool {
	d, probing := l.delay(ctx, d, probe)
	return l.waitFor(ctx, d, probing)
}

// waitFor waits d, or while probing until the broker's port answers (setting l.probed).
func (l *Link) waitFor(ctx context.Context, d time.Duration, probing bool) bool {
	l.probed = false
	timer := time.NewTimer(d)
	defer timer.Stop()
	var tick <-chan time.Time
	if probing {
		t := time.NewTicker(l.opt.Probe)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
			return true
		case <-tick:
			if l.dial(ctx) {
				l.probed = true
				return true
			}
		}
	}
}

// portOpenWait bounds a reconnect delay while the broker's port accepts connections.
const portOpenWait = 3 * time.Second

// delay is how long to wait before the next connect after a backoff of d, and whether to probe
// meanwhile. When probe is set and the broker's port is unreachable, the wait dials it every
// Options.Probe and ends (setting l.probed) once it answers: the backoff grows during a long
// outage, but the link comes back as soon as the broker does. When the port answers although
// the connect failed (a middlebox that resets connections whose far side is gone, a broker
// that drops the session at once), a dial cannot tell when that ends, so the wait is capped
// at portOpenWait instead: back within that time of the broker's return, at one connect per
// portOpenWait meanwhile.
func (l *Link) delay(ctx context.Context, d time.Duration, probe bool) (time.Duration, bool) {
	if !probe {
		return d, false
	}
	if l.dial(ctx) {
		return min(d, portOpenWait), false
	}
	return d, true
}

// dial reports whether the broker's TCP port accepts a connection.
func (l *Link) dial(ctx context.Context) bool {
	addr := brokerAddr(l.opt.Broker)
	if addr == "" {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, max(l.opt.Probe, time.Second))
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// brokerAddr is the host:port of a broker URL, with the MQTT default ports.
func brokerAddr(broker string) string {
	u, err := url.Parse(broker)
	if err != nil || u.Hostname() == "" {
		return ""
	}
	if u.Port() != "" {
		return u.Host
	}
	port := "1883"
	switch u.Scheme {
	case "ssl", "tls", "mqtts", "tcps":
		port = "8883"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

func (l *Link) shutdown() {
	l.connMu.Lock()
	defer l.connMu.Unlock()
	l.closing = true
	close(l.closed)
	if l.client.IsConnectionOpen() {
		if err := l.publish(protocol.LeafPresence, true, protocol.Presence{V: protocol.Version, Station: l.opt.StationID, Online: false, Boot: l.opt.Boot, TS: l.opt.Now()}); err != nil {
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
	own := map[string]byte{protocol.StationFilter(l.opt.StationID): 1}
	var err error
	// A broker may refuse a SUBSCRIBE whose packet id collides with one of its own queued
	// deliveries to us (mochi answers 0x91 then); a second try carries a new id.
	for try := 0; try < 3; try++ {
		if err = subscribeAll(c, own, l.route, 10*time.Second); err == nil {
			break
		}
		l.log.Warn("cloud: subscribe refused; trying again", "try", try+1, "err", err)
	}
	if err != nil {
		l.log.Error("cloud: subscribe failed", "err", err)
		c.Disconnect(0)
		select {
		case l.lost <- struct{}{}:
		default:
		}
		return
	}
	l.mu.Lock()
	group := l.group
	l.mu.Unlock()
	if group != "" {
		if err := subscribeAll(c, groupFilters(group), l.route, 10*time.Second); err != nil {
			l.log.Error("cloud: group subscribe failed; retried at the next connect", "group", group, "err", err)
			group = ""
		}
	}
	l.mu.Lock()
	state := l.state
	l.connGroup = group
	l.mu.Unlock()
	signal(l.resubscribed)
	if err := l.publish(protocol.LeafPresence, true, protocol.Presence{V: protocol.Version, Station: l.opt.StationID, Online: true, State: state, Version: l.opt.Version, Boot: l.opt.Boot, TS: l.opt.Now()}); err != nil {
		l.log.Warn("cloud: presence", "err", err)
	}
	l.log.Info("cloud: online", "broker", l.opt.Broker, "station", l.opt.StationID)
	l.setOnline(true)
	signal(l.resync)
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Kick tells the link that the outbox holds a new status; it is sent without waiting for the
// resend timer. It never blocks.
func (l *Link) Kick() { signal(l.kick) }

// outbox sends unacknowledged statuses while online. A status is sent when it is new to the
// link, when its job has a newer seq (a final state at once, progress at most every
// ResendMin), and otherwise again after a backoff that doubles per unanswered send; a
// reconnect forgets that history and sends everything again.
func (l *Link) outbox(ctx context.Context) {
	type sent struct {
		seq, n int
		at     time.Time
	}
	last := map[string]sent{}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.kick:
		case <-l.resync:
			clear(last)
		case <-timer.C:
		}
		if !l.Online() {
			continue // onConnect signals resync
		}
		sts, err := l.opt.Outbox.Unreported()
		if err != nil {
			l.log.Error("cloud: status outbox", "err", err)
		}
		now := time.Now()
		seen := make(map[string]bool, len(sts))
		for _, st := range sts {
			seen[st.Job] = true
			p, ok := last[st.Job]
			var due bool
			switch {
			case !ok:
				due = true
			case p.seq != st.Seq:
				due = prompt(st.State) || now.Sub(p.at) >= l.opt.ResendMin
			default:
				due = now.Sub(p.at) >= min(l.opt.ResendMin<<min(p.n, 20), l.opt.ResendMax)
			}
			if !due {
				continue
			}
			if err := l.Report(st); err != nil {
				l.log.Info("cloud: status not sent; will resend", "job", st.Job, "seq", st.Seq, "err", err)
				break
			}
			n := 0
			if ok && p.seq == st.Seq {
				n = p.n + 1
			}
			last[st.Job] = sent{seq: st.Seq, n: n, at: now}
		}
		for id := range last {
			if !seen[id] {
				delete(last, id)
			}
		}
		if len(sts) > 0 {
			timer.Reset(min(l.opt.ResendMin, time.Second))
		}
	}
}

// prompt states are sent at once; progress waits for ResendMin.
func prompt(state string) bool {
	return state == protocol.JobPrinted || state == protocol.JobFailed || state == protocol.JobClaimed
}

// ack records the job service's acknowledgement in the outbox.
func (l *Link) ack(a protocol.JobStatusAck) {
	if a.Error != "" {
		l.log.Warn("cloud: the job service refused a status; not sending it again", "job", a.Job, "state", a.State, "seq", a.Seq, "reason", a.Error)
	}
	if l.opt.Outbox != nil {
		if err := l.opt.Outbox.MarkReported(a.Job, a.Seq); err != nil {
			l.log.Warn("cloud: status ack", "job", a.Job, "seq", a.Seq, "err", err)
		}
	}
	if l.opt.OnStatusAck != nil {
		l.opt.OnStatusAck(a)
	}
}

// route is the one place cloud → station messages enter the station. Every message on a cloud →
// station leaf (protocol.FromCloud, so a leaf added later too) is verified before anything
// decodes it; what fails is acknowledged, so it cannot clog the session, logged once and
// reported on the event leaf, and never acted on. A verified message is acknowledged once
// handled, and a panic in a handler is recovered and logged: paho would otherwise take the
// daemon down, or leave the message unacknowledged and the broker's in-flight window shrinking.
func (l *Link) route(_ paho.Client, m paho.Message) {
	l.handlers.Add(1)
	defer l.handlers.Done()
	_, leaf, err := protocol.Addressee(m.Topic())
	if err != nil || protocol.FromStation(leaf) {
		// Outside our tree, or our own station → cloud message echoed by the subscription.
		m.Ack()
		return
	}
	var payload []byte
	var settle func(bool) error
	ok := false
	if err := supervise.Safe(func() error { payload, settle, ok = l.open(m, leaf); return nil }); err != nil {
		// A message that makes verification panic is refused like any it cannot verify.
		supervise.Log(l.log, "cloud: message verification failed", err, "leaf", leaf)
		m.Ack()
		return
	}
	if !ok {
		return
	}
	record := func() {
		if err := settle(true); err != nil {
			l.log.Error("cloud: replay window not saved", "topic", m.Topic(), "err", err)
		}
	}
	// A command is recorded before it runs: a reboot must not be replayable once the station
	// is back. A config too: a crash while applying it leaves the retained document to be
	// applied again (same id), while an older one stays refused.
	first := leaf == protocol.LeafCmd || leaf == protocol.LeafConfigDesired
	if first {
		record()
	}
	handle := func() error { l.handle(leaf, payload); return nil }
	if group, gleaf, gerr := protocol.ParseGroupTopic(m.Topic()); gerr == nil {
		// Verified above against the group's audience, like a station message against ours.
		handle = func() error { l.handleGroup(group, gleaf, payload); return nil }
	}
	if err := supervise.Safe(handle); err != nil {
		supervise.Log(l.log, "cloud: message handler failed", err, "leaf", leaf)
		if leaf == protocol.LeafJob {
			l.reject(protocol.MessageID(payload), fmt.Errorf("cloud: job handler: %w", err))
		}
	}
	// Acknowledged before a job is recorded: a crash in between leaves the id out of the
	// window, harmless (the journal knows the job), where the other order would refuse the
	// broker's redelivery as a replay.
	m.Ack()
	if !first {
		record()
	}
}

// open verifies m. ok false means it was dealt with: refused (acknowledged, logged, reported),
// or left with the broker because the cloud's keys could not be had.
func (l *Link) open(m paho.Message, leaf string) (payload []byte, settle func(bool) error, ok bool) {
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
			return nil, nil, false
		case <-l.closed:
			return nil, nil, false
		}
		payload, settle, err = l.opt.Verify.Open(ctx, m.Topic(), m.Payload())
	}
	if err != nil {
		m.Ack() // first: the report below waits for the broker
		l.refuse(m.Topic(), leaf, m.Payload(), err)
		return nil, nil, false
	}
	return payload, settle, true
}

func (l *Link) handle(leaf string, payload []byte) {
	switch leaf {
	case protocol.LeafJob:
		var j protocol.Job
		if err := protocol.Decode(payload, &j); err != nil {
			l.reject(protocol.MessageID(payload), fmt.Errorf("undecodable job: %w", err))
			return
		}
		if err := l.opt.OnJob(j); err != nil {
			l.reject(j.ID, err)
		}
	case protocol.LeafJobStatusAck:
		var a protocol.JobStatusAck
		if err := protocol.Decode(payload, &a); err != nil {
			l.log.Error("cloud: undecodable status ack", "err", err)
			return
		}
		l.ack(a)
	case protocol.LeafLookupReply, protocol.LeafReleaseReply, protocol.LeafBadgeLinkReply:
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
	case protocol.LeafBadgeLinked:
		l.badgeLinked(payload)
	case protocol.LeafConfigDesired:
		var d protocol.ConfigDesired
		if err := protocol.Decode(payload, &d); err != nil {
			l.log.Error("cloud: undecodable config refused", "err", err)
			// Reported, so the fleet manager sees why the station kept its last good config.
			r := protocol.ConfigReported{Applied: false, Error: "undecodable config: " + err.Error(), TS: l.opt.Now()}
			if err := l.ReportConfig(r); err != nil {
				l.log.Warn("cloud: config refusal not reported", "err", err)
			}
		} else if l.opt.OnConfig != nil {
			l.opt.OnConfig(d)
		}
	case protocol.LeafCmd:
		var c protocol.Command
		if err := protocol.Decode(payload, &c); err != nil {
			l.log.Error("cloud: undecodable command refused", "err", err)
			r := protocol.CommandResult{ID: protocol.MessageID(payload), OK: false, Error: "undecodable command: " + err.Error()}
			if err := l.ReportCommand(r); err != nil {
				l.log.Warn("cloud: command refusal not reported", "err", err)
			}
		} else if l.opt.OnCommand != nil {
			l.opt.OnCommand(c)
		}
	}
}

// handleGroup takes a message of a group: only the group's config and commands, and only of
// the group the station follows now (a message of the group it just left is dropped).
func (l *Link) handleGroup(group, leaf string, payload []byte) {
	l.mu.Lock()
	cur := l.group
	l.mu.Unlock()
	if group != cur {
		return
	}
	switch leaf {
	case protocol.LeafConfigDesired:
		var d protocol.ConfigDesired
		if err := protocol.Decode(payload, &d); err != nil {
			l.log.Error("cloud: undecodable group config refused", "group", group, "err", err)
			r := protocol.ConfigReported{Source: protocol.SourceGroup, Group: group, Error: "undecodable config: " + err.Error(), TS: l.opt.Now()}
			if err := l.ReportConfig(r); err != nil {
				l.log.Warn("cloud: config refusal not reported", "err", err)
			}
		} else if l.opt.OnGroupConfig != nil {
			l.opt.OnGroupConfig(group, d)
		}
	case protocol.LeafCmd:
		l.handle(leaf, payload)
	}
}

// SetGroup follows another group's config and commands from now on ("" for none). It never
// blocks: the subscription changes in the background (groupLoop), since it is usually called
// from a message handler, before the broker got that message's acknowledgement.
func (l *Link) SetGroup(group string) {
	l.mu.Lock()
	l.group = group
	l.mu.Unlock()
	signal(l.regroup)
}

// groupLoop keeps the broker subscription on the wanted group. A refusal (a broker may reject a
// SUBSCRIBE whose packet id is still in use by a message in flight to us) is retried.
func (l *Link) groupLoop(ctx context.Context) {
	subscribed := ""
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.regroup:
		case <-retry.C:
		case <-l.resubscribed:
			l.mu.Lock()
			subscribed = l.connGroup
			l.mu.Unlock()
		}
		l.mu.Lock()
		want, online := l.group, l.online
		l.mu.Unlock()
		if want == subscribed || !online {
			continue
		}
		l.log.Info("cloud: following group", "group", want, "was", subscribed)
		if subscribed != "" {
			if t := l.client.Unsubscribe(protocol.GroupTopics(subscribed)...); !t.WaitTimeout(l.opt.RequestTimeout) || t.Error() != nil {
				l.log.Warn("cloud: group unsubscribe", "group", subscribed, "err", t.Error())
			}
			subscribed = ""
		}
		if want != "" {
			if err := subscribeAll(l.client, groupFilters(want), l.route, l.opt.RequestTimeout); err != nil {
				l.log.Warn("cloud: group subscribe failed; retrying", "group", want, "err", err)
				retry.Reset(l.opt.MinBackoff)
				continue
			}
			subscribed = want
		}
	}
}

// subscribeAll subscribes to every filter and fails when the broker refused any: a SUBACK
// failure code is not a token error in paho.
func subscribeAll(c paho.Client, filters map[string]byte, h paho.MessageHandler, timeout time.Duration) error {
	t := c.SubscribeMultiple(filters, h)
	if !t.WaitTimeout(timeout) {
		return ErrTimeout
	}
	if err := t.Error(); err != nil {
		return err
	}
	if st, ok := t.(*paho.SubscribeToken); ok {
		for f, code := range st.Result() {
			if code >= 0x80 {
				return fmt.Errorf("cloud: subscribe %s: refused by the broker (code %#x)", f, code)
			}
		}
	}
	return nil
}

func groupFilters(group string) map[string]byte {
	m := map[string]byte{}
	for _, t := range protocol.GroupTopics(group) {
		m[t] = 1
	}
	return m
}

// Telemetry publishes a health report (not retained: only the newest matters, and the cloud
// keeps it).
func (l *Link) Telemetry(t protocol.Telemetry) error {
	if !l.Online() {
		return ErrOffline
	}
	t.V = protocol.Version
	return l.publish(protocol.LeafTelemetry, false, t)
}

// reject hands a job the station will not print to OnReject.
func (l *Link) reject(id string, reason error) {
	l.log.Error("cloud: job refused; acknowledged and reported as failed", "job", id, "err", reason)
	if l.opt.OnReject != nil {
		l.opt.OnReject(id, reason)
	}
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

// claimedID is the job id, command id, config version or request id a message says it carries,
// unverified, so the fleet manager can tell what was refused.
func claimedID(payload []byte) string {
	msg := protocol.Unverified(payload)
	var head struct {
		Req string `json:"req"`
	}
	json.Unmarshal(msg, &head)
	id := cmp.Or(protocol.MessageID(msg), head.Req)
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

// Report publishes a job status with QoS 1 and waits for the broker's PUBACK. That only says
// the broker took it: the status is delivered when the job service's job/status/ack arrives
// (Options.OnStatusAck), and the station resends until then.
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
// It never blocks: one goroutine publishes the newest state, so a burst of changes during a
// tap costs one or two retained publishes and an older state can never be published last.
func (l *Link) SetState(state string) {
	l.mu.Lock()
	changed := l.state != state
	l.state = state
	l.mu.Unlock()
	if changed {
		signal(l.presence)
	}
}

// presenceLoop publishes the current state whenever SetState changed it.
func (l *Link) presenceLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.presence:
		}
		if !l.Online() {
			continue // onConnect announces the state then
		}
		l.connMu.Lock()
		if !l.closing {
			l.mu.Lock()
			state := l.state
			l.mu.Unlock()
			if err := l.publish(protocol.LeafPresence, true, protocol.Presence{V: protocol.Version, Station: l.opt.StationID, Online: true, State: state, Version: l.opt.Version, Boot: l.opt.Boot, TS: l.opt.Now()}); err != nil {
				l.log.Info("cloud: presence not published", "err", err)
			}
		}
		l.connMu.Unlock()
	}
}
