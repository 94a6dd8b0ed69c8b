// Package station is the appliance's core: the state machine (one pure function, Step), the
// screen each state shows (ViewOf), and the runtime that feeds it events from the badge reader,
// the cloud link, the enrollment flow and the print worker.
package station

import (
	"errors"
	"image"
	"time"

	"labelstation/protocol"
	"labelstation/station/cloud"
)

// Phase is the station's state, as drawn in docs/architecture.md.
type Phase int

const (
	Boot         Phase = iota
	Enrolling          // showing a pairing code (RFC 8628 §3.3)
	Denied             // the admin denied the pairing; a new code follows
	Connecting         // enrolled, waiting for the broker
	Idle               // ready for a tap
	Lookup             // a badge was tapped; asking the cloud
	List               // the user's held jobs
	Printing           // handing labels to the printer
	Paused             // printer fault mid-job; resumes when cleared
	Done               // all released jobs printed
	NoJobs             // known user, nothing held
	UnknownBadge       // the cloud does not know the badge
	Offline            // a tap while the cloud is unreachable
	Failed             // something went wrong; Message says what
	SetupProblem       // the authorization server refuses the station's settings; Setup says how
	Select             // release.mode select: the user picks a job with the buttons
	Preview            // the chosen job's first label, before it prints
	Kept               // a previewed job was not printed; it waits on the station
	LinkWait           // an unknown badge: asking the cloud for a code to link it
	LinkCode           // showing the code (a QR) that links the badge to whoever confirms it
	LinkExpired        // the code ran out before anyone confirmed it
	LinkRefused        // the badge belongs to someone else; no code
	LinkDone           // someone confirmed the code: the badge is theirs, the next tap works
)

var phaseNames = [...]string{"boot", "enrolling", "denied", "connecting", "idle", "lookup", "list", "printing", "paused", "done", "no_jobs", "unknown_badge", "offline", "failed", "setup_problem",
	"select", "preview", "kept", "link_wait", "link_code", "link_expired", "link_refused", "link_done"}

func (p Phase) String() string {
	if int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return "phase?"
}

// PairingCode is what the enrollment screen shows.
type PairingCode struct {
	UserCode, URI, URIComplete string
	Expires                    time.Time
}

// Model is everything the screen and the next transition depend on.
type Model struct {
	Phase   Phase
	Online  bool
	Code    PairingCode
	Badge   string // keyed hash of the tapped badge, while a lookup/release is under way
	User    string
	Jobs    []protocol.JobSummary
	Title   string // job being printed
	Done    int    // labels of the current job accepted by the printer
	Total   int
	Message string    // error or fault text
	Until   time.Time // when a result screen returns to Idle
	Busy    bool      // the print worker has work (set by PrintProgress, cleared by PrintIdle)
	// Configured is true once the fleet config gave a badge key; until then a tap cannot be
	// turned into a badge hash and the idle screen says so.
	Configured bool
	// ReaderFault is the badge reader's last error while it keeps failing: the idle screen
	// must not invite a tap nobody will read.
	ReaderFault string
	// Setup is the OAuth error code (or missing claim) of an enrollment or refresh the server
	// refuses; while it is set and the station is offline, SETUP_PROBLEM is on screen.
	Setup string
	// Releasing is set while a release request is unanswered; on the Lookup screen, while the
	// lookup releases the jobs too (release.mode all).
	Releasing bool
	// StorageFull is set when the journal refused a job for lack of space, until a job is
	// journaled again; the idle screen says "Storage full".
	StorageFull bool
	// WasOnline is set once the cloud link was up, so a later outage reads as "Offline"
	// rather than as the first "Connecting".
	WasOnline bool
	// Confirm is set on a List screen that waits for a button press to release.
	Confirm bool
	// Printed counts the labels the printer accepted since printing began, for the Done screen.
	Printed int
	// Notice is a short line shown on the printing screens (a tap while busy) until NoticeUntil.
	Notice      string
	NoticeUntil time.Time

	// Select mode, preview and offline release (release.go).
	Cursor         int         // the entry under the cursor on the Select screen
	PreviewJob     string      // the job on the Preview screen, held on the station
	PreviewImage   image.Image // its first label, as the printer would print it
	OfflineRelease bool        // jobs already on the station print without the cloud
	// Link is the code that links an unknown badge, kept while it is valid so that a tap of the
	// same badge shows it again (badgelink.go).
	Link BadgeLink
}

