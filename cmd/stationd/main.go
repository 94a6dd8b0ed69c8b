// Command stationd is the label release station daemon. main parses flags; run wires the
// appliance — board, journal, provisioning, printer, display, badge reader, station — in that
// order, each failure named by the part that failed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"labelstation/board"
	"labelstation/display"
	"labelstation/drivers/badge"
	"labelstation/drivers/panel/rotate"
	"labelstation/drivers/printer"
	"labelstation/internal/buildinfo"
	"labelstation/provisioning"
	"labelstation/station"
	"labelstation/station/cloud"
	"labelstation/station/config"
	"labelstation/station/journal"
	"labelstation/station/trust"
)

type flags struct {
	Config   string
	Sim      bool
	State    string
	Issuer   string
	Broker   string
	Printer  string
	Web      string
	Serial   string
	Demo     string
	Verbose  bool
	Reenroll bool
	// Version, CheckConfig: print and exit. StatusSocket: where `stationctl status` asks.
	Version, CheckConfig bool
	StatusSocket         string

	// Set by tests only.
	observe     func(station.Model)
	deniedDelay time.Duration
	tokenCheck  time.Duration
	// badgeNow is the reader pump's clock (repeat window, move-ons); nil means time.Now.
	badgeNow func() time.Time
	// reboot ends run for the fleet's reboot command (set by run).
	reboot func() error
}

func main() {
	var f flags
	flag.StringVar(&f.Config, "config", "/etc/stationd/stationd.json", "station config file (docs/configuration.md)")
	flag.BoolVar(&f.Sim, "sim", false, "simulated hardware: sim board, display mirrored at --web, sim printer, badge taps from the web page")
	flag.StringVar(&f.State, "state", "", "state directory (tokens, journal, last fleet config); overrides station.state_dir")
	flag.StringVar(&f.Issuer, "issuer", "", "OAuth issuer URL; overrides cloud.issuer")
	flag.StringVar(&f.Broker, "broker", "", "MQTT broker URL; overrides cloud.broker")
	flag.StringVar(&f.Printer, "printer", "", "printer URL; overrides printer.url (with --sim: empty starts a simulated printer)")
	flag.StringVar(&f.Web, "web", "127.0.0.1:8781", "with --sim: listen address of the panel mirror and tap page")
	flag.StringVar(&f.Serial, "serial", "", "with --sim: the board's serial number; overrides board.serial")
	flag.StringVar(&f.Demo, "demo-badges", "Alice=04A1B2C3D4E580,Bob=0E5F1C2A,Stranger=DEADBEEF", "with --sim: one-click badges on the tap page, NAME=UIDHEX,...")
	flag.BoolVar(&f.Verbose, "v", false, "log debug detail")
	flag.BoolVar(&f.Reenroll, "reenroll", false, "forget the stored tokens and pair again (the station keeps its id: the serial is unchanged)")
	flag.BoolVar(&f.Version, "version", false, "print the version and exit")
	flag.BoolVar(&f.CheckConfig, "check-config", false, "check the config file (or the FILE argument) as the daemon would load it, and exit")
	flag.StringVar(&f.StatusSocket, "status-socket", "", "unix socket for `stationctl status`; default $RUNTIME_DIRECTORY/status.sock, else STATE/status.sock")
	flag.Parse()
	if exit, code := preflight(f, flag.Args(), os.Stdout, os.Stderr); exit {
		os.Exit(code)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, f, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "stationd:", err)
		if errors.Is(err, errReboot) {
			os.Exit(exitReboot)
		}
		os.Exit(1)
	}
}

// errReboot ends run after the fleet's reboot command; stationd then exits with exitReboot,
// and its service manager (Restart=on-failure) starts it again.
var errReboot = errors.New("restarting on the fleet's reboot command")

const exitReboot = 75 // EX_TEMPFAIL

func run(ctx context.Context, f flags, out, logOut io.Writer) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	f.reboot = func() error {
		// Later, so the command's "done" still goes out before the link says goodbye.
		time.AfterFunc(time.Second, func() { cancel(errReboot) })
		return nil
	}
	a, err := build(ctx, f, logOut)
	if err != nil {
		return err
	}
	defer a.Close()
	defer context.AfterFunc(ctx, a.sup.stopping)()
	if a.WebURL != "" {
		fmt.Fprintf(out, "stationd (sim) is up: panel and tap page at %s, printer %s (labels as PNG in %s)\n",
			a.WebURL, a.PrinterURL, a.PrinterDir)
	}
	if err := a.Station.Run(ctx); err != nil {
		return err
	}
	if errors.Is(context.Cause(ctx), errReboot) {
		return errReboot
	}
	return nil
}

// appliance is a wired station and the simulated parts tests reach into.
type appliance struct {
	Station    *station.Station
	Config     config.Config
	Prov       *provisioning.Provisioner
	Board      board.Board
	Reader     *badge.Sim
	simParts   // the simulated panel and printer, absent from builds tagged nosim
	PrinterURL string
	PrinterDir string
	WebURL     string
	Serial     string
	Journal    *journal.Journal
	printer    *printer.Redialer
	sup        *supervisor
	status     *statusServer
	closers    []func() error
}

