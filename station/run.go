package station

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"labelstation/board"
	"labelstation/display"
	"labelstation/drivers/badge"
	"labelstation/drivers/printer"
	"labelstation/internal/supervise"
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
	ReportConfig(protocol.ConfigReported) error
	SetState(state string)
	// Kick says the journal's status outbox has something new to send.
	Kick()
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
	Buttons   <-chan board.Press
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
	// SetupRetry is how long the lifecycle waits after a problem only an admin can fix (no
	// station id in the tokens, a cloud link that cannot be built); zero means 1 minute.
	SetupRetry time.Duration
	// Maintain is how often finished jobs are pruned from the journal; zero means 1 hour.
	Maintain time.Duration
	// Answer and Arrive bound the waits for a cloud reply and for a released job (Settings);
	// zero means 15 s and 30 s.
	Answer, Arrive time.Duration
	// Heartbeat, if set, is called by the state loop itself after every step, at least every
	// 250 ms while the loop runs: a supervisor (systemd's watchdog) hears silence when the loop
	// is wedged. It must return quickly.
	Heartbeat func(Model)
	// Reboot, if set, restarts the station for the reboot command.
	Reboot func() error
	// LogLevel, if set, is changed by the log_level command.
	LogLevel *slog.LevelVar
	// Apply, if set, brings the hardware in line with a new effective config before the
	// station takes it (fleet.go): an error leaves the hardware as it was, and the config is
	// refused and reported with the error's field path (a *config.Error).
	Apply func(ctx context.Context, next config.Config) error
}

// Station is the running appliance.
type Station struct {
	opt      Options
	log      *slog.Logger
	events   chan Event
	kick     chan struct{}
	reenroll chan struct{}
	// reader holds the badge reader's latest health (nil: working) until Run takes it.
	reader chan error

	mu    sync.Mutex
	cfg   config.Config
	cloud Cloud

	// printMu serialises printer access between the print worker and pairing labels.
	printMu sync.Mutex
	// fonts holds the fonts of printer.font_dir (document.go).
	fonts fontCache
	// bg counts effects and cloud callbacks under way; Run waits for them, so nothing writes to
	// the state directory after Run returned.
	bg sync.WaitGroup

	// stopped is closed when the state loop ends, so post never blocks forever.
	stopped chan struct{}
	// late holds the newest progress event that found the event queue full: progress is the
	// only event that may be coalesced (latest wins); every other event waits for room.
	lateMu sync.Mutex
	late   *PrintProgress
	// volatile holds failed statuses of jobs the journal could not record even as failed
	// (the disk is full); they are reported from memory until acknowledged.
	volMu    sync.Mutex
	volatile map[string]protocol.JobStatus

	// Fleet state (fleet.go). sources and started are guarded by mu; fleetMu orders desired
	// documents; cmdMu guards seen.
	fleetMu   sync.Mutex
	sources   config.Sources
	started   config.Config // the effective config at start: what the hardware was opened with
	pairing   *PairingCode
	lastRep   *protocol.ConfigReported // the newest config report, sent again on reconnect
	cmdMu     sync.Mutex
	seen      []string
	boot      int64
	startedAt time.Time
	labels    atomic.Int64
	phase     atomic.Value // string
	lastErr   atomic.Value // string
	// scr draws the screens off the state loop.
	scr *screen
	// wantLabel is set when the next pairing code should be printed (see pairingCode).
	wantLabel atomic.Bool
	// rel is what choosing, previewing and offline release remember (release_run.go).
	rel releaseState
	// online is the link state of the newest model (identify puts the LED back to it).
	online atomic.Bool
	// reconfigured has a value after every applied config change (telemetry reads it).
	reconfigured chan struct{}
	// first lets the claim record a job's first in-flight window (firstwindow.go).
	first firstWindows
	// alarms are the telemetry alarms that hold now (alarms.go).
	alarms alarmSet
}