// Settings are the parts of the config that steer transitions.
type Settings struct {
	// ConfirmRelease waits for a button press on the List screen instead of releasing at once.
	ConfirmRelease bool
	// ResultScreen is how long Done/NoJobs/UnknownBadge/Offline/Failed screens stay.
	ResultScreen time.Duration
	// Answer bounds the wait for a lookup or release reply; Arrive bounds the wait for a
	// released job to reach the worker. Past them the station shows why and returns to idle,
	// so a lost reply or job cannot leave it stuck. Zero means no bound.
	Answer, Arrive time.Duration

	// Select (release.mode select) lists the jobs to choose from, Newest first if set; the
	// list and the preview wait SelectWait for a button. Preview shows a chosen job's first
	// label before it prints. OfflineRelease lets a recently seen badge release the jobs
	// already on the station while the cloud is unreachable.
	Select, Newest, Preview, OfflineRelease bool
	SelectWait                              time.Duration
}

// Event is an input to Step.
type Event interface{ event() }

// Events.
type (
	EnrollCode    struct{ Code PairingCode }
	EnrollDenied  struct{}
	Enrolled      struct{}
	Reenroll      struct{}              // the refresh token was refused (invalid_grant): pair again
	SetupRefused  struct{ Code string } // the server refuses our client settings, or its tokens do not name us
	OnlineChanged struct{ Online bool }
	Configured    struct{ Badges bool }
	BadgeTapped   struct {
		Hash string
		Err  error // the badge could not be hashed (no key configured yet, bad format)
	}
	LookupDone struct {
		Reply protocol.LookupReply
		Err   error
		// Released is set when the request released the jobs too (DoLookup.ReleaseAll): it is
		// the release's answer, and Reply lists the jobs released.
		Released *protocol.ReleaseReply
	}
	ReleaseDone struct {
		Reply protocol.ReleaseReply
		Err   error
	}
	// ButtonPressed: Long when the button was held for a long press (board.long_press_ms). On
	// the Select and Preview screens a long press of the print button means "back" / "not
	// now"; elsewhere it counts as a press.
	ButtonPressed struct {
		Name string
		Long bool
	}
	PrintProgress struct {
		Title       string
		Done, Total int
	}
	PrintFault   struct{ Message string }
	PrintCleared struct{}
	JobFinished  struct {
		Title string
		Err   error
	}
	PrintIdle struct{} // the worker's queue is empty
	Tick      struct{} // time passed; result screens may expire
	// ReaderFailed: the badge reader failed repeatedly and is being restarted.
	ReaderFailed    struct{ Err error }
	ReaderRecovered struct{}
	// JobRejected: a delivered job will not be printed (undecodable, or the journal refused it).
	JobRejected struct {
		ID     string
		Reason string
		Full   bool // the journal is out of space
	}
	// JobJournaled: a delivered job is in the journal (storage is usable again).
	JobJournaled struct{}
)

func (EnrollCode) event()    {}
func (EnrollDenied) event()  {}
func (Enrolled) event()      {}
func (Reenroll) event()      {}
func (SetupRefused) event()  {}
func (OnlineChanged) event() {}
func (Configured) event()    {}
func (BadgeTapped) event()   {}
func (LookupDone) event()    {}
func (ReleaseDone) event()   {}
func (ButtonPressed) event() {}
func (PrintProgress) event() {}
func (PrintFault) event()    {}
func (PrintCleared) event()  {}
func (JobFinished) event()   {}
func (PrintIdle) event()     {}
func (Tick) event()          {}
func (JobRejected) event()   {}
func (JobJournaled) event()  {}

