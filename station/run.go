package station

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"labelstation/display"
	"labelstation/drivers/badge"
	"labelstation/drivers/printer"
	"labelstation/protocol"
	"labelstation/provisioning"
	"labelstation/station/cloud"
	"labelstation/station/config"
	"labelstation/station/journal"
)

// Cloud is the station's link to the cloud (station/cloud.Link).
type Cloud interface {
	Run(ctx context.Context) error
	Lookup(ctx context.Context, badge string) (protocol.LookupReply, error)
	Release(ctx context.Context, badge string, jobs []string) (protocol.ReleaseReply, error)
	Report(protocol.JobStatus) error
	ReportConfig(protocol.ConfigReported) error
	SetState(state string)
}

var _ Cloud = (*cloud.Link)(nil)

// Printer accepts one label's bytes at a time and reports its fault state
// (drivers/printer.Printer).
type Printer interface {
	Send(ctx context.Context, data []byte) error
	Status(ctx context.Context) (printer.Status, error)
}

var _ Printer = (*printer.Printer)(nil)

// Enroller owns the station's OAuth grant (provisioning.Provisioner).
type Enroller interface {
	Enrolled() bool
	Enroll(ctx context.Context, onCode func(provisioning.Code)) error
	Token(ctx context.Context) (*oauth2.Token, error)
	Invalidate()
	StationID() string
	Reset() error
	RetryNow()
}

var _ Enroller = (*provisioning.Provisioner)(nil)

// Options wires a station; cmd/stationd builds them from the config and the board.
type Options struct {
	Config   config.Config
	Panel    display.Panel
	Printer  Printer
	Journal  *journal.Journal
	Enroller Enroller
	// DialCloud builds the cloud link once the station id is known.
	DialCloud func(cloud.Options) (Cloud, error)
	Badges    <-chan badge.Badge
	Buttons   <-chan string
	Version   string
	// Serial is the board's hardware serial, printed on the pairing label.
	Serial string
	// TokenCheck is how often the grant is refreshed in the background, so a station that stays
	// connected for weeks still rotates its refresh token; zero means 1 minute.
	TokenCheck time.Duration
	Now        func() time.Time
	Logger     *slog.Logger
	// Signals, if set, drives the status LED and buzzer.
	Signals Signals
	// Observe, if set, sees every model after a step (tests wait on it; nothing else should).
	Observe func(Model)
	// PrinterRetry is how often a faulted printer is polled; zero means 1 s.
	PrinterRetry time.Duration
	// Heartbeat, if set, is called by the state loop itself after every step, at least every
	// 250 ms while the loop runs: a supervisor (systemd's watchdog) hears silence when the loop
	// is wedged. It must return quickly.
	Heartbeat func(Model)
}

// Station is the running appliance.
type Station struct {
	opt      Options
	log      *slog.Logger
	events   chan Event
	kick     chan struct{}
	reenroll chan struct{}

	mu    sync.Mutex
	cfg   config.Config
	cloud Cloud

	// printMu serialises printer access between the print worker and pairing labels.
	printMu sync.Mutex
	// bg counts effects and cloud callbacks under way; Run waits for them, so nothing writes to
	// the state directory after Run returned.
	bg sync.WaitGroup
}

