package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"time"

	"labelstation/internal/buildinfo"
	"labelstation/station"
	"labelstation/station/config"
)

// preflight handles the flags that answer and exit (--version, --check-config); exit is false
// when the daemon should start.
func preflight(f flags, args []string, out, errOut io.Writer) (exit bool, code int) {
	switch {
	case f.Version:
		fmt.Fprintln(out, "stationd", buildinfo.Get())
		return true, 0
	case f.CheckConfig:
		if err := checkConfig(f, args, out); err != nil {
			fmt.Fprintln(errOut, "stationd:", err)
			return true, 1
		}
		return true, 0
	case len(args) > 0:
		fmt.Fprintf(errOut, "stationd: unexpected argument %q (flags only; see stationd -h)\n", args[0])
		return true, 2
	}
	return false, 0
}

// checkConfig loads the config file as the daemon would — same loader, same validation, same
// command-line overrides — and applies the last good fleet config from the state directory when
// it can read it, so an admin learns about a bad edit before restarting the service.
func checkConfig(f flags, args []string, out io.Writer) error {
	if len(args) > 1 {
		return fmt.Errorf("--check-config takes at most one FILE, got %d", len(args))
	}
	if len(args) == 1 {
		f.Config = args[0]
	}
	cfg, err := loadConfig(f)
	if err != nil {
		return err
	}
	fleet := "none stored"
	raw, err := config.LoadFleet(cfg.Station.StateDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case errors.Is(err, fs.ErrPermission):
		fleet = "not checked (no permission to read the state directory; run as root or stationd)"
	case err != nil:
		return fmt.Errorf("fleet config: %w", err)
	default:
		fl, err := config.ParseFleet(raw)
		if err == nil {
			cfg, err = cfg.Apply(fl)
		}
		if err != nil {
			return fmt.Errorf("fleet config in %s: %w", cfg.Station.StateDir, err)
		}
		fleet = "applied"
	}
	fmt.Fprintf(out, "%s: ok\n  board %s, display %s, badge reader %s, printer %s (%s)\n  issuer %s, broker %s\n  state %s, fleet config %s, log level %s\n",
		f.Config, cfg.Board.Kind, cfg.Display.Kind, cfg.Badge.Reader, cfg.Printer.URL, cfg.Printer.Lang,
		cfg.Cloud.Issuer, cfg.Cloud.Broker, cfg.Station.StateDir, fleet, cfg.Log.Level)
	return nil
}

// setupLog builds the daemon's logger: JSON to journald, text elsewhere, at the config's
// log.level (-v forces debug). The returned level follows fleet config changes.
func setupLog(f flags, cfg config.Config, w io.Writer) (*slog.Logger, *slog.LevelVar, *recentLog) {
	level := new(slog.LevelVar)
	level.Set(parseLevel(cfg.Log.Level))
	if f.Verbose {
		level.Set(slog.LevelDebug)
	}
	recent := newRecentLog(20)
	return newLogger(w, journalStream(w), level, recent), level, recent
}

// heartbeat is what the state loop calls after every step: the status report's model, the log
// level from the effective (fleet-updated) config, and systemd's readiness and watchdog.
func (a *appliance) heartbeat(ctx context.Context, f flags, level *slog.LevelVar, recent *recentLog, log *slog.Logger) func(station.Model) {
	a.sup = newSupervisor(log)
	a.status = &statusServer{a: a, started: time.Now(), recent: recent, cfgFile: f.Config, log: log}
	wedge := simWedge(ctx, f.Sim)
	return func(m station.Model) {
		if wedge != nil {
			wedge()
		}
		a.status.observe(m)
		if !f.Verbose && a.Station != nil {
			level.Set(parseLevel(a.Station.Config().Log.Level))
		}
		a.sup.step(m)
	}
}

// serveStatus starts the status socket; without it the station still works, so a failure is
// logged, not fatal.
func (a *appliance) serveStatus(f flags, log *slog.Logger) {
	closeFn, err := a.status.listen(statusSocketPath(f.StatusSocket, a.Config.Station.StateDir))
	if err != nil {
		log.Warn("stationd: no status socket; `stationctl status` will not answer", "err", err)
		return
	}
	a.closers = append(a.closers, closeFn)
}