// busyNotice is what a tap shows while a job prints: the tap is not lost in silence.
const busyNotice = "Printing: tap again when done"

func (ReaderFailed) event()    {}
func (ReaderRecovered) event() {}

// Effect is work Step asks the runtime to do; results come back as events.
type Effect interface{ effect() }

// Effects.
type (
	DoLookup struct {
		Badge string
		// ReleaseAll (release.mode all) releases every held job of the badge's owner in the
		// same request; LookupDone.Released answers it.
		ReleaseAll bool
	}
	DoRelease struct {
		Badge string
		Jobs  []string
		// Preview holds the released jobs on the station and shows the first one's label
		// (PreviewReady) instead of printing them.
		Preview bool
	}

	// DoPrintPairing prints the pairing code on a label, for an admin who cannot see the screen.
	DoPrintPairing struct{ Code PairingCode }
	// DoRetryPairing asks for a new code now instead of after the denied screen's delay.
	DoRetryPairing struct{}
)

func (DoLookup) effect()       {}
func (DoRelease) effect()      {}
func (DoPrintPairing) effect() {}
func (DoRetryPairing) effect() {}

// ready is the phase to return to when nothing is on screen.
func ready(m Model) Phase {
	switch {
	case m.Online:
		return Idle
	case m.Setup != "":
		return SetupProblem
	}
	return Connecting
}

// result shows a result screen until s.ResultScreen has passed.
func result(m Model, p Phase, now time.Time, s Settings) Model {
	m.Phase, m.Until, m.Badge, m.OfflineRelease = p, now.Add(s.ResultScreen), "", false
	return m
}

