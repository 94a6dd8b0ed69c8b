package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"labelstation/station"
)

// supervisor speaks systemd's service protocol (sd_notify(3)) for Type=notify units: READY=1 once
// the station shows something a person can act on (the pairing code or the idle screen),
// WATCHDOG=1 from the state loop itself, and STOPPING=1 on shutdown. Outside systemd
// (no NOTIFY_SOCKET) every message is dropped by daemon.SdNotify.
type supervisor struct {
	notify   func(state string) error
	log      *slog.Logger
	now      func() time.Time
	watchdog time.Duration // WATCHDOG_USEC; zero when the unit has no WatchdogSec=

	// Touched only by step, which runs on the state loop.
	ready    bool
	lastPing time.Time
	status   string
}

func newSupervisor(log *slog.Logger) *supervisor {
	s := &supervisor{notify: func(state string) error { _, err := daemon.SdNotify(false, state); return err }, log: log, now: time.Now}
	wd, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn("stationd: systemd watchdog setting ignored", "err", err)
	}
	s.watchdog = wd
	return s
}

// readyPhase is true for the screens that mean "this station works": a pairing code to enroll
// with, or the idle screen waiting for a badge.
func readyPhase(m station.Model) bool {
	return m.Phase == station.Idle || (m.Phase == station.Enrolling && m.Code.UserCode != "")
}

// step runs on the station's state loop after every step (station.Options.Heartbeat). The pings
// come from here and nowhere else, so a loop that stops stepping stops pinging and systemd
// restarts the service after WatchdogSec.
func (s *supervisor) step(m station.Model) {
	var msg string
	if st := statusLine(m); st != s.status {
		s.status = st
		msg += "STATUS=" + st + "\n"
	}
	if !s.ready && readyPhase(m) {
		s.ready = true
		msg += "READY=1\n"
	}
	now := s.now()
	if s.watchdog > 0 && now.Sub(s.lastPing) >= s.watchdog/4 {
		s.lastPing = now
		msg += "WATCHDOG=1\n"
		if !s.ready {
			// Waiting for the issuer or the broker at boot can take longer than any fixed
			// TimeoutStartSec=; a loop that still steps extends it, a wedged one does not.
			msg += "EXTEND_TIMEOUT_USEC=" + strconv.FormatInt(int64(4*s.watchdog/time.Microsecond), 10) + "\n"
		}
	}
	if msg != "" {
		s.send(msg)
	}
}

// stopping tells systemd the service is shutting down on purpose.
func (s *supervisor) stopping() { s.send("STOPPING=1\nSTATUS=stopping\n") }

func (s *supervisor) send(msg string) {
	if err := s.notify(msg); err != nil {
		s.log.Warn("stationd: sd_notify", "err", err)
	}
}

// statusLine is what `systemctl status stationd` shows.
func statusLine(m station.Model) string {
	online := "offline"
	if m.Online {
		online = "online"
	}
	if m.Phase == station.Enrolling && m.Code.UserCode != "" {
		return fmt.Sprintf("%s: pairing code %s at %s", m.Phase, m.Code.UserCode, m.Code.URI)
	}
	return fmt.Sprintf("%s, broker %s", m.Phase, online)
}

// wedgeEnv names a file whose existence makes a --sim station's state loop block inside its
// heartbeat, as a deadlock would: the watchdog test uses it to see the pings stop. Only --sim
// reads it.
const wedgeEnv = "STATIOND_SIM_WEDGE_FILE"

// simWedge returns the test's wedge check for a --sim station, nil otherwise.
func simWedge(ctx context.Context, sim bool) func() {
	path := os.Getenv(wedgeEnv)
	if !sim || path == "" {
		return nil
	}
	return func() {
		if _, err := os.Stat(path); err == nil {
			<-ctx.Done()
		}
	}
}
