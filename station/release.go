package station

import (
	"image"
	"slices"
	"time"

	"labelstation/protocol"
)

// Choosing a job (release.mode select), previewing it, and releasing jobs already on the
// station while the cloud is unreachable. Step hands these events and phases to stepRelease.

// Events of the release experience.
type (
	// PreviewReady: a released job to be previewed is on the station, held, with its first
	// label drawn. The worker posts it instead of printing the job.
	PreviewReady struct {
		ID, Title string
		Labels    int
		Image     image.Image
	}
	// OfflineReleased answers DoOfflineRelease: how many jobs already on the station were put
	// in the print queue for the badge's owner.
	OfflineReleased struct {
		User string
		Jobs int
		Err  error
	}
)

func (PreviewReady) event()    {}
func (OfflineReleased) event() {}

// Effects of the release experience.
type (
	// DoHold puts a job held on the station into the print queue (Held false) or keeps it.
	DoHold struct {
		ID   string
		Held bool
	}
	// DoOfflineRelease releases the jobs already on the station for the badge's owner, if the
	// badge was recognised recently enough (release.offline_seconds).
	DoOfflineRelease struct{ Badge string }
)

func (DoHold) effect()           {}
func (DoOfflineRelease) effect() {}

// OfflineNotice is what the printing screen says while jobs print without the cloud.
const OfflineNotice = "Offline - printing jobs already here"

// printButtons are the button names that choose or print; any other button moves on. The sim
// board and the web mirror have A and B, the default Raspberry Pi wiring ok and cancel. Held
// for a long press, a print button goes back instead (stepRelease).
var printButtons = []string{"B", "ok", "print"}

// IsPrintButton says whether the named button chooses (prints) rather than moves on.
func IsPrintButton(name string) bool { return slices.Contains(printButtons, name) }

// Entries of the Select screen: "Print all" first when there is more than one job, then
// the jobs, then "Back".
func selectEntries(jobs []protocol.JobSummary) (all bool, n int) {
	all = len(jobs) > 1
	n = len(jobs) + 1
	if all {
		n++
	}
	return all, n
}

// SelectedJob returns the job under the cursor; all is true on "Print all", back on "Back".
func SelectedJob(m Model) (j protocol.JobSummary, all, back bool) {
	hasAll, n := selectEntries(m.Jobs)
	i := m.Cursor
	switch {
	case i >= n-1:
		return j, false, true
	case hasAll && i == 0:
		return j, true, false
	case hasAll:
		i--
	}
	return m.Jobs[i], false, false
}

// liveJobs drops the jobs that expired by now and orders the rest for the list: oldest or
// newest submission first (jobs without a submission time keep the cloud's order).
func liveJobs(js []protocol.JobSummary, now time.Time, newest bool) []protocol.JobSummary {
	var out []protocol.JobSummary
	for _, j := range js {
		if !j.Expires.IsZero() && !now.Before(j.Expires) {
			continue // an expired job is never printed, so never offered
		}
		out = append(out, j)
	}
	slices.SortStableFunc(out, func(a, b protocol.JobSummary) int {
		if newest {
			return b.Submitted.Compare(a.Submitted)
		}
		return a.Submitted.Compare(b.Submitted)
	})
	return out
}

