package station

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"labelstation/label"
	"labelstation/protocol"
	"labelstation/station/config"
)

// fleetCloud is the part of the cloud link the fleet leg needs beyond Cloud. It is optional so
// a minimal test link can leave it out; cloud.Link has it.
type fleetCloud interface {
	ReportCommand(protocol.CommandResult) error
	Telemetry(protocol.Telemetry) error
	SetGroup(group string)
}

// loadFleet restores the accepted documents and computes the effective config from them, so a
// restart comes back configured before the broker answers, with every accepted push.
func (s *Station) loadFleet() {
	c, src, err := config.Restore(s.opt.Config)
	s.sources = src
	s.cfg = c
	s.started = c
	if err != nil {
		s.log.Error("station: saved fleet config not applied; running on the local file", "err", err)
	}
}

// onConfig takes the station's own desired document.
func (s *Station) onConfig(d protocol.ConfigDesired) {
	s.offer(protocol.SourceStation, config.Doc{Version: d.Version, Config: d.Config, Group: d.Group})
}

// onGroupConfig takes the desired document of the station's group.
func (s *Station) onGroupConfig(group string, d protocol.ConfigDesired) {
	s.offer(protocol.SourceGroup, config.Doc{Version: d.Version, Config: d.Config, Group: group})
}

// offer validates a desired document against the whole effective config, applies it, persists
// the accepted documents and reports the outcome. A stale or duplicate version changes
// nothing; a bad document is refused with the offending field and changes nothing either.
func (s *Station) offer(source string, doc config.Doc) {
	s.fleetMu.Lock()
	defer s.fleetMu.Unlock()
	s.mu.Lock()
	before := s.sources
	next, c, err := before.Offer(s.opt.Config, source, doc)
	s.mu.Unlock()
	if err == nil {
		err = s.apply(next, c)
	}
	s.mu.Lock()
	rep := s.reportLocked(source, doc.Version)
	s.mu.Unlock()

	switch {
	case errors.Is(err, config.ErrStale):
		s.log.Info("station: fleet config ignored", "source", source, "version", doc.Version, "err", err)
		if cur := applied(before, source); cur != doc.Version {
			return // older: the report of the newer one stands
		}
		rep.Applied = true // a repeat of the applied version: confirm it again
	case err != nil:
		rep.Error = err.Error()
		var ce *config.Error
		if errors.As(err, &ce) {
			rep.Path = ce.Path
		}
		s.log.Warn("station: fleet config refused", "source", source, "version", doc.Version, "err", err)
	default:
		rep.Applied = true
		s.post(Configured{Badges: c.Badge.Key() != nil})
		s.log.Info("station: fleet config applied", "source", source, "version", doc.Version, "hash", rep.Hash)
		if fc, ok := s.currentCloud().(fleetCloud); ok && next.GroupName() != before.GroupName() {
			fc.SetGroup(next.GroupName())
		}
	}
	// Kept first, so a report that finds the link not yet online is sent by resendReport.
	s.mu.Lock()
	s.lastRep = &rep
	s.mu.Unlock()
	if cl := s.currentCloud(); cl != nil {
		if err := cl.ReportConfig(rep); err != nil {
			s.log.Info("station: config report not delivered; sent again on reconnect", "err", err)
		}
	}
}

// apply makes c the effective config: the hardware is brought in line first (Options.Apply),
// then the documents are saved, then the station switches. Printing waits meanwhile, so no
// label goes out half in the old settings and half in the new. Any failure leaves the
// hardware, the saved documents and the running config as they were: the last good config
// keeps printing.
func (s *Station) apply(next config.Sources, c config.Config) error {
	s.printMu.Lock()
	defer s.printMu.Unlock()
	cur := s.config()
	if s.opt.Apply != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.opt.Apply(ctx, c); err != nil {
			return err
		}
	}
	if err := config.SaveSources(s.opt.Config.Station.StateDir, next); err != nil {
		if s.opt.Apply != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if rerr := s.opt.Apply(ctx, cur); rerr != nil {
				s.log.Error("station: hardware not put back after a config that could not be saved", "err", rerr)
			}
		}
		return err
	}
	s.mu.Lock()
	s.sources, s.cfg = next, c
	if s.opt.Apply != nil {
		s.started = c // the hardware runs it now: nothing waits for a restart
	}
	s.mu.Unlock()
	s.scr.redraw() // a new turn or contrast shows at once
	select {
	case s.reconfigured <- struct{}{}:
	default:
	}
	return nil
}