// New checks the wiring.
func New(opt Options) (*Station, error) {
	if opt.Panel == nil || opt.Printer == nil || opt.Journal == nil || opt.Enroller == nil || opt.DialCloud == nil || opt.Badges == nil {
		return nil, errors.New("station: Panel, Printer, Journal, Enroller, DialCloud and Badges are required")
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.PrinterRetry == 0 {
		opt.PrinterRetry = time.Second
	}
	if opt.TokenCheck == 0 {
		opt.TokenCheck = time.Minute
	}
	s := &Station{
		opt: opt, log: opt.Logger, cfg: opt.Config,
		events: make(chan Event, 64), kick: make(chan struct{}, 1), reenroll: make(chan struct{}, 1),
	}
	s.loadFleet()
	return s, nil
}

// post hands an event to the state machine's loop.
func (s *Station) post(ev Event) { s.events <- ev }

func (s *Station) config() config.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

func (s *Station) currentCloud() Cloud {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cloud
}

func (s *Station) settings() Settings {
	c := s.config()
	return Settings{ConfirmRelease: c.Release.Mode == "confirm", ResultScreen: c.Release.ScreenTime()}
}

// EnrollEvent receives provisioning's progress (wire it as provisioning.Config.OnEvent).
func (s *Station) EnrollEvent(e provisioning.Event) {
	if e.Kind == provisioning.EventDenied {
		s.post(EnrollDenied{})
	}
}

// Run runs the station until ctx ends, then halts the panel.
func (s *Station) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer s.bg.Wait()
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, f := range []func(context.Context){s.lifecycle, s.worker, s.badges, s.buttons} {
		wg.Add(1)
		go func() { defer wg.Done(); f(ctx) }()
	}
	m := Model{Phase: Boot, Configured: s.config().Badge.Key() != nil}
	var shown display.View
	s.show(m, &shown)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		var ev Event
		select {
		case <-ctx.Done():
			cancel()
			if err := s.opt.Panel.Halt(); err != nil {
				s.log.Warn("station: panel halt", "err", err)
			}
			return nil
		case ev = <-s.events:
		case <-tick.C:
			ev = Tick{}
		}
		before, wasOnline := m.Phase, m.Online
		var effects []Effect
		m, effects = Step(m, ev, s.opt.Now(), s.settings())
		if s.opt.Signals != nil && (m.Phase != before || m.Online != wasOnline) {
			s.opt.Signals.Phase(m.Phase, m.Online)
		}
		if m.Phase != before {
			s.log.Info("station: state", "from", before.String(), "to", m.Phase.String())
			if c := s.currentCloud(); c != nil {
				c.SetState(m.Phase.String())
			}
		}
		for _, e := range effects {
			s.do(ctx, e)
		}
		s.show(m, &shown)
		if s.opt.Observe != nil {
			s.opt.Observe(m)
		}
		if s.opt.Heartbeat != nil {
			s.opt.Heartbeat(m)
		}
	}
}

// Config is the effective configuration: the local file with the last good fleet config applied.
func (s *Station) Config() config.Config { return s.config() }

// show renders the model's screen when it differs from what the panel shows.
func (s *Station) show(m Model, shown *display.View) {
	v := ViewOf(m, s.opt.Now().Truncate(time.Second), s.stationName())
	if m.Phase != Enrolling {
		v.Now = time.Time{} // only the countdown depends on the time
	}
	if reflect.DeepEqual(v, *shown) {
		return
	}
	*shown = v
	if v.Now.IsZero() {
		v.Now = s.opt.Now()
	}
	img, err := display.Render(v, s.opt.Panel.Bounds().Size())
	if err != nil {
		s.log.Error("station: render", "screen", v.Kind.String(), "err", err)
		return
	}
	if err := s.opt.Panel.Show(img); err != nil {
		s.log.Error("station: panel", "err", err)
	}
}

func (s *Station) stationName() string {
	if n := s.config().Station.Name; n != "" {
		return n
	}
	return s.opt.Enroller.StationID()
}

// do runs an effect in the background; its result comes back as an event.
func (s *Station) do(ctx context.Context, e Effect) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		s.effect(ctx, e)
	}()
}

func (s *Station) effect(ctx context.Context, e Effect) {
	c := s.currentCloud()
	switch e := e.(type) {
	case DoLookup:
		if c == nil {
			s.post(LookupDone{Err: cloud.ErrOffline})
			return
		}
		rep, err := c.Lookup(ctx, e.Badge)
		s.post(LookupDone{Reply: rep, Err: err})
	case DoRelease:
		if c == nil {
			s.post(ReleaseDone{Err: cloud.ErrOffline})
			return
		}
		// Jobs released into a faulted printer would sit on the station instead of staying
		// held for another station or a later tap.
		if err := s.printerReady(ctx); err != nil {
			s.post(ReleaseDone{Err: err})
			return
		}
		rep, err := c.Release(ctx, e.Badge, e.Jobs)
		s.post(ReleaseDone{Reply: rep, Err: err})
	case DoPrintPairing:
		if err := s.printPairing(ctx, e.Code); err != nil {
			s.log.Error("station: pairing label", "err", err)
		}
	case DoRetryPairing:
		s.opt.Enroller.RetryNow()
	}
}

