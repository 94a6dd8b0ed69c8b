package main

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"labelstation/station"
)

type sentLog struct{ msgs []string }

func (s *sentLog) notify(m string) error { s.msgs = append(s.msgs, m); return nil }

func TestSupervisorReadyOnlyOnPairingCodeOrIdle(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []station.Model
		ready int // index of the step that sends READY=1, -1 for none
	}{
		{"boot and connecting are not ready", []station.Model{{Phase: station.Boot}, {Phase: station.Connecting}}, -1},
		{"enrolling without a code yet", []station.Model{{Phase: station.Boot}, {Phase: station.Enrolling}}, -1},
		{"pairing code shown", []station.Model{{Phase: station.Boot}, {Phase: station.Enrolling, Code: station.PairingCode{UserCode: "ABCD-EFGH"}}}, 1},
		{"idle", []station.Model{{Phase: station.Boot}, {Phase: station.Connecting}, {Phase: station.Idle, Online: true}, {Phase: station.Lookup}, {Phase: station.Idle}}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sent sentLog
			s := &supervisor{notify: sent.notify, log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: time.Now}
			got := -1
			for i, m := range tc.steps {
				n := len(sent.msgs)
				s.step(m)
				for _, msg := range sent.msgs[n:] {
					if strings.Contains(msg, "READY=1") {
						if got != -1 {
							t.Fatalf("READY=1 sent twice (steps %d and %d)", got, i)
						}
						got = i
					}
				}
			}
			if got != tc.ready {
				t.Fatalf("READY=1 at step %d, want %d; sent %q", got, tc.ready, sent.msgs)
			}
		})
	}
}

func TestSupervisorPingsAtAQuarterOfTheWatchdog(t *testing.T) {
	var sent sentLog
	now := time.Unix(1000, 0)
	s := &supervisor{notify: sent.notify, log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: func() time.Time { return now }, watchdog: 4 * time.Second}
	pings, extends := 0, 0
	count := func() {
		for _, m := range sent.msgs {
			pings += strings.Count(m, "WATCHDOG=1")
			if strings.Contains(m, "EXTEND_TIMEOUT_USEC=16000000") {
				extends++
			}
		}
		sent.msgs = nil
	}
	// Ten steps 250 ms apart while connecting: a ping (and a start-timeout extension) per second.
	for range 10 {
		s.step(station.Model{Phase: station.Connecting})
		now = now.Add(250 * time.Millisecond)
	}
	count()
	if pings != 3 || extends != 3 {
		t.Fatalf("connecting for 2.5 s: %d pings, %d extensions; want 3 and 3", pings, extends)
	}
	pings, extends = 0, 0
	for range 8 {
		s.step(station.Model{Phase: station.Idle})
		now = now.Add(250 * time.Millisecond)
	}
	count()
	if pings != 2 || extends != 0 {
		t.Fatalf("idle for 2 s: %d pings, %d extensions; want 2 and none once ready", pings, extends)
	}
}