// resendReport publishes the newest config report again once the link is up: a retained
// desired document can arrive and be answered in the moment between subscription and online.
func (s *Station) resendReport() {
	s.mu.Lock()
	rep, cl := s.lastRep, s.cloud
	s.mu.Unlock()
	if rep == nil || cl == nil {
		return
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		if err := cl.ReportConfig(*rep); err != nil {
			s.log.Info("station: config report not delivered", "err", err)
		}
	}()
}

func applied(s config.Sources, source string) int64 {
	d := s.Station
	if source == protocol.SourceGroup {
		d = s.Group
	}
	if d == nil {
		return 0
	}
	return d.Version
}

// reportLocked describes the effective config; s.mu is held.
func (s *Station) reportLocked(source string, version int64) protocol.ConfigReported {
	return protocol.ConfigReported{
		V: protocol.Version, Source: source, Version: version,
		Versions:        protocol.ConfigVersions{Group: applied(s.sources, protocol.SourceGroup), Station: applied(s.sources, protocol.SourceStation)},
		Group:           s.sources.GroupName(),
		Hash:            s.cfg.Hash(),
		RestartRequired: config.RestartRequired(s.started, s.cfg),
		TS:              s.opt.Now(),
	}
}

// Group is the group the station follows (its own document names it).
func (s *Station) Group() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sources.GroupName()
}

// ConfigHash is the hash of the effective fleet settings.
func (s *Station) ConfigHash() string { return s.config().Hash() }

// Commands.

// seenFile keeps the ids of the commands the station took, so a redelivery after a restart
// is answered "duplicate" and not run twice.
const seenFile = "commands-seen.json"

// maxSeen bounds the remembered ids; the oldest go first. Commands older than that many ids
// have long expired in any sane fleet.
const maxSeen = 1000

// clockSet tells a real wall clock from a board that booted without one (1970, or the image's
// build date at best); an expiry cannot be judged before it is set.
func clockSet(now time.Time) bool { return now.Year() >= 2025 }

func (s *Station) loadSeen() {
	b, err := os.ReadFile(filepath.Join(s.opt.Config.Station.StateDir, seenFile))
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err == nil {
		err = json.Unmarshal(b, &s.seen)
	}
	if err != nil {
		s.log.Error("station: seen command ids unreadable; a redelivered command may run again", "err", err)
	}
}

// markSeen records id; false if it was seen before.
func (s *Station) markSeen(id string) (bool, error) {
	s.cmdMu.Lock()
	defer s.cmdMu.Unlock()
	if slices.Contains(s.seen, id) {
		return false, nil
	}
	next := append(slices.Clone(s.seen), id)
	if len(next) > maxSeen {
		next = next[len(next)-maxSeen:]
	}
	b, _ := json.Marshal(next)
	if s.opt.Config.Station.StateDir == "" {
		s.seen = next // nowhere to keep it: remembered until the process ends
		return true, nil
	}
	if err := config.WriteFile(s.opt.Config.Station.StateDir, seenFile, b); err != nil {
		return false, fmt.Errorf("station: remember command: %w", err)
	}
	s.seen = next
	return true, nil
}