// New checks the wiring.
func New(opt Options) (*Station, error) {
	if opt.Panel == nil || opt.Printer == nil || opt.Journal == nil || opt.Enroller == nil || opt.DialCloud == nil || opt.Badges == nil {
		return nil, errors.New("station: Panel, Printer, Journal, Enroller, DialCloud and Badges are required")
	}
	if err := display.CheckSize(opt.Panel.Bounds().Size()); err != nil {
		return nil, fmt.Errorf("station: panel %s: %w", opt.Panel, err)
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
	if opt.SetupRetry == 0 {
		opt.SetupRetry = provisioning.DefaultConfigRetry
	}
	if opt.Maintain == 0 {
		opt.Maintain = time.Hour
	}
	if opt.Answer == 0 {
		opt.Answer = 15 * time.Second
	}
	if opt.Arrive == 0 {
		opt.Arrive = 30 * time.Second
	}
	s := &Station{
		opt: opt, log: opt.Logger, cfg: opt.Config,
		events: make(chan Event, 256), kick: make(chan struct{}, 1), reenroll: make(chan struct{}, 1),
		stopped: make(chan struct{}), volatile: map[string]protocol.JobStatus{},
		reader: make(chan error, 1), reconfigured: make(chan struct{}, 1),
	}
	s.loadFleet()
	s.loadSeen()
	s.startedAt = opt.Now()
	s.phase.Store(Boot.String())
	var err error
	if s.boot, err = nextBoot(opt.Config.Station.StateDir, opt.Now()); err != nil {
		s.log.Error("station: boot counter", "err", err)
	}
	s.scr = newScreen(opt.Panel, opt.Logger, opt.Now, s.oledCare)
	s.wantLabel.Store(true) // booting unenrolled is an enrollment attempt
	return s, nil
}

// post hands an event to the state machine's loop. It never blocks forever: progress that
// finds the queue full is coalesced (the newest wins), and any event posted after the loop
// stopped is dropped with a log line.
func (s *Station) post(ev Event) {
	if p, ok := ev.(PrintProgress); ok {
		select {
		case s.events <- p:
		default:
			s.lateMu.Lock()
			s.late = &p
			s.lateMu.Unlock()
		}
		return
	}
	// Progress coalesced earlier goes first, so it can never overtake this event.
	if p := s.takeLate(); p != nil {
		s.enqueue(*p)
	}
	s.enqueue(ev)
}

func (s *Station) enqueue(ev Event) {
	select {
	case s.events <- ev:
	case <-s.stopped:
		s.log.Info("station: event dropped; the state loop has stopped", "event", fmt.Sprintf("%T", ev))
	}
}

func (s *Station) takeLate() *PrintProgress {
	s.lateMu.Lock()
	defer s.lateMu.Unlock()
	p := s.late
	s.late = nil
	return p
}

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
	r := c.Release
	return Settings{ConfirmRelease: r.Mode == "confirm", ResultScreen: r.ScreenTime(), Answer: s.opt.Answer, Arrive: s.opt.Arrive,
		Select: r.Mode == "select", Newest: r.Order == "newest", Preview: r.Preview, OfflineRelease: r.OfflineSeconds > 0,
		SelectWait: r.SelectTime()}
}

// EnrollEvent receives provisioning's progress (wire it as provisioning.Config.OnEvent).
func (s *Station) EnrollEvent(e provisioning.Event) {
	switch e.Kind {
	case provisioning.EventDenied:
		s.post(EnrollDenied{})
	case provisioning.EventSetupProblem:
		code := "unknown"
		var se *provisioning.SetupError
		if errors.As(e.Err, &se) {
			code = se.Code
		}
		s.post(SetupRefused{Code: code})
	}
}

// ReaderHealth tells the station whether the badge reader works: wire it to
// badge.SuperviseOptions' OnFault (err) and OnRecover (nil). It never blocks; only the latest
// report counts.
func (s *Station) ReaderHealth(err error) {
	for {
		select {
		case s.reader <- err:
			return
		default:
		}
		select {
		case <-s.reader:
		default:
		}
	}
}

// minRedraw spaces screen updates while a job prints: redrawing after every label cost more
// than printing it, and no one reads ten screens a second.
const minRedraw = 100 * time.Millisecond

