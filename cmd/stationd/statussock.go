package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"labelstation/drivers/printer"
	"labelstation/internal/buildinfo"
	"labelstation/internal/statusapi"
	"labelstation/station"
)

// statusSocketPath is where the status socket goes: the flag, else systemd's
// RuntimeDirectory= (/run/stationd), else the state directory.
func statusSocketPath(flag, state string) string {
	if flag != "" {
		return flag
	}
	if d := os.Getenv("RUNTIME_DIRECTORY"); d != "" {
		return filepath.Join(filepath.SplitList(d)[0], "status.sock")
	}
	return filepath.Join(state, "status.sock")
}

// statusServer answers `stationctl status` on a unix socket. The socket is 0660: root and the
// stationd group (admins added to it) may read the report; it changes nothing.
type statusServer struct {
	a       *appliance
	started time.Time
	model   atomic.Pointer[station.Model]
	recent  *recentLog
	cfgFile string
	log     *slog.Logger
}

// observe keeps the state loop's latest model (called from the heartbeat).
func (s *statusServer) observe(m station.Model) { s.model.Store(&m) }

func (s *statusServer) listen(path string) (func() error, error) {
	if len(path) >= 104 { // sun_path is 104 bytes on BSD, 108 on Linux
		return nil, fmt.Errorf("status socket %s: path too long for a unix socket", path)
	}
	// A socket left by a process that died is stale; a live stationd would answer.
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("status socket %s: another stationd is running", path)
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("status socket: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("status socket: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+statusapi.Path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s.report(r.Context()))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("stationd: status socket stopped", "err", err)
		}
	}()
	return func() error { err := srv.Close(); os.Remove(path); return err }, nil
}

func (s *statusServer) report(ctx context.Context) statusapi.Status {
	a := s.a
	cfg := a.Config
	if a.Station != nil {
		cfg = a.Station.Config()
	}
	st := statusapi.Status{
		State:   "boot",
		Version: buildinfo.Get(),
		Started: s.started,
		Config:  statusapi.Config{File: s.cfgFile, StateDir: cfg.Station.StateDir, LogLevel: cfg.Log.Level},
		Broker:  statusapi.Broker{URL: cfg.Cloud.Broker},
		Printer: statusapi.Printer{URL: a.PrinterURL, Lang: cfg.Printer.Lang},
		Station: statusapi.Station{Name: cfg.Station.Name, Serial: a.Serial},
	}
	if m := s.model.Load(); m != nil {
		st.State, st.Message, st.Broker.Online = m.Phase.String(), m.Message, m.Online
		if m.Phase == station.Enrolling {
			st.Station.PairingCode, st.Station.PairingURI = m.Code.UserCode, m.Code.URI
		}
	}
	if a.Prov != nil {
		st.Station.Enrolled = a.Prov.Enrolled()
		st.Station.ID = a.Prov.StationID()
	}
	st.Printer = s.printer(ctx, st.Printer)
	st.Journal = s.journal()
	st.LastErrors = s.recent.Entries()
	return st
}

// printer asks the printer for its state. A job holds the printer while it prints, so the
// answer is awaited for a few seconds only: a status query must not hang behind a long print.
func (s *statusServer) printer(ctx context.Context, p statusapi.Printer) statusapi.Printer {
	pr := s.a.printer
	if pr == nil {
		p.Error = "no printer"
		return p
	}
	type answer struct {
		st  printer.Status
		err error
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	done := make(chan answer, 1)
	go func() {
		defer cancel()
		st, err := pr.Status(ctx)
		done <- answer{st, err}
	}()
	select {
	case a := <-done:
		if a.err != nil {
			p.Error = a.err.Error()
			return p
		}
		p.Faults = a.st.Faults()
		p.OK = len(p.Faults) == 0
	case <-time.After(3 * time.Second):
		p.Error = "busy: no answer within 3 s (a job may hold the printer)"
	}
	return p
}

func (s *statusServer) journal() statusapi.Journal {
	j := statusapi.Journal{Path: filepath.Join(s.a.Config.Station.StateDir, "journal.db")}
	if fi, err := os.Stat(j.Path); err == nil {
		j.Bytes = fi.Size()
	}
	if s.a.Journal == nil {
		return j
	}
	p, err := s.a.Journal.Pending()
	u, err2 := s.a.Journal.Unreported()
	if err = errors.Join(err, err2); err != nil {
		j.Error = err.Error()
	}
	j.Pending, j.Unreported = len(p), len(u)
	return j
}
