package station

import (
	"errors"
	"fmt"
	"image"
	"slices"
	"strings"
	"testing"
	"time"

	"labelstation/display"
	"labelstation/drivers/printer"
	"labelstation/protocol"
	"labelstation/station/cloud"
)

// read returns every line a person reads on v at size, over all its pages.
func read(t *testing.T, v display.View, size image.Point) []string {
	t.Helper()
	n, err := display.Pages(v, size)
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	seen := map[int]bool{}
	for i := 0; len(seen) < n && i < 100; i++ {
		v.Now = t0.Add(time.Duration(i) * time.Second)
		ls, err := display.Text(v, size)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ls...)
		seen[len(strings.Join(ls, "|"))*1000+len(ls)] = true
	}
	return all
}

// says reports whether the lines, joined as a person reads them, contain every word of want
// in order and nothing was clipped ("..").
func says(lines []string, want string) bool {
	text := " " + strings.Join(lines, " ") + " "
	return strings.Contains(text, " "+want+" ") || strings.Contains(strings.ReplaceAll(text, "  ", " "), want)
}

var panels = []image.Point{{128, 64}, {250, 122}, {240, 240}}

// Printer faults, as drivers/printer reports them and as they reach the model (a fault while
// printing, or a release refused because the printer was not ready), read as a title, what to
// do and what happens to the jobs, whole on every panel.
func TestFaultsInWords(t *testing.T) {
	fault := func(st printer.Status) string { return fmt.Errorf("%w: %v", ErrPrinterNotReady, st.Fault()).Error() }
	cases := []struct {
		name string
		m    Model
		want Problem
	}{
		{"paper out while printing", Model{Phase: Paused, Message: fault(printer.Status{PaperOut: true}), Done: 2, Total: 5}, ProblemPaperOut},
		{"ribbon out", Model{Phase: Paused, Message: fault(printer.Status{RibbonOut: true})}, ProblemRibbonOut},
		{"head open", Model{Phase: Paused, Message: fault(printer.Status{HeadOpen: true})}, ProblemHeadOpen},
		{"paper out and head open", Model{Phase: Paused, Message: fault(printer.Status{PaperOut: true, HeadOpen: true})}, ProblemPaperOut},
		{"printer not answering", Model{Phase: Paused, Message: fmt.Errorf("%w: %v", ErrPrinterNotReady, errors.New("dial tcp 10.0.0.7:9100: connection refused")).Error()}, ProblemPrinterOff},
		{"printer offline", Model{Phase: Paused, Message: fault(printer.Status{Offline: true})}, ProblemPrinterOff},
		{"over temperature", Model{Phase: Paused, Message: fault(printer.Status{OverTemp: true})}, ProblemPrinter},
		{"fault before the tap", Model{Phase: Failed, Message: fault(printer.Status{PaperOut: true})}, ProblemPaperOut},
		{"cloud outage at a tap", Model{Phase: Offline, Message: "Cloud unreachable"}, ProblemCloud},
		{"cloud silent", Model{Phase: Offline, Message: "No answer from the cloud"}, ProblemCloud},
		{"storage full", Model{Phase: Failed, Message: "Storage full: job refused"}, ProblemStorage},
		{"journal broken", Model{Phase: Paused, Message: "journal: bbolt: database not open"}, ProblemSetup},
		{"badge unreadable", Model{Phase: Failed, Message: "badge: 9 bits: want at least 16"}, ProblemBadge},
		{"not configured", Model{Phase: Failed, Message: "not configured yet: no badge key from the fleet"}, ProblemNotSetUp},
		{"reader problem", Model{Phase: Failed, Message: "badge reader pn532: i2c: no ACK"}, ProblemReader},
		{"anything else", Model{Phase: Failed, Message: "Parcels: data: line 3: bad quote"}, ProblemUnknown},
	}
	for _, c := range cases {
		v := ViewOf(c.m, t0, "Dock 3")
		if v.Title != c.want.Title || !slices.Equal(v.Lines, []string{c.want.Do, c.want.Jobs}) {
			t.Errorf("%s: view %q / %q, want %+v", c.name, v.Title, v.Lines, c.want)
			continue
		}
		for _, size := range panels {
			lines := read(t, v, size)
			for _, l := range lines {
				if strings.HasSuffix(l, "..") {
					t.Errorf("%s at %v: clipped line %q", c.name, size, l)
				}
				if strings.Contains(strings.ToLower(l), "printer:") || strings.Contains(l, "fault") {
					t.Errorf("%s at %v: developer text %q", c.name, size, l)
				}
			}
			for _, w := range []string{c.want.Do, c.want.Jobs} {
				if !says(lines, w) {
					t.Errorf("%s at %v: %q not shown whole; the screen reads %q", c.name, size, w, lines)
				}
			}
		}
	}
}