// Run runs the station until ctx ends, then halts the panel. Its parts run supervised: one
// that panics or returns is logged and restarted with backoff, never taking the daemon down.
func (s *Station) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer s.bg.Wait()
	defer wg.Wait()
	defer close(s.stopped)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	parts := map[string]func(context.Context){"lifecycle": s.lifecycle, "worker": s.worker, "badges": s.badges, "buttons": s.buttons, "journal maintenance": s.maintain, "telemetry": s.telemetry}
	for name, f := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			supervise.Loop(ctx, s.log, "station: "+name, supervise.Backoff{Min: 500 * time.Millisecond, Max: 30 * time.Second}, func(ctx context.Context) error {
				f(ctx)
				return ctx.Err()
			})
		}()
	}
	scrCtx, scrCancel := context.WithCancel(context.Background())
	scrDone := make(chan struct{})
	go func() {
		defer close(scrDone)
		supervise.Loop(scrCtx, s.log, "station: screen", supervise.Backoff{Min: 500 * time.Millisecond, Max: 30 * time.Second}, s.scr.run)
	}()
	// The panel is halted only once the screen worker has stopped drawing on it.
	stopScreen := func() { scrCancel(); <-scrDone }
	defer stopScreen()
	m := Model{Phase: Boot, Configured: s.config().Badge.Key() != nil}
	var shown display.View
	s.show(m, &shown)
	lastDraw := time.Now()
	var redraw *time.Timer
	var redrawC <-chan time.Time
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		var ev Event
		select {
		case <-ctx.Done():
			cancel()
			stopScreen()
			if err := s.opt.Panel.Halt(); err != nil {
				s.log.Warn("station: panel halt", "err", err)
			}
			return nil
		case ev = <-s.events:
		case err := <-s.reader:
			ev = ReaderRecovered{}
			if err != nil {
				ev = ReaderFailed{Err: err}
			}
		case <-tick.C:
			if p := s.takeLate(); p != nil {
				ev = *p
			} else {
				ev = Tick{}
			}
		case <-redrawC:
			redrawC = nil
			s.show(m, &shown)
			lastDraw = time.Now()
			continue
		}
		switch ev.(type) {
		case BadgeTapped, ButtonPressed:
			s.scr.wake()
		}
		before, wasOnline := m.Phase, m.Online
		err := supervise.Safe(func() error {
			next, effects := Step(m, ev, s.opt.Now(), s.settings())
			m = next
			s.online.Store(m.Online)
			if s.opt.Signals != nil && (m.Phase != before || m.Online != wasOnline) {
				s.opt.Signals.Phase(m.Phase, m.Online)
			}
			if m.Phase != before {
				s.log.Info("station: state", "from", before.String(), "to", m.Phase.String())
				s.phase.Store(m.Phase.String())
				if c := s.currentCloud(); c != nil {
					c.SetState(m.Phase.String())
				}
			}
			if m.Phase == Printing && before == Printing && time.Since(lastDraw) < minRedraw {
				if redrawC == nil {
					if redraw == nil {
						redraw = time.NewTimer(minRedraw - time.Since(lastDraw))
					} else {
						redraw.Reset(minRedraw - time.Since(lastDraw))
					}
					redrawC = redraw.C
				}
			} else {
				s.show(m, &shown)
				lastDraw = time.Now()
			}
			// The screen and the signals above are a tap's feedback: they are handed over
			// before any effect goes to the network.
			for _, e := range effects {
				s.do(ctx, e)
			}
			return nil
		})
		if err != nil {
			supervise.Log(s.log, "station: state loop step failed; event skipped", err, "event", fmt.Sprintf("%T", ev))
		}
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

// show hands the model's screen to the screen worker when it differs from the last one.
func (s *Station) show(m Model, shown *display.View) {
	v := ViewOf(m, s.opt.Now().Truncate(time.Second), s.stationName())
	if !display.Animated(v, s.opt.Panel.Bounds().Size()) {
		v.Now = time.Time{} // only countdowns and paged screens depend on the time
	}
	if reflect.DeepEqual(v, *shown) {
		return
	}
	*shown = v
	if v.Now.IsZero() {
		v.Now = s.opt.Now()
	}
	s.scr.set(v)
}

// oledCare is the burn-in care of an SSD1306, from the current config: the contrast and idle
// times follow fleet changes. Other panels do not burn in.
func (s *Station) oledCare() (display.Care, bool) {
	d := s.config().Display
	if d.Kind != "ssd1306" {
		return display.Care{}, false
	}
	return display.Care{Dim: time.Duration(d.DimSeconds) * time.Second, Blank: time.Duration(d.BlankSeconds) * time.Second,
		Shift: time.Minute, Contrast: uint8(d.Contrast)}, true
}

func (s *Station) stationName() string {
	if n := s.config().Station.Name; n != "" {
		return n
	}
	return s.opt.Enroller.StationID()
}