// lifecycle enrolls when there is no grant, runs the cloud link, and starts over with a new
// pairing when the refresh token is refused (RFC 6749 §5.2 invalid_grant).
func (s *Station) lifecycle(ctx context.Context) {
	enr := s.opt.Enroller
	for ctx.Err() == nil {
		if !enr.Enrolled() {
			err := enr.Enroll(ctx, func(c provisioning.Code) {
				pc := PairingCode{UserCode: c.UserCode, URI: c.VerificationURI, URIComplete: c.VerificationURIComplete, Expires: c.Expires}
				s.post(EnrollCode{Code: pc})
				if s.config().Printer.PairingLabel {
					s.do(ctx, DoPrintPairing{Code: pc})
				}
			})
			if err != nil {
				if ctx.Err() == nil {
					s.log.Error("station: enroll", "err", err)
				}
				continue
			}
		}
		s.post(Enrolled{})
		cfg := s.config()
		link, err := s.opt.DialCloud(cloud.Options{
			Broker: cfg.Cloud.Broker, StationID: enr.StationID(), Version: s.opt.Version,
			Password: s.password, OnNotAuthorized: enr.Invalidate,
			OnJob:    func(j protocol.Job) error { s.bg.Add(1); defer s.bg.Done(); return s.onJob(j) },
			OnConfig: func(d protocol.ConfigDesired) { s.bg.Add(1); defer s.bg.Done(); s.onConfig(d) },
			OnOnline: func(up bool) {
				s.post(OnlineChanged{Online: up})
				if up {
					s.bg.Add(1)
					go func() { defer s.bg.Done(); s.resync() }()
				}
			},
			Now: s.opt.Now, Logger: s.log,
		})
		if err != nil {
			s.log.Error("station: cloud link", "err", err)
			return
		}
		s.mu.Lock()
		s.cloud = link
		s.mu.Unlock()
		lctx, lcancel := context.WithCancel(ctx)
		done := make(chan struct{}, 2)
		go func() { defer func() { done <- struct{}{} }(); link.Run(lctx) }()
		go func() { defer func() { done <- struct{}{} }(); s.keepToken(lctx) }()
		select {
		case <-ctx.Done():
			lcancel()
			<-done
			<-done
			return
		case <-s.reenroll:
		}
		lcancel()
		<-done
		<-done
		s.mu.Lock()
		s.cloud = nil
		s.mu.Unlock()
		s.log.Warn("station: the cloud refused our grant; pairing again")
		if err := enr.Reset(); err != nil {
			s.log.Error("station: reset grant", "err", err)
		}
		s.post(OnlineChanged{Online: false})
		s.post(Reenroll{})
	}
}

// keepToken refreshes the grant in the background: the broker checks the token only at
// connect, so without this a long-connected station would let its refresh token age out.
func (s *Station) keepToken(ctx context.Context) {
	t := time.NewTicker(s.opt.TokenCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.password(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("station: token refresh", "err", err)
			}
		}
	}
}

// password is the broker password: the current access token.
func (s *Station) password(ctx context.Context) (string, error) {
	tok, err := s.opt.Enroller.Token(ctx)
	if errors.Is(err, provisioning.ErrReenroll) {
		select {
		case s.reenroll <- struct{}{}:
		default:
		}
	}
	if err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}

// onJob journals a delivered job before the broker's message is acknowledged.
func (s *Station) onJob(j protocol.Job) error {
	e, existed, err := s.opt.Journal.Claim(j)
	if err != nil {
		return fmt.Errorf("station: journal claim: %w", err)
	}
	if existed {
		s.log.Info("station: job delivered again; not printing it twice", "job", j.ID, "state", e.State)
	}
	s.report(e)
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return nil
}

// report sends an entry's status; a failure leaves it unreported for resync.
func (s *Station) report(e journal.Entry) {
	c := s.currentCloud()
	if c == nil {
		return
	}
	st := e.Status()
	if err := c.Report(st); err != nil {
		s.log.Info("station: status not delivered; will resend", "job", st.Job, "state", st.State, "err", err)
		return
	}
	if err := s.opt.Journal.MarkReported(st.Job, st.Seq); err != nil {
		s.log.Error("station: journal", "err", err)
	}
}

// resync re-sends every status the cloud has not acknowledged (after each reconnect).
func (s *Station) resync() {
	es, err := s.opt.Journal.Unreported()
	if err != nil {
		s.log.Error("station: journal", "err", err)
		return
	}
	for _, e := range es {
		s.report(e)
	}
}

// badges turns reader taps into keyed hashes; the card number never leaves this function.
func (s *Station) badges(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case b := <-s.opt.Badges:
			cfg := s.config().Badge
			nf := badge.NumberFormat{Encoding: cfg.Encoding, ByteOrder: cfg.ByteOrder, Bits: cfg.Bits}
			num, err := nf.Format(b.UID)
			key := cfg.Key()
			switch {
			case err != nil:
				s.post(BadgeTapped{Err: fmt.Errorf("badge: %w", err)})
			case key == nil:
				s.post(BadgeTapped{Err: errors.New("not configured yet: no badge key from the fleet")})
			default:
				s.post(BadgeTapped{Hash: protocol.BadgeHash(key, num)})
			}
		}
	}
}

func (s *Station) buttons(ctx context.Context) {
	if s.opt.Buttons == nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case name := <-s.opt.Buttons:
			s.post(ButtonPressed{Name: name})
		}
	}
}