// onCommand answers and runs a fleet command: unknown, expired and duplicate ones are only
// answered; a known one is remembered before it runs, so it runs at most once.
func (s *Station) onCommand(c protocol.Command) {
	now := s.opt.Now()
	res := func(status string, err error, data any) {
		r := protocol.CommandResult{V: protocol.Version, ID: c.ID, Station: s.opt.Enroller.StationID(), Status: status, OK: status == protocol.CmdDone || status == protocol.CmdAccepted, TS: s.opt.Now()}
		if err != nil {
			r.Error = err.Error()
		}
		if data != nil {
			r.Data, _ = json.Marshal(data)
		}
		s.log.Info("station: command", "id", c.ID, "name", c.Name, "status", status, "err", r.Error)
		if fc, ok := s.currentCloud().(fleetCloud); ok {
			if err := fc.ReportCommand(r); err != nil {
				s.log.Info("station: command result not delivered", "id", c.ID, "err", err)
			}
		}
	}
	switch {
	case c.ID == "":
		res(protocol.CmdFailed, errors.New("command without an id"), nil)
		return
	case !slices.Contains(protocol.Commands, c.Name):
		res(protocol.CmdUnknown, fmt.Errorf("unknown command %q", c.Name), nil)
		return
	case !c.Expires.IsZero() && !clockSet(now):
		res(protocol.CmdExpired, errors.New("the station's clock is not set; commands with an expiry are dropped"), nil)
		return
	case !c.Expires.IsZero() && !now.Before(c.Expires):
		res(protocol.CmdExpired, fmt.Errorf("expired at %s", c.Expires.Format(time.RFC3339)), nil)
		return
	}
	fresh, err := s.markSeen(c.ID)
	if err != nil {
		res(protocol.CmdFailed, err, nil)
		return
	}
	if !fresh {
		res(protocol.CmdDuplicate, nil, nil)
		return
	}
	res(protocol.CmdAccepted, nil, nil)
	data, err := s.runCommand(c)
	if err != nil {
		res(protocol.CmdFailed, err, nil)
		return
	}
	res(protocol.CmdDone, nil, data)
}

func (s *Station) runCommand(c protocol.Command) (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	switch c.Name {
	case protocol.CmdPing:
		return map[string]any{"pong": s.opt.Now(), "version": s.opt.Version, "config_hash": s.ConfigHash()}, nil
	case protocol.CmdReboot:
		if s.opt.Reboot == nil {
			return nil, errors.New("reboot is not available on this station")
		}
		return nil, s.opt.Reboot()
	case protocol.CmdReenroll:
		select {
		case s.reenroll <- struct{}{}:
		default:
		}
		return nil, nil
	case protocol.CmdTestPrint:
		return nil, s.testPrint(ctx)
	case protocol.CmdPrintPairing:
		s.mu.Lock()
		code := s.pairing
		s.mu.Unlock()
		if code == nil {
			return nil, errors.New("no pairing code: the station is enrolled")
		}
		return nil, s.printPairing(ctx, *code)
	case protocol.CmdIdentify:
		return s.identify(ctx, c.Args)
	case protocol.CmdLogLevel:
		var a struct {
			Level string `json:"level"`
		}
		if len(c.Args) > 0 {
			if err := json.Unmarshal(c.Args, &a); err != nil {
				return nil, fmt.Errorf("args: %w", err)
			}
		}
		var l slog.Level
		if err := l.UnmarshalText([]byte(a.Level)); err != nil {
			return nil, fmt.Errorf("args.level: %q is not one of debug, info, warn, error", a.Level)
		}
		if s.opt.LogLevel == nil {
			return nil, errors.New("the log level of this station is fixed")
		}
		s.opt.LogLevel.Set(l)
		return map[string]string{"level": l.String()}, nil
	}
	return nil, fmt.Errorf("unknown command %q", c.Name)
}

// testLayout is the self-test label: who the station is and what it runs.
const testLayout = `{"version":1,"id":"selftest","name":"Station self-test","width_mm":101.6,"height_mm":50.8,
 "elements":[
  {"type":"text","x":3,"y":3,"text":"Label station self-test","font_pt":10,"bold":true,"max_width":95,"fit":"shrink"},
  {"type":"text","x":3,"y":12,"text":"Station {station}","font_pt":8,"max_width":95,"fit":"shrink"},
  {"type":"text","x":3,"y":18,"text":"Version {version}","font_pt":8,"max_width":95,"fit":"shrink"},
  {"type":"text","x":3,"y":24,"text":"Config {hash}","font_pt":7,"max_width":95,"fit":"shrink"},
  {"type":"text","x":3,"y":30,"text":"Serial {serial}","font_pt":7,"max_width":95,"fit":"shrink"},
  {"type":"text","x":3,"y":36,"text":"{lang} {dpi} dpi","font_pt":7,"max_width":95,"fit":"shrink"}
 ]}`