// do runs an effect in the background; its result comes back as an event. A panic becomes
// the effect's failure event, so the state machine is never left waiting for it.
func (s *Station) do(ctx context.Context, e Effect) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		err := supervise.Safe(func() error { s.effect(ctx, e); return nil })
		if err == nil {
			return
		}
		supervise.Log(s.log, "station: effect failed", err, "effect", fmt.Sprintf("%T", e))
		switch e.(type) {
		case DoLookup:
			s.post(LookupDone{Err: err})
		case DoRelease:
			s.post(ReleaseDone{Err: err})
		case DoOfflineRelease:
			s.post(OfflineReleased{Err: err})
		case DoLinkBadge:
			s.post(BadgeLinkDone{Err: err})
		}
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
		if e.ReleaseAll && s.lookupReleaseAll(ctx, c, e.Badge) {
			return
		}
		rep, err := c.Lookup(ctx, e.Badge)
		if err == nil {
			rep = s.afterLookup(e.Badge, rep)
		}
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
		rep, err := s.release(ctx, c, e)
		s.post(ReleaseDone{Reply: rep, Err: err})
	case DoPrintPairing:
		if err := s.printPairing(ctx, e.Code); err != nil {
			s.log.Error("station: pairing label", "err", err)
		}
	case DoLinkBadge:
		s.linkBadge(ctx, c, e)
	case DoRetryPairing:
		s.wantLabel.Store(true) // an admin asked for a new attempt: its first code is printed
		s.opt.Enroller.RetryNow()
	case DoHold, DoOfflineRelease:
		s.releaseEffect(e)
	}
}

