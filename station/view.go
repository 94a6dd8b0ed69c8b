package station

import (
	"fmt"
	"time"

	"labelstation/display"
)

// storageFull is the idle screen's line while the journal has no room for jobs.
const storageFull = "Storage full"

// ViewOf derives the screen from the model: the display only ever draws this.
func ViewOf(m Model, now time.Time, stationName string) display.View {
	v := display.View{Now: now, Station: stationName, Online: m.Online, User: m.User}
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
		v.Lines = []string{"Pairing denied", "New code follows"}
	case Connecting:
		v.Kind = display.Connecting
		if m.StorageFull {
			v.Lines = []string{storageFull}
		}
	case Idle:
		v.Kind = display.Idle
		if !m.Configured {
			v.Lines = []string{"Waiting for config"}
		}
		if m.StorageFull {
			v.Lines = append(v.Lines, storageFull)
		}
	case Lookup:
		v.Kind = display.Lookup
	case List:
		v.Kind = display.List
		for _, j := range m.Jobs {
			v.Jobs = append(v.Jobs, display.JobLine{Title: j.Title, Labels: j.Labels})
		}
	case Printing:
		v.Kind, v.Done, v.Total = display.Printing, m.Done, m.Total
		if m.Title != "" {
			v.Lines = []string{m.Title}
		}
		if m.Notice != "" {
			v.Lines = append(v.Lines, m.Notice)
		}
	case Paused:
		v.Kind, v.Done, v.Total = display.Paused, m.Done, m.Total
		v.Lines = []string{m.Message}
		if m.Notice != "" {
			v.Lines = append(v.Lines, m.Notice)
		}
	case Done:
		v.Kind = display.Done
	case NoJobs:
		v.Kind = display.NoJobs
	case UnknownBadge:
		v.Kind = display.UnknownBadge
	case Offline:
		v.Kind = display.Offline
		if m.Message != "" {
			v.Lines = []string{m.Message}
		}
	case Failed:
		v.Kind = display.Error
		v.Lines = []string{m.Message}
	case SetupProblem:
		v.Kind = display.Error
		// The code first: on a 128×64 panel it may take two lines and push the advice off.
		v.Lines = []string{"Setup problem:", m.Setup, "ask your admin"}
	default:
		v.Kind = display.Error
		v.Lines = []string{fmt.Sprintf("unknown state %d", m.Phase)}
	}
	return v
}
