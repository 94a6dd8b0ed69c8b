package station

import (
	"fmt"
	"strings"
	"time"

	"labelstation/display"
)

// storageFull is the idle screen's line while the journal has no room for jobs.
const storageFull = "Storage full"

// Problem is a fault as a person at the shelf reads it: what is wrong, what to do, and
// what happens to their jobs. The words are for someone holding a badge, not for the log.
type Problem struct {
	Title string // the headline: "Paper out"
	Do    string // one line of what to do: "Load labels, close the lid."
	Jobs  string // what happens to the jobs: "Your jobs wait here."
}

// The problems the screens name. Printer faults keep the released jobs on the station and
// resume by themselves; cloud and setup problems leave jobs held in the cloud.
//
// Each fits a 128×64 panel on one page: a line holds 17 characters, and what to do and the
// jobs line take three lines between them.
var (
	ProblemPaperOut   = Problem{"Paper out", "Load labels, close the lid.", jobsWait}
	ProblemPaperJam   = Problem{"Paper jam", "Open the printer, clear the jam.", jobsWait}
	ProblemRibbonOut  = Problem{"Ribbon out", "Fit a new ribbon.", jobsWait}
	ProblemHeadOpen   = Problem{"Printer open", "Close the print head.", jobsWait}
	ProblemPrinterOff = Problem{"Printer offline", "Check power and cable.", jobsWait}
	ProblemPrinter    = Problem{"Printer problem", "Check the printer's lights.", jobsWait}
	ProblemCloud      = Problem{"Offline", "No connection.", jobsKept}
	ProblemStorage    = Problem{"Storage full", "Tell IT.", "Jobs stay in the cloud."}
	ProblemBadge      = Problem{"Badge not read", "Hold badge still.", jobsKept}
	ProblemReader     = Problem{"Reader problem", "Tell IT.", jobsKept}
	ProblemNotSetUp   = Problem{"Not set up", "Try again later.", jobsKept}
	ProblemSetup      = Problem{"Setup problem", "Tell IT.", jobsKept}
	ProblemUnknown    = Problem{"Did not work", "Tap again.", jobsKept}
	ProblemExpired    = Problem{"Job expired", "Send it again.", "It was kept too long."}
)

// What happens to the jobs: a printer fault keeps released jobs on the station and prints
// them once fixed; everything else leaves them held in the cloud for the next tap.
const (
	jobsWait = "Your jobs wait."
	jobsKept = "Your jobs are kept."
)

// printerFaults maps the fault names of drivers/printer (Status.Faults, carried in the
// message of a PrintFault or a refused release) to problems, most specific first.
var printerFaults = []struct {
	names []string
	p     Problem
}{
	{[]string{"paper out"}, ProblemPaperOut},
	{[]string{"paper jam"}, ProblemPaperJam},
	{[]string{"ribbon out"}, ProblemRibbonOut},
	{[]string{"head open", "cover open"}, ProblemHeadOpen},
	{[]string{"offline", "paused"}, ProblemPrinterOff},
}

// ProblemOf reads a model message (a fault or error text from the worker, the cloud link or
// the state machine) as a problem. ok is false for text that names no problem.
func ProblemOf(msg string) (p Problem, ok bool) {
	low := strings.ToLower(msg)
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(low, s) {
				return true
			}
		}
		return false
	}
	switch {
	case msg == "":
		return Problem{}, false
	case has(errExpired.Error()):
		return ProblemExpired, true
	case has("journal", "storage full"):
		if has("full", "no space") {
			return ProblemStorage, true
		}
		return ProblemSetup, true
	case has("printer"):
		for _, f := range printerFaults {
			if has(f.names...) {
				return f.p, true
			}
		}
		if has("printer: fault") {
			return ProblemPrinter, true
		}
		return ProblemPrinterOff, true // no answer: unplugged, switched off, wrong address
	case has("cloud unreachable", "no answer from the cloud", "offline"):
		return ProblemCloud, true
	case has("not configured", "no badge key"):
		return ProblemNotSetUp, true
	case has("reader"):
		return ProblemReader, true
	case has("badge:"):
		return ProblemBadge, true
	}
	return ProblemUnknown, true
}

func (p Problem) lines() []string { return []string{p.Do, p.Jobs} }