func (s *Station) testPrint(ctx context.Context) error {
	lay, err := label.ParseLayout([]byte(testLayout))
	if err != nil {
		return fmt.Errorf("station: test layout: %w", err)
	}
	cfg := s.config().Printer
	rec := label.Record{"station": s.opt.Enroller.StationID(), "version": s.opt.Version, "hash": s.ConfigHash(),
		"serial": s.opt.Serial, "lang": cfg.Lang, "dpi": strconv.Itoa(cfg.DPI)}
	data, err := label.Render(lay, rec, label.Target{Lang: label.Lang(cfg.Lang), DPI: cfg.DPI, Raster: cfg.Raster})
	if err != nil {
		return fmt.Errorf("station: test label: %w", err)
	}
	s.printMu.Lock()
	defer s.printMu.Unlock()
	if err := s.opt.Printer.Send(ctx, data); err != nil {
		return fmt.Errorf("station: test label: %w", err)
	}
	s.labels.Add(1)
	return nil
}

// Boot counter and telemetry.

// bootFile holds the number of the station's starts.
const bootFile = "boot"

// nextBoot increments the persisted boot counter; a counter that cannot be read starts over
// from the clock, which still only grows on a board with a set clock.
func nextBoot(dir string, now time.Time) (int64, error) {
	if dir == "" {
		return 0, errors.New("station: boot counter: no state directory")
	}
	var n int64
	b, err := os.ReadFile(filepath.Join(dir, bootFile))
	switch {
	case err == nil:
		n, err = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	case errors.Is(err, os.ErrNotExist):
		err = nil
	}
	if err != nil {
		n = now.Unix()
	}
	n++
	if werr := config.WriteFile(dir, bootFile, []byte(strconv.FormatInt(n, 10)+"\n")); werr != nil {
		return n, fmt.Errorf("station: boot counter: %w", werr)
	}
	return n, err
}

// Boot is this start's number.
func (s *Station) Boot() int64 { return s.boot }

// telemetry sends a health report every telemetry.interval_s while the link is up, and at once
// when an alarm starts or ends. A pushed interval starts over at once: the next report is due
// one new interval after the change.
func (s *Station) telemetry(ctx context.Context) {
	for {
		t := time.NewTimer(s.config().Telemetry.Interval())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.reconfigured:
			t.Stop()
			continue
		case <-t.C:
		case <-s.alarms.wake():
			t.Stop()
		}
		fc, ok := s.currentCloud().(fleetCloud)
		if !ok {
			continue
		}
		if err := fc.Telemetry(s.Health(ctx)); err != nil {
			s.log.Debug("station: telemetry not sent", "err", err)
		}
	}
}

// Health is the station's current telemetry report.
func (s *Station) Health(ctx context.Context) protocol.Telemetry {
	tm := protocol.Telemetry{
		V: protocol.Version, State: s.phase.Load().(string), Uptime: int64(s.opt.Now().Sub(s.startedAt).Seconds()),
		Boot: s.boot, LabelsPrinted: s.labels.Load(), Version: s.opt.Version, ConfigHash: s.ConfigHash(),
		RSSBytes: rss(), TS: s.opt.Now(), Alarms: s.alarms.list(),
	}
	if e, ok := s.lastErr.Load().(string); ok {
		tm.LastError = e
	}
	if n, err := s.opt.Journal.Size(); err == nil {
		tm.JournalBytes = n
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if st, err := s.opt.Printer.Status(pctx); err != nil {
		tm.PrinterStatus = "unreachable: " + err.Error()
	} else if f := st.Faults(); len(f) > 0 {
		tm.PrinterStatus = strings.Join(f, ", ")
	} else {
		tm.PrinterStatus = "ready"
	}
	return tm
}

// rss reads the resident set size from /proc; 0 where there is none.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}