// stepRelease handles the release experience's events and phases; ok false leaves ev to Step.
func stepRelease(m Model, ev Event, now time.Time, s Settings) (Model, []Effect, bool) {
	switch e := ev.(type) {
	case ButtonPressed:
		switch {
		case m.Phase == Select && !m.Releasing:
			if e.Long && IsPrintButton(e.Name) {
				return leaveSelect(m), nil, true // held: "back", whichever entry is shown
			}
			r, eff := selectButton(m, e.Name, now, s)
			return r, eff, true
		case m.Phase == Preview:
			// Holding the print button is "not now", as on the list: the job stays here.
			if IsPrintButton(e.Name) && !e.Long {
				id := m.PreviewJob
				m.Phase, m.PreviewJob, m.PreviewImage, m.Until = Printing, "", nil, time.Time{}
				m.Done, m.Total, m.Title, m.Printed = 0, 0, "", 0
				if !m.Busy && s.Arrive > 0 {
					m.Until = now.Add(s.Arrive)
				}
				return m, []Effect{DoHold{ID: id, Held: false}}, true
			}
			return kept(m, now, s), nil, true
		}
	case PreviewReady:
		// The preview answers a release made from this screen; a job arriving later stays
		// held on the station for its owner's next tap.
		// It may overtake the release's reply, which then finds the preview on screen.
		waiting := (m.Phase == Printing && !m.Busy) || (m.Phase == Select && m.Releasing)
		if !waiting {
			return m, nil, true
		}
		m.Releasing = false
		m.Phase, m.PreviewJob, m.PreviewImage, m.Title, m.Total = Preview, e.ID, e.Image, e.Title, e.Labels
		m.Until = now.Add(s.SelectWait)
		return m, nil, true
	case OfflineReleased:
		if m.Phase != Lookup || !m.OfflineRelease {
			return m, nil, true
		}
		if e.Err != nil || e.Jobs == 0 {
			m.OfflineRelease = false
			m.Message = "Cloud unreachable"
			return result(m, Offline, now, s), nil, true
		}
		m.Phase, m.User, m.Badge, m.Done, m.Total, m.Title, m.Printed = Printing, e.User, "", 0, 0, "", 0
		m.Until = time.Time{}
		if !m.Busy && s.Arrive > 0 {
			m.Until = now.Add(s.Arrive)
		}
		return m, nil, true
	case Tick:
		expired := !m.Until.IsZero() && !now.Before(m.Until)
		switch {
		case m.Phase == Preview && expired:
			return kept(m, now, s), nil, true
		case m.Phase == Select && !m.Releasing && expired:
			return leaveSelect(m), nil, true // nobody chose
		}
	}
	return m, nil, false
}

// choose shows the job list of select mode.
func choose(m Model, now time.Time, s Settings) Model {
	m.Phase, m.Cursor, m.Until = Select, 0, now.Add(s.SelectWait)
	return m
}

// selectButton moves the cursor (any button but a print button) or acts on the entry.
func selectButton(m Model, name string, now time.Time, s Settings) (Model, []Effect) {
	m.Until = now.Add(s.SelectWait)
	if !IsPrintButton(name) {
		_, n := selectEntries(m.Jobs)
		m.Cursor = (m.Cursor + 1) % n
		return m, nil
	}
	j, all, back := SelectedJob(m)
	switch {
	case back:
		return leaveSelect(m), nil
	case all:
		return release(m, now, s)
	}
	m.Releasing = true
	if s.Answer > 0 {
		m.Until = now.Add(s.Answer)
	}
	return m, []Effect{DoRelease{Badge: m.Badge, Jobs: []string{j.ID}, Preview: s.Preview}}
}

// leaveSelect returns from the job list to idle with nothing printed: Back chosen, the print
// button held, or nobody chose in time.
func leaveSelect(m Model) Model {
	m.Phase, m.Until, m.User, m.Jobs, m.Cursor, m.Badge = ready(m), time.Time{}, "", nil, 0, ""
	return m
}

// kept is the answer to a preview declined or left alone: the job stays on the station, held
// for its owner's next tap.
func kept(m Model, now time.Time, s Settings) Model {
	m.PreviewJob, m.PreviewImage = "", nil
	return result(m, Kept, now, s)
}

// offlineTap answers a tap while the cloud is unreachable: with offline release on, the
// station looks for jobs already here for the badge's owner.
func offlineTap(m Model, hash string, now time.Time, s Settings) (Model, []Effect) {
	m.Phase, m.Badge, m.User, m.Jobs, m.Message, m.OfflineRelease = Lookup, hash, "", nil, "", true
	if s.Answer > 0 {
		m.Until = now.Add(s.Answer)
	}
	return m, []Effect{DoOfflineRelease{Badge: hash}}
}