// Step is the station's state machine: a pure function of the model, one event and the time.
// Every transition is in this switch and in the table test beside it.
func Step(m Model, ev Event, now time.Time, s Settings) (Model, []Effect) {
	if _, ok := ev.(LookupDone); ok && m.Phase == Lookup {
		m.Releasing = false // answered; a release that came with it is applied below
	}
	m, effects, done := stepLink(m, ev, now, s)
	if done {
		return m, effects
	}
	if r, eff, ok := stepRelease(m, ev, now, s); ok {
		return r, eff
	}
	switch e := ev.(type) {
	case EnrollCode:
		m = Model{Phase: Enrolling, Code: e.Code, Online: m.Online, Configured: m.Configured}
	case EnrollDenied:
		m = Model{Phase: Denied, Online: m.Online, Configured: m.Configured}
	case Reenroll:
		m = Model{Phase: Enrolling, Configured: m.Configured}
	case Enrolled:
		m = Model{Online: m.Online, Configured: m.Configured}
		m.Phase = ready(m)
	case SetupRefused:
		m.Setup = e.Code
		switch m.Phase {
		case Boot, Enrolling, Denied, Connecting, SetupProblem:
			m.Phase, m.Code = SetupProblem, PairingCode{}
		}
	case Configured:
		m.Configured = e.Badges
	case OnlineChanged:
		m.Online = e.Online
		m.WasOnline = m.WasOnline || e.Online
		if e.Online {
			m.Setup = ""
		}
		switch {
		case (m.Phase == Connecting || m.Phase == SetupProblem) && e.Online:
			m.Phase = Idle
		case m.Phase == Idle && !e.Online:
			m.Phase = Connecting
		}
	case BadgeTapped:
		if m.Phase == Printing || m.Phase == Paused {
			m.Notice, m.NoticeUntil = busyNotice, now.Add(s.ResultScreen)
			return m, nil
		}
		if m.Phase != Idle && m.Phase != Done && m.Phase != NoJobs && m.Phase != UnknownBadge && m.Phase != Offline && m.Phase != Failed && m.Phase != Connecting && m.Phase != Kept {
			return m, nil // busy: enrolling, looking up, listing or printing
		}
		if e.Err != nil {
			m.Message = e.Err.Error()
			return result(m, Failed, now, s), nil
		}
		if !m.Online && s.OfflineRelease && m.Configured {
			return offlineTap(m, e.Hash, now, s)
		}
		if !m.Online {
			m.Message = "Cloud unreachable"
			return result(m, Offline, now, s), nil
		}
		if !m.Configured {
			m.Message = "Not configured yet"
			return result(m, Failed, now, s), nil
		}
		all := !s.ConfirmRelease && !s.Select
		m.Phase, m.Badge, m.User, m.Jobs, m.Message, m.OfflineRelease, m.Releasing = Lookup, e.Hash, "", nil, "", false, all
		if s.Answer > 0 {
			m.Until = now.Add(s.Answer)
		}
		return m, []Effect{DoLookup{Badge: e.Hash, ReleaseAll: all}}
	case LookupDone:
		if m.Phase != Lookup || m.OfflineRelease {
			return m, nil
		}
		if s.OfflineRelease && (errors.Is(e.Err, cloud.ErrOffline) || errors.Is(e.Err, cloud.ErrTimeout)) {
			return offlineTap(m, m.Badge, now, s)
		}
		if r, failed := requestFailed(m, e.Err, e.Reply.Error, now, s); failed {
			return r, nil
		}
		if e.Reply.User != nil {
			m.User = e.Reply.User.Name
		}
		m.Jobs = liveJobs(e.Reply.Jobs, now, s.Newest)
		if e.Released != nil {
			// Released with the lookup: the list's release, answered.
			m.Phase, m.Until, m.Confirm, m.Releasing = List, time.Time{}, false, true
			return Step(m, ReleaseDone{Reply: *e.Released}, now, s)
		}
		if len(m.Jobs) == 0 {
			return result(m, NoJobs, now, s), nil
		}
		if s.Select {
			return choose(m, now, s), nil
		}
		m.Phase, m.Until, m.Confirm = List, time.Time{}, s.ConfirmRelease
		if s.ConfirmRelease {
			m.Until = now.Add(4 * s.ResultScreen)
			return m, nil
		}
		return release(m, now, s)
	case ButtonPressed:
		switch {
		case m.Phase == List && s.ConfirmRelease && !m.Releasing:
			return release(m, now, s)
		case m.Phase == Enrolling:
			return m, []Effect{DoPrintPairing{Code: m.Code}}
		case m.Phase == Denied:
			return m, []Effect{DoRetryPairing{}}
		}
	case ReleaseDone:
		if m.Phase != List && m.Phase != Select {
			return m, nil
		}
		m.Releasing = false
		if r, failed := requestFailed(m, e.Err, e.Reply.Error, now, s); failed {
			return r, nil
		}
		if len(e.Reply.Released) == 0 {
			return result(m, NoJobs, now, s), nil
		}
		// The jobs arrive on the job topic; the worker's progress moves us to Printing.
		m.Phase, m.Badge, m.Done, m.Total, m.Title, m.Until = Printing, "", 0, 0, "", time.Time{}
		m.Printed = 0
		if !m.Busy && s.Arrive > 0 {
			m.Until = now.Add(s.Arrive)
		}
	case PrintProgress:
		// The jobs a lookup released can start printing before its answer is read: they answer it.
		answered := m.Phase == Lookup && m.Releasing && !m.OfflineRelease
		switch {
		case m.Phase != Printing && m.Phase != Paused:
			m.Printed = 0 // a new round of printing
		case m.Busy && e.Title == m.Title && e.Done > m.Done:
			m.Printed += e.Done - m.Done // a job's first progress counts labels printed before
		}
		m.Busy, m.Title, m.Done, m.Total = true, e.Title, e.Done, e.Total
		if m.Phase == Printing {
			m.Until = time.Time{}
		}
		if m.Phase == Idle || m.Phase == List || m.Phase == Done || m.Phase == Connecting || m.Phase == Paused {
			m.Phase = Printing
		}
		if answered {
			m.Phase, m.Releasing, m.Badge, m.Until = Printing, false, "", time.Time{}
		}
	case PrintFault:
		m.Message = e.Message
		if m.Phase == Printing || m.Phase == Idle || m.Phase == Connecting || m.Phase == Done {
			m.Phase = Paused
		}
	case PrintCleared:
		if m.Phase == Paused {
			m.Phase, m.Message = Printing, ""
		}
	case JobFinished:
		if e.Err != nil {
			m.Message = e.Title + ": " + e.Err.Error()
			return result(m, Failed, now, s), nil
		}
	case PrintIdle:
		m.Busy = false
		if m.Phase == Printing || m.Phase == Paused {
			m.Notice = ""
			return result(m, Done, now, s), nil
		}
	case ReaderFailed:
		m.ReaderFault = "badge reader failed"
		if e.Err != nil {
			m.ReaderFault = e.Err.Error()
		}
	case ReaderRecovered:
		m.ReaderFault = ""
	case JobJournaled:
		m.StorageFull = false
	case JobRejected:
		m.StorageFull = m.StorageFull || e.Full
		msg := "Job refused: " + e.Reason
		if e.Full {
			msg = "Storage full: job refused"
		}
		// Waiting for released jobs, this is the answer; otherwise it is news for the screen.
		if (m.Phase == Printing && !m.Busy) || m.Phase == List || m.Phase == Select || m.Phase == Idle || m.Phase == Lookup && m.Releasing && !m.OfflineRelease {
			m.Message = msg
			return result(m, Failed, now, s), nil
		}
		if m.Phase == Printing || m.Phase == Paused {
			m.Notice, m.NoticeUntil = msg, now.Add(s.ResultScreen)
		}
	case Tick:
		if m.Notice != "" && !now.Before(m.NoticeUntil) {
			m.Notice, m.NoticeUntil = "", time.Time{}
		}
		expired := !m.Until.IsZero() && !now.Before(m.Until)
		switch {
		case m.Phase == Lookup && expired:
			m.Message = "No answer from the cloud"
			return result(m, Offline, now, s), nil
		case (m.Phase == List || m.Phase == Select) && m.Releasing && expired:
			m.Message, m.Releasing = "No answer from the cloud", false
			return result(m, Offline, now, s), nil
		case m.Phase == Printing && !m.Busy && expired:
			m.Message = "The released job did not arrive; tap again"
			return result(m, Failed, now, s), nil
		}
		switch m.Phase {
		case Done, NoJobs, UnknownBadge, Offline, Failed, List, Kept:
			if !m.Until.IsZero() && !now.Before(m.Until) {
				if m.Busy {
					m.Phase = Printing
				} else {
					m.Phase = ready(m)
				}
				m.Until, m.Message, m.User, m.Jobs, m.Releasing = time.Time{}, "", "", nil, false
			}
		}
	}
	return m, nil
}

