// Package cloud is the station's MQTT link to the cloud (docs/protocol.md): a persistent session
// with QoS 1 for jobs, retained presence with a last will, request/reply for badge lookups and
// releases, and a reconnect loop with capped, jittered backoff that resynchronises after every
// reconnect.
package cloud

import (
	"context"
	"crypto/rand"
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
)

// Sentinel errors callers branch on.
var (
	// ErrOffline means the broker is not reachable now; nothing was sent.
	ErrOffline = errors.New("cloud: offline")
	// ErrTimeout means a request was sent but no reply came in time.
	ErrTimeout = errors.New("cloud: no reply in time")
)

// Options configures a Link.
type Options struct {
	Broker    string // tcp://host:port or mqtt://host:port
	StationID string
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

	mu      sync.Mutex
	online  bool
	state   string
	pending map[string]chan []byte
}

// New builds a link; Run connects it.
func New(opt Options) (*Link, error) {
	if opt.Broker == "" || opt.StationID == "" || opt.Password == nil || opt.OnJob == nil {
		return nil, errors.New("cloud: Broker, StationID, Password and OnJob are required")
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
	if opt.Now == nil {
		opt.Now = time.Now
	}
	l := &Link{opt: opt, log: opt.Logger, lost: make(chan struct{}, 1), pending: map[string]chan []byte{}, state: "idle"}
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
	if l.client.IsConnectionOpen() {
		if err := l.publish(protocol.LeafPresence, true, protocol.Presence{V: protocol.Version, Station: l.opt.StationID, Online: false, TS: l.opt.Now()}); err != nil {
			l.log.Warn("cloud: goodbye presence not sent; the broker's last will says offline instead", "err", err)
		}
	} else {
		l.log.Info("cloud: not connected at shutdown; the last will announces offline")
	}
	l.client.Disconnect(250)
	l.setOnline(false)
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

func (l *Link) route(_ paho.Client, m paho.Message) {
	_, leaf, err := protocol.ParseStationTopic(m.Topic())
	if err != nil {
		m.Ack()
		return
	}
	switch leaf {
	case protocol.LeafJob:
		var j protocol.Job
		if err := protocol.Decode(m.Payload(), &j); err != nil {
			l.log.Error("cloud: undecodable job dropped", "err", err)
			m.Ack()
			return
		}
		if err := l.opt.OnJob(j); err != nil {
			// Not acknowledged: the broker redelivers it on the next connection.
			l.log.Error("cloud: job not accepted; leaving it with the broker", "job", j.ID, "err", err)
			return
		}
	case protocol.LeafLookupReply, protocol.LeafReleaseReply:
		var head struct {
			Req string `json:"req"`
		}
		if json.Unmarshal(m.Payload(), &head) == nil {
			l.mu.Lock()
			ch := l.pending[head.Req]
			delete(l.pending, head.Req)
			l.mu.Unlock()
			if ch != nil {
				ch <- m.Payload()
			}
		}
	case protocol.LeafConfigDesired:
		var d protocol.ConfigDesired
		if err := protocol.Decode(m.Payload(), &d); err != nil {
			l.log.Error("cloud: undecodable config dropped", "err", err)
		} else if l.opt.OnConfig != nil {
			l.opt.OnConfig(d)
		}
	case protocol.LeafCmd:
		var c protocol.Command
		if err := protocol.Decode(m.Payload(), &c); err != nil {
			l.log.Error("cloud: undecodable command dropped", "err", err)
		} else if l.opt.OnCommand != nil {
			l.opt.OnCommand(c)
		}
	}
	m.Ack()
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