// lifecycle enrolls when there is no grant, runs the cloud link, and starts over with a new
// pairing when the grant dies (provisioning.ErrReenroll). It never ends before ctx: a problem only
// an admin can fix is put on the screen and retried every SetupRetry.
func (s *Station) lifecycle(ctx context.Context) {
	enr := s.opt.Enroller
	for ctx.Err() == nil {
		if !enr.Enrolled() {
			err := enr.Enroll(ctx, func(c provisioning.Code) {
				pc := PairingCode{UserCode: c.UserCode, URI: c.VerificationURI, URIComplete: c.VerificationURIComplete, Expires: c.Expires}
				s.mu.Lock()
				s.pairing = &pc
				s.mu.Unlock()
				s.post(EnrollCode{Code: pc})
				s.pairingCode(ctx, pc)
			})
			if err != nil {
				if ctx.Err() == nil {
					// Tokens that cannot be stored (a full or read-only disk).
					s.log.Error("station: enroll", "err", err)
					s.setupProblem(ctx, "cannot store tokens")
				}
				continue
			}
		}
		id := enr.StationID()
		if id == "" {
			claim := s.config().Cloud.StationClaim
			s.log.Error("station: the authorization server's tokens do not name this station; ask its admin to add the claim", "claim", claim)
			if !s.setupProblem(ctx, "no "+claim+" claim") {
				return
			}
			// A refresh looks for the claim again, so a fixed server needs no new pairing.
			enr.Invalidate()
			if _, err := s.password(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("station: token refresh", "err", err)
			}
			continue
		}
		s.post(Enrolled{})
		s.mu.Lock()
		s.pairing = nil
		s.mu.Unlock()
		cfg := s.config()
		link, err := s.opt.DialCloud(cloud.Options{
			Broker: cfg.Cloud.Broker, StationID: id, Version: s.opt.Version,
			Password: s.password, OnNotAuthorized: enr.Invalidate,
			OnJob:    func(j protocol.Job) error { s.bg.Add(1); defer s.bg.Done(); return s.onJob(j) },
			OnReject: func(id string, reason error) { s.bg.Add(1); defer s.bg.Done(); s.onReject(id, reason) },
			Outbox:   outbox{s},
			OnConfig: func(d protocol.ConfigDesired) { s.bg.Add(1); defer s.bg.Done(); s.onConfig(d) },
			OnGroupConfig: func(g string, d protocol.ConfigDesired) {
				s.bg.Add(1)
				defer s.bg.Done()
				s.onGroupConfig(g, d)
			},
			OnBadgeLinked: func(b protocol.BadgeLinked) {
				s.post(LinkConfirmed{Code: b.Code, User: b.User.Name})
			},
			OnCommand: func(c protocol.Command) { s.bg.Add(1); defer s.bg.Done(); s.onCommand(c) },
			Group:     s.Group, Boot: s.boot,
			OnOnline: func(up bool) {
				if up {
					s.resendReport()
				}
				s.post(OnlineChanged{Online: up})
			},
			Now: s.opt.Now, Logger: s.log,
		})
		if err != nil {
			s.log.Error("station: cloud link", "err", err)
			s.setupProblem(ctx, "cloud link")
			continue
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
		// The link and the token keeper may both have asked for a new pairing while they
		// stopped; those requests were about the grant just dropped, not the next one.
		select {
		case <-s.reenroll:
		default:
		}
		s.post(OnlineChanged{Online: false})
		s.post(Reenroll{})
	}
}

// setupProblem shows a problem only an admin can fix and waits SetupRetry; false if ctx ended.
func (s *Station) setupProblem(ctx context.Context, code string) bool {
	s.post(SetupRefused{Code: code})
	t := time.NewTimer(s.opt.SetupRetry)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
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
	if errors.Is(err, provisioning.ErrReenroll) || errors.Is(err, provisioning.ErrNotEnrolled) {
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

// onJob journals a delivered job before the broker's message is acknowledged. That one
// journal commit is all that stands between the message and the printer: the worker starts
// at once, and the status goes out through the outbox without holding anything up.
func (s *Station) onJob(j protocol.Job) error {
	e, existed, err := s.claim(j)
	if err != nil {
		return fmt.Errorf("station: journal claim: %w", err)
	}
	if existed {
		s.log.Info("station: job delivered again; not printing it twice", "job", j.ID, "state", e.State)
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
	s.report(e)
	s.storageFull(false)
	s.post(JobJournaled{})
	return nil
}

// onReject records a job the station will not print as failed, so the cloud learns why, and
// shows it. Without a readable id there is nothing to report against; the log keeps it.
func (s *Station) onReject(id string, reason error) {
	full := errors.Is(reason, journal.ErrFull)
	if id != "" {
		e, existed, err := s.opt.Journal.Reject(id, reason.Error())
		switch {
		case err != nil:
			s.log.Error("station: refused job not journaled; reporting it from memory", "job", id, "err", err)
			full = full || errors.Is(err, journal.ErrFull)
			s.volMu.Lock()
			s.volatile[id] = protocol.JobStatus{V: protocol.Version, Job: id, State: protocol.JobFailed, Seq: 1, Error: reason.Error(), TS: s.opt.Now()}
			s.volMu.Unlock()
		case existed:
			s.log.Info("station: refused a redelivery of a known job", "job", id, "state", e.State)
		}
		s.report(e)
	}
	if full {
		s.storageFull(true)
	}
	s.post(JobRejected{ID: id, Reason: reason.Error(), Full: full})
}

// report tells the link a status is waiting in the outbox; the entry itself is already in the
// journal, unreported until the job service acknowledges it.
func (s *Station) report(journal.Entry) {
	if c := s.currentCloud(); c != nil {
		c.Kick()
	}
}

// outbox is the journal as the link's status outbox, plus the statuses kept in memory.
type outbox struct{ s *Station }

var _ cloud.Outbox = outbox{}

func (o outbox) Unreported() ([]protocol.JobStatus, error) {
	es, err := o.s.opt.Journal.Unreported()
	out := make([]protocol.JobStatus, 0, len(es))
	for _, e := range es {
		out = append(out, e.Status())
	}
	o.s.volMu.Lock()
	for _, st := range o.s.volatile {
		out = append(out, st)
	}
	o.s.volMu.Unlock()
	return out, err
}

func (o outbox) MarkReported(job string, seq int) error {
	o.s.volMu.Lock()
	st, ok := o.s.volatile[job]
	if ok && st.Seq <= seq {
		delete(o.s.volatile, job)
	}
	o.s.volMu.Unlock()
	if ok {
		return nil
	}
	return o.s.opt.Journal.Acknowledge(job, seq)
}

// maintain prunes finished jobs older than journal.keep_days to tombstones, now and then
// every Options.Maintain, and logs the journal's size.
func (s *Station) maintain(ctx context.Context) {
	t := time.NewTicker(s.opt.Maintain)
	defer t.Stop()
	for {
		keep := s.config().Journal.Keep()
		if keep <= 0 {
			keep = 7 * 24 * time.Hour
		}
		n, err := s.opt.Journal.Prune(s.opt.Now().Add(-keep))
		if err != nil {
			s.log.Error("station: journal prune", "err", err)
		}
		size, serr := s.opt.Journal.Size()
		if serr != nil {
			s.log.Error("station: journal size", "err", serr)
		}
		s.log.Info("station: journal", "pruned", n, "bytes", size)
		s.expireHeld()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
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
		<-ctx.Done() // no buttons: nothing to do, but returning would count as a failure
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-s.opt.Buttons:
			s.post(ButtonPressed{Name: p.Name, Long: p.Long})
		}
	}
}