// ReaderProblem is the idle screen's title while the badge reader keeps failing.
const ReaderProblem = "Badge reader problem"

// ViewOf derives the screen from the model: the display only ever draws this.
func ViewOf(m Model, now time.Time, stationName string) display.View {
	v := display.View{Now: now, Station: stationName, Online: m.Online, User: m.User}
	problem := func(def Problem) {
		p, ok := ProblemOf(m.Message)
		if !ok {
			p = def
		}
		v.Title, v.Lines = p.Title, p.lines()
	}
	switch m.Phase {
	case Boot:
		v.Kind = display.Boot
	case Enrolling:
		v.Kind = display.Enrolling
		v.QR = m.Code.URIComplete
		if v.QR == "" {
			v.QR = m.Code.URI // RFC 8628 §3.3.1: the complete URI is optional
		}
		v.Code, v.URL, v.Expires = m.Code.UserCode, m.Code.URI, m.Code.Expires
	case Denied:
		v.Kind = display.Denied
		v.Lines = []string{"Pairing denied.", "Ask IT; a new code follows."}
	case Connecting:
		v.Kind = display.Connecting
		switch {
		case m.StorageFull:
			v.Kind, v.Title, v.Lines = display.Offline, ProblemStorage.Title, ProblemStorage.lines()
		case m.WasOnline:
			// The link was up and dropped: an outage, not a start. Taps cannot work now, so
			// the screen does not invite one.
			v.Kind, v.Title, v.Lines = display.Offline, ProblemCloud.Title, ProblemCloud.lines()
		}
	case Idle:
		v.Kind = display.Idle
		switch {
		case !m.Configured:
			// A tap would fail until the fleet config brings the badge key.
			v.Title, v.Hero, v.Lines = ProblemNotSetUp.Title, "Not ready", []string{ProblemNotSetUp.Do}
		case m.StorageFull:
			v.Lines = []string{storageFull, "Tell IT"}
		}
		if m.ReaderFault != "" {
			v.Kind, v.Title = display.Error, ReaderProblem
			v.Lines = append([]string{"Taps are not read.", "Restarting the reader."}, v.Lines...)
		}
	case Lookup:
		v.Kind = display.Lookup
	case List:
		v.Kind = display.List
		for _, j := range m.Jobs {
			v.Jobs = append(v.Jobs, display.JobLine{Title: j.Title, Labels: j.Labels, Note: timeLeft(j.Expires, now)})
		}
		switch {
		case m.Releasing:
			v.Lines = []string{"Sending..."}
		case m.Confirm:
			v.Lines = []string{"Press A to print"}
		}
	case Select, Preview, Kept:
		viewRelease(&v, m, now)
	case Printing:
		v.Kind, v.Done, v.Total = display.Printing, m.Done, m.Total
		if m.OfflineRelease {
			v.Lines = []string{OfflineNotice}
		}
		if m.Title != "" {
			v.Lines = append(v.Lines, m.Title)
		}
		if m.Notice != "" {
			v.Lines = append(v.Lines, m.Notice)
		}
	case Paused:
		v.Kind, v.Done, v.Total = display.Paused, m.Done, m.Total
		problem(ProblemPrinter)
		if m.Notice != "" {
			v.Lines = append(v.Lines, m.Notice)
		}
	case Done:
		v.Kind, v.Total = display.Done, m.Printed
	case NoJobs:
		v.Kind = display.NoJobs
	case UnknownBadge:
		v.Kind = display.UnknownBadge
	case Offline:
		v.Kind = display.Offline
		problem(ProblemCloud)
	case Failed:
		v.Kind = display.Error
		problem(ProblemUnknown)
	case SetupProblem:
		// The server's error code is what IT needs to fix it; it comes before the jobs line.
		v.Kind, v.Title = display.Error, ProblemSetup.Title
		v.Lines = []string{"Tell IT: " + m.Setup, ProblemSetup.Jobs}
	case LinkWait, LinkCode, LinkExpired, LinkRefused, LinkDone:
		linkView(&v, m, now)
	default:
		v.Kind = display.Error
		v.Lines = []string{fmt.Sprintf("unknown state %d", m.Phase)}
	}
	return v
}