// requestFailed is the result screen for a lookup or release that did not succeed: the
// network (OFFLINE), the cloud's answer (UNKNOWN_BADGE, FAILED) or anything else (FAILED).
func requestFailed(m Model, err error, reply *protocol.Error, now time.Time, s Settings) (Model, bool) {
	switch {
	case errors.Is(err, cloud.ErrOffline) || errors.Is(err, cloud.ErrTimeout):
		m.Message = "Cloud unreachable"
		return result(m, Offline, now, s), true
	case err != nil:
		m.Message = err.Error()
		return result(m, Failed, now, s), true
	case reply != nil && reply.Code == protocol.CodeUnknownBadge:
		return result(m, UnknownBadge, now, s), true
	case reply != nil:
		m.Message = reply.Message
		return result(m, Failed, now, s), true
	}
	return m, false
}

// release asks the cloud to release the listed jobs and bounds the wait for its answer.
func release(m Model, now time.Time, s Settings) (Model, []Effect) {
	m.Releasing = true
	if s.Answer > 0 {
		m.Until = now.Add(s.Answer)
	}
	return m, []Effect{DoRelease{Badge: m.Badge, Jobs: jobIDs(m.Jobs)}}
}

func jobIDs(js []protocol.JobSummary) []string {
	ids := make([]string, len(js))
	for i, j := range js {
		ids[i] = j.ID
	}
	return ids
}