// A dropped link reads as "Offline ... Your jobs are kept", not as a start-up "Connecting",
// and does not invite a tap; the first connect still says "Connecting".
func TestOutageReadsOffline(t *testing.T) {
	s := Settings{ResultScreen: 5 * time.Second}
	m := Model{Phase: Connecting, Configured: true}
	if v := ViewOf(m, t0, "Dock 3"); v.Kind != display.Connecting {
		t.Fatalf("first connect: %v", v.Kind)
	}
	m, _ = Step(m, OnlineChanged{Online: true}, t0, s)
	m, _ = Step(m, OnlineChanged{Online: false}, t0, s)
	for _, size := range panels {
		lines := read(t, ViewOf(m, t0, "Dock 3"), size)
		if lines[0] != "Offline" || !says(lines, "Your jobs are kept.") || says(lines, "Tap your badge") {
			t.Errorf("outage at %v reads %q", size, lines)
		}
	}
	// A tap during the outage says the same.
	m, _ = Step(m, BadgeTapped{Hash: "h"}, t0, s)
	if lines := read(t, ViewOf(m, t0, "Dock 3"), panels[0]); lines[0] != "Offline" || !says(lines, "Your jobs are kept.") {
		t.Errorf("tap during the outage reads %q", lines)
	}
	// So does a lookup the link could not send.
	m = Model{Phase: Lookup, Online: true, Configured: true}
	m, _ = Step(m, LookupDone{Err: cloud.ErrOffline}, t0, s)
	if lines := read(t, ViewOf(m, t0, ""), panels[0]); lines[0] != "Offline" || !says(lines, "Your jobs are kept.") {
		t.Errorf("lookup offline reads %q", lines)
	}
}

// Before the fleet config brings the badge key the idle screen does not ask for a tap.
func TestIdleBeforeConfig(t *testing.T) {
	for _, size := range panels {
		lines := read(t, ViewOf(Model{Phase: Idle, Online: true}, t0, "Dock 3"), size)
		if says(lines, "Tap your badge") || lines[0] != ProblemNotSetUp.Title {
			t.Errorf("unconfigured idle at %v reads %q", size, lines)
		}
		lines = read(t, ViewOf(Model{Phase: Idle, Online: true, Configured: true}, t0, "Dock 3"), size)
		if !says(lines, "Tap your badge") && !says(lines, "Tap your") {
			t.Errorf("configured idle at %v reads %q", size, lines)
		}
	}
}

// Done counts the labels printed across jobs; confirm mode says which button prints.
func TestCountsAndConfirm(t *testing.T) {
	s := Settings{ResultScreen: 5 * time.Second, ConfirmRelease: true}
	m := Model{Phase: Lookup, Online: true, Configured: true, Badge: "h"}
	m, _ = Step(m, LookupDone{Reply: protocol.LookupReply{User: &protocol.User{Name: "Ann"}, Jobs: twoJobs}}, t0, s)
	if lines := read(t, ViewOf(m, t0, ""), panels[0]); !says(lines, "Press A to print") {
		t.Errorf("confirm list reads %q", lines)
	}
	m, _ = Step(m, ButtonPressed{Name: "A"}, t0, s)
	m, _ = Step(m, ReleaseDone{Reply: protocol.ReleaseReply{Released: []string{"j1", "j2"}}}, t0, s)
	for _, ev := range []Event{
		PrintProgress{Title: "Parcels", Done: 0, Total: 2}, PrintProgress{Title: "Parcels", Done: 1, Total: 2},
		PrintProgress{Title: "Parcels", Done: 2, Total: 2}, JobFinished{Title: "Parcels"},
		PrintProgress{Title: "Shelf", Done: 0, Total: 1}, PrintProgress{Title: "Shelf", Done: 1, Total: 1},
		JobFinished{Title: "Shelf"}, PrintIdle{},
	} {
		m, _ = Step(m, ev, t0, s)
	}
	if lines := read(t, ViewOf(m, t0, ""), panels[0]); m.Phase != Done || !says(lines, "3 labels printed") {
		t.Errorf("done (%s) reads %q", m.Phase, lines)
	}
}