func (a *appliance) Close() error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	return errors.Join(errs...)
}

func build(ctx context.Context, f flags, logOut io.Writer) (_ *appliance, err error) {
	cfg, err := loadConfig(f)
	if err != nil {
		return nil, err
	}
	log, level, recent := setupLog(f, cfg, logOut)
	a := &appliance{Config: cfg}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	state := cfg.Station.StateDir
	if err := trust.SecureDir(state); err != nil {
		return nil, err
	}
	if cfg.Cloud.AllowInsecure {
		log.Warn("stationd: cloud.allow_insecure is set: tokens and jobs may cross the network in cleartext",
			"issuer", cfg.Cloud.Issuer, "broker", cfg.Cloud.Broker)
	}
	tlsCfg, err := trust.TLSConfig(cfg.Cloud.CAFile)
	if err != nil {
		return nil, err
	}

	// Board: the serial number is the station's identity across resets, as release-station device flows send it with the authorization request.
	b, buttonNames, err := openBoard(cfg.Board)
	if err != nil {
		return nil, fmt.Errorf("board: %w", err)
	}
	a.Board = b
	a.closers = append(a.closers, b.Halt)
	serial, err := b.Serial()
	if err != nil {
		return nil, fmt.Errorf("board: serial: %w", err)
	}
	a.Serial = serial

	j, err := journal.Open(filepath.Join(state, "journal.db"), journal.Options{MaxSize: int64(cfg.Journal.MaxMB) << 20})
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	a.closers = append(a.closers, j.Close)
	a.Journal = j

	hc := trust.HTTPClient(tlsCfg, 15*time.Second) // x/oauth2's DeviceAuth ignores its context
	ep, err := discover(ctx, hc, cfg.Cloud.Issuer, state, log)
	if err != nil {
		return nil, fmt.Errorf("provisioning: %w", err)
	}
	verifier, stopTrust, err := openTrust(ctx, cfg, ep, hc, log)
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, stopTrust)
	var st *station.Station
	prov, err := provisioning.New(provisioning.Config{
		ClientID: cfg.Cloud.ClientID, DeviceAuthURL: ep.DeviceAuthorization, TokenURL: ep.Token,
		UserinfoURL: ep.Userinfo, IntrospectionURL: ep.Introspection,
		StationClaim: cfg.Cloud.StationClaim, Audience: cfg.Cloud.Audience,
		Rediscover: func(ctx context.Context) (provisioning.Endpoints, error) {
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			ep, err := discover(ctx, hc, cfg.Cloud.Issuer, state, log)
			return provisioning.Endpoints{DeviceAuthorization: ep.DeviceAuthorization, Token: ep.Token, Userinfo: ep.Userinfo, Introspection: ep.Introspection}, err
		},
		Scopes: cfg.Cloud.Scopes, Serial: serial, StateDir: state, HTTPClient: hc, Logger: log,
		DeniedDelay: f.deniedDelay,
		OnEvent: func(e provisioning.Event) {
			if st != nil {
				st.EnrollEvent(e)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("provisioning: %w", err)
	}
	a.Prov = prov
	if f.Reenroll {
		if err := prov.Reset(); err != nil {
			return nil, fmt.Errorf("provisioning: --reenroll: %w", err)
		}
		log.Info("stationd: tokens forgotten; pairing again")
	}

	// Printer: a simulated ZPL printer on loopback unless a real one is named.
	a.PrinterURL = cfg.Printer.URL
	if f.Sim && f.Printer == "" {
		a.PrinterDir = filepath.Join(state, "printer")
		if err := os.MkdirAll(a.PrinterDir, 0o755); err != nil {
			return nil, fmt.Errorf("printer: %w", err)
		}
		if a.PrinterURL, err = a.startSimPrinter(cfg.Printer.DPI); err != nil {
			return nil, fmt.Errorf("printer: %w", err)
		}
	}
	// The hardware opens with the fleet settings the station accepted before this start
	// (station/config.Restore); the station itself recomputes them from the same documents.
	hw, _, herr := config.Restore(cfg)
	if herr != nil {
		log.Warn("stationd: saved fleet config not used for the hardware", "err", herr)
	}
	pr := newRedialPrinter(a.PrinterURL, hw.Printer.Lang)
	a.closers = append(a.closers, pr.Close)
	a.printer = pr

	// Buttons, display and badge reader.
	buttons := make(chan board.Press, 4)
	moved := newMovedOn(f.badgeNow)
	press := moved.pressFunc(buttons)
	for _, name := range buttonNames {
		in, err := b.Input(name)
		if err != nil {
			return nil, fmt.Errorf("board: button %s: %w", name, err)
		}
		go func() {
			for {
				p, err := in.WaitPress(ctx)
				if err != nil {
					if ctx.Err() == nil {
						log.Error("stationd: button stopped", "button", name, "err", err)
					}
					return
				}
				press(p)
			}
		}()
	}
	taps := make(chan badge.Badge, 4)
	var panel display.Panel
	var turn *rotate.Switch
	if cfg.Display.Kind == "sim" {
		sp, err := a.startSimPanel(ctx, cfg, f, press, buttonNames, log)
		if err != nil {
			return nil, err
		}
		panel = sp
	} else {
		if panel, turn, err = openPanel(hw.Display, b); err != nil {
			return nil, fmt.Errorf("display: %w", err)
		}
	}
	var reader badge.Reader = a.Reader
	var reopen func(context.Context) (badge.Reader, error)
	if cfg.Badge.Reader != "sim" {
		if reader, reopen, err = openReader(ctx, hw.Badge, b); err != nil {
			return nil, err
		}
	} else if a.Reader == nil {
		return nil, fmt.Errorf("badge.reader sim needs display.kind sim: its taps come from the panel's web page")
	}

	live := newLiveHardware(hw, pr, turn, log)
	st, err = station.New(station.Options{
		Config: cfg, Panel: panel, Printer: pr, Journal: j, Enroller: prov,
		DialCloud: func(o cloud.Options) (station.Cloud, error) {
			group := o.Group
			if group == nil {
				group = func() string { return "" }
			}
			// Group messages are accepted for the group the station follows now.
			v, err := verifier(o.StationID, group)
			if err != nil {
				return nil, err
			}
			o.Verify, o.TLS, o.AllowInsecure = v, tlsCfg, cfg.Cloud.AllowInsecure
			return cloud.New(o)
		},
		Badges: taps, Buttons: buttons, Version: buildinfo.Version, Logger: log, Observe: f.observe,
		Serial: serial, TokenCheck: f.tokenCheck, Signals: signals(ctx, b),
		Heartbeat: a.heartbeat(ctx, f, level, recent, log),
		LogLevel:  level, Reboot: f.reboot, Apply: live.Apply,
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("station: %w", err), reader.Halt())
	}
	a.Station = st
	a.closers = append(a.closers, superviseReader(ctx, reader, reopen, taps, badge.PumpOptions{RepeatNow: live.Repeat, MovedOn: moved.When, Now: f.badgeNow}, st.ReaderHealth, log))
	a.serveStatus(f, log)
	return a, nil
}

// openTrust loads the cloud's message-signing keys (the JWKS of cloud.keys_url, else the
// issuer's jwks_uri; the last good set from the state directory until a fetch succeeds) and the
// replay window, and returns how to build the verifier once the station id is known.
func openTrust(ctx context.Context, cfg config.Config, ep endpoints, hc *http.Client, log *slog.Logger) (func(station string, group func() string) (*trust.Verifier, error), func() error, error) {
	url := cfg.Cloud.KeysURL
	if url == "" {
		url = ep.JWKS
	}
	if url == "" {
		return nil, nil, fmt.Errorf("trust: %s publishes no jwks_uri; set cloud.keys_url to the cloud's message-signing keys", cfg.Cloud.Issuer)
	}
	if err := trust.CheckTransport(url, cfg.Cloud.AllowInsecure); err != nil {
		return nil, nil, fmt.Errorf("trust: keys: %w", err)
	}
	state := cfg.Station.StateDir
	keys, err := trust.OpenKeys(trust.KeysOptions{URL: url, HTTP: hc, File: filepath.Join(state, trust.KeysFile), Logger: log})
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	fetched := make(chan struct{})
	stop := func() error { cancel(); <-fetched; return nil }
	go func() {
		defer close(fetched)
		// Fetched now so a rotation since the last boot is known before the first message; a
		// failure is not fatal: the stored set serves, and an unknown kid fetches again.
		if err := keys.Refresh(ctx); err != nil && ctx.Err() == nil {
			log.Warn("stationd: the cloud's keys were not fetched; using the stored set", "err", err)
		}
	}()
	wfile := filepath.Join(state, trust.WindowFile)
	window, err := trust.OpenWindow(wfile)
	if err != nil {
		// Damaged by hand or by a disk fault: the ids still valid are lost, expiry limits what
		// could be replayed, and the station keeps working.
		log.Error("stationd: replay window unreadable; starting an empty one", "err", err)
		os.Rename(wfile, wfile+".bad")
		if window, err = trust.OpenWindow(wfile); err != nil {
			stop()
			return nil, nil, err
		}
	}
	return func(station string, group func() string) (*trust.Verifier, error) {
		groups := func() []string {
			if g := group(); g != "" {
				return []string{g}
			}
			return nil
		}
		return trust.NewVerifier(trust.VerifierOptions{Station: station, Keys: keys, Window: window, Groups: groups})
	}, stop, nil
}

// loadConfig reads the config file and applies the command line's overrides.
func loadConfig(f flags) (config.Config, error) {
	cfg, err := config.Load(f.Config)
	if err != nil {
		return cfg, err
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&cfg.Station.StateDir, f.State)
	set(&cfg.Cloud.Issuer, f.Issuer)
	set(&cfg.Cloud.Broker, f.Broker)
	set(&cfg.Printer.URL, f.Printer)
	set(&cfg.Board.Serial, f.Serial)
	if f.Sim {
		cfg.Board.Kind, cfg.Display.Kind, cfg.Badge.Reader = "sim", "sim", "sim"
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}
