package station

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"labelstation/protocol"
	"labelstation/station/cloud"
)

var (
	t0       = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	settings = Settings{ResultScreen: 5 * time.Second}
	confirm  = Settings{ResultScreen: 5 * time.Second, ConfirmRelease: true}
	timed    = Settings{ResultScreen: 5 * time.Second, Answer: 15 * time.Second, Arrive: 30 * time.Second}
	twoJobs  = []protocol.JobSummary{{ID: "j1", Title: "A", Labels: 2}, {ID: "j2", Title: "B", Labels: 1}}
	code     = PairingCode{UserCode: "ABCD-EFGH", URI: "http://x/device", URIComplete: "http://x/device?user_code=ABCD-EFGH", Expires: t0.Add(10 * time.Minute)}
)

func idle() Model { return Model{Phase: Idle, Online: true, Configured: true} }

func with(m Model, f func(*Model)) Model { f(&m); return m }

func TestStep(t *testing.T) {
	tests := []struct {
		name    string
		from    Model
		ev      Event
		s       Settings
		want    Model
		effects []Effect
	}{
		// Enrollment.
		{"boot shows code", Model{Phase: Boot}, EnrollCode{Code: code}, settings, Model{Phase: Enrolling, Code: code}, nil},
		{"new code replaces old", Model{Phase: Enrolling, Code: PairingCode{UserCode: "OLD"}}, EnrollCode{Code: code}, settings, Model{Phase: Enrolling, Code: code}, nil},
		{"denied", Model{Phase: Enrolling, Code: code}, EnrollDenied{}, settings, Model{Phase: Denied}, nil},
		{"enrolled, offline", Model{Phase: Enrolling, Code: code}, Enrolled{}, settings, Model{Phase: Connecting}, nil},
		{"boot with tokens", Model{Phase: Boot, Configured: true}, Enrolled{}, settings, Model{Phase: Connecting, Configured: true}, nil},
		{"setup problem at boot", Model{Phase: Boot}, SetupRefused{Code: "invalid_scope"}, settings, Model{Phase: SetupProblem, Setup: "invalid_scope"}, nil},
		{"setup problem replaces the code", Model{Phase: Enrolling, Code: code}, SetupRefused{Code: "invalid_client"}, settings, Model{Phase: SetupProblem, Setup: "invalid_client"}, nil},
		{"setup problem while printing waits", with(idle(), func(m *Model) { m.Phase, m.Online = Printing, false }), SetupRefused{Code: "invalid_client"}, settings,
			with(idle(), func(m *Model) { m.Phase, m.Online, m.Setup = Printing, false, "invalid_client" }), nil},
		{"setup problem shown after a result screen", with(idle(), func(m *Model) { m.Phase, m.Online, m.Setup, m.Until = Done, false, "invalid_client", t0 }), Tick{}, settings,
			with(idle(), func(m *Model) { m.Phase, m.Online, m.Setup = SetupProblem, false, "invalid_client" }), nil},
		{"fixed server: a new code clears it", Model{Phase: SetupProblem, Setup: "invalid_scope"}, EnrollCode{Code: code}, settings, Model{Phase: Enrolling, Code: code}, nil},
		{"fixed server: online clears it", Model{Phase: SetupProblem, Setup: "invalid_client", Configured: true}, OnlineChanged{Online: true}, settings, with(idle(), func(m *Model) { m.WasOnline = true }), nil},
		{"enrolled clears it", Model{Phase: SetupProblem, Setup: "no sub claim"}, Enrolled{}, settings, Model{Phase: Connecting}, nil},
		{"tap ignored on the setup screen", Model{Phase: SetupProblem, Setup: "invalid_client", Configured: true}, BadgeTapped{Hash: "h1"}, settings, Model{Phase: SetupProblem, Setup: "invalid_client", Configured: true}, nil},
		{"reenroll drops everything", with(idle(), func(m *Model) { m.User = "x" }), Reenroll{}, settings, Model{Phase: Enrolling, Configured: true}, nil},

		// Connectivity.
		{"connected", Model{Phase: Connecting}, OnlineChanged{Online: true}, settings, Model{Phase: Idle, Online: true, WasOnline: true}, nil},
		{"lost while idle", idle(), OnlineChanged{Online: false}, settings, Model{Phase: Connecting, Configured: true}, nil},
		{"lost while printing keeps printing", with(idle(), func(m *Model) { m.Phase = Printing }), OnlineChanged{Online: false}, settings, Model{Phase: Printing, Configured: true}, nil},
		{"configured", Model{Phase: Idle, Online: true}, Configured{Badges: true}, settings, idle(), nil},

		// Tap.
		{"tap looks up", idle(), BadgeTapped{Hash: "h1"}, settings, with(idle(), func(m *Model) { m.Releasing = true; m.Phase, m.Badge = Lookup, "h1" }), []Effect{DoLookup{Badge: "h1", ReleaseAll: true}}},
		{"tap offline", Model{Phase: Connecting, Configured: true}, BadgeTapped{Hash: "h1"}, settings,
			Model{Phase: Offline, Configured: true, Message: "Cloud unreachable", Until: t0.Add(5 * time.Second)}, nil},
		{"tap unconfigured", Model{Phase: Idle, Online: true}, BadgeTapped{Hash: "h1"}, settings,
			Model{Phase: Failed, Online: true, Message: "Not configured yet", Until: t0.Add(5 * time.Second)}, nil},
		{"tap with bad number", idle(), BadgeTapped{Err: errors.New("badge: bits 99")}, settings,
			with(idle(), func(m *Model) { m.Phase, m.Message, m.Until = Failed, "badge: bits 99", t0.Add(5*time.Second) }), nil},
		{"tap while printing is told to wait", with(idle(), func(m *Model) { m.Phase = Printing }), BadgeTapped{Hash: "h1"}, settings,
			with(idle(), func(m *Model) { m.Phase, m.Notice, m.NoticeUntil = Printing, busyNotice, t0.Add(5*time.Second) }), nil},
		{"tap while paused is told to wait", with(idle(), func(m *Model) { m.Phase, m.Message = Paused, "paper out" }), BadgeTapped{Hash: "h1"}, settings,
			with(idle(), func(m *Model) {
				m.Phase, m.Message, m.Notice, m.NoticeUntil = Paused, "paper out", busyNotice, t0.Add(5*time.Second)
			}), nil},
		{"busy notice expires", with(idle(), func(m *Model) { m.Phase, m.Busy, m.Notice, m.NoticeUntil = Printing, true, busyNotice, t0 }), Tick{}, settings,
			with(idle(), func(m *Model) { m.Phase, m.Busy = Printing, true }), nil},
		{"tap ignored during lookup", with(idle(), func(m *Model) { m.Phase, m.Badge = Lookup, "h1" }), BadgeTapped{Hash: "h2"}, settings,
			with(idle(), func(m *Model) { m.Phase, m.Badge = Lookup, "h1" }), nil},
		{"tap ignored while enrolling", Model{Phase: Enrolling, Code: code}, BadgeTapped{Hash: "h1"}, settings, Model{Phase: Enrolling, Code: code}, nil},
		{"tap on a result screen starts over", with(idle(), func(m *Model) { m.Phase, m.Until = Done, t0 }), BadgeTapped{Hash: "h2"}, settings,
			with(idle(), func(m *Model) { m.Releasing = true; m.Phase, m.Badge, m.Until = Lookup, "h2", t0 }), []Effect{DoLookup{Badge: "h2", ReleaseAll: true}}},

		// Lookup results.
		{"jobs released at once", with(idle(), func(m *Model) { m.Phase, m.Badge = Lookup, "h1" }),
			LookupDone{Reply: protocol.LookupReply{User: &protocol.User{ID: "a", Name: "Alice"}, Jobs: twoJobs}}, settings,
			with(idle(), func(m *Model) { m.Phase, m.Badge, m.User, m.Jobs, m.Releasing = List, "h1", "Alice", twoJobs, true }),
			[]Effect{DoRelease{Badge: "h1", Jobs: []string{"j1", "j2"}}}},
		{"jobs wait for confirm", with(idle(), func(m *Model) { m.Phase, m.Badge = Lookup, "h1" }),
			LookupDone{Reply: protocol.LookupReply{User: &protocol.User{Name: "Alice"}, Jobs: twoJobs}}, confirm,
			with(idle(), func(m *Model) {
				m.Phase, m.Badge, m.User, m.Jobs, m.Until, m.Confirm = List, "h1", "Alice", twoJobs, t0.Add(20*time.Second), true
			}), nil},
		{"confirm button releases", with(idle(), func(m *Model) { m.Phase, m.Badge, m.Jobs = List, "h1", twoJobs }), ButtonPressed{Name: "A"}, confirm,
			with(idle(), func(m *Model) { m.Phase, m.Badge, m.Jobs, m.Releasing = List, "h1", twoJobs, true }), []Effect{DoRelease{Badge: "h1", Jobs: []string{"j1", "j2"}}}},
		{"second button press while releasing does nothing", with(idle(), func(m *Model) { m.Phase, m.Badge, m.Jobs, m.Releasing = List, "h1", twoJobs, true }), ButtonPressed{Name: "A"}, confirm,
			with(idle(), func(m *Model) { m.Phase, m.Badge, m.Jobs, m.Releasing = List, "h1", twoJobs, true }), nil},
		{"button ignored without confirm mode", idle(), ButtonPressed{Name: "A"}, settings, idle(), nil},
		{"button prints the pairing label", Model{Phase: Enrolling, Code: code}, ButtonPressed{Name: "A"}, settings, Model{Phase: Enrolling, Code: code}, []Effect{DoPrintPairing{Code: code}}},
		{"button after denial asks for a new code", Model{Phase: Denied}, ButtonPressed{Name: "A"}, settings, Model{Phase: Denied}, []Effect{DoRetryPairing{}}},
		{"no jobs", with(idle(), func(m *Model) { m.Phase, m.Badge = Lookup, "h1" }),
			LookupDone{Reply: protocol.LookupReply{User: &protocol.User{Name: "Alice"}, Jobs: nil}}, settings,
			with(idle(), func(m *Model) { m.Phase, m.User, m.Until = NoJobs, "Alice", t0.Add(5*time.Second) }), nil},
		{"unknown badge asks for a link code", with(idle(), func(m *Model) { m.Phase, m.Badge = Lookup, "h1" }),
			LookupDone{Reply: protocol.LookupReply{Error: &protocol.Error{Code: protocol.CodeUnknownBadge, Message: "no"}}}, settings,
			with(idle(), func(m *Model) { m.Phase, m.Badge = LinkWait, "h1" }), []Effect{DoLinkBadge{Badge: "h1"}}},
		{"cloud error", with(idle(), func(m *Model) { m.Phase, m.Badge = Lookup, "h1" }),
			LookupDone{Reply: protocol.LookupReply{Error: &protocol.Error{Code: protocol.CodeInternal, Message: "db down"}}}, settings,
			with(idle(), func(m *Model) { m.Phase, m.Message, m.Until = Failed, "db down", t0.Add(5*time.Second) }), nil},
		{"lookup offline", with(idle(), func(m *Model) { m.Phase, m.Badge = Lookup, "h1" }), LookupDone{Err: cloud.ErrOffline}, settings,
			with(idle(), func(m *Model) { m.Phase, m.Message, m.Until = Offline, "Cloud unreachable", t0.Add(5*time.Second) }), nil},
		{"lookup timeout", with(idle(), func(m *Model) { m.Phase, m.Badge = Lookup, "h1" }), LookupDone{Err: fmt.Errorf("x: %w", cloud.ErrTimeout)}, settings,
			with(idle(), func(m *Model) { m.Phase, m.Message, m.Until = Offline, "Cloud unreachable", t0.Add(5*time.Second) }), nil},
		{"late lookup reply ignored", idle(), LookupDone{Reply: protocol.LookupReply{Jobs: twoJobs}}, settings, idle(), nil},

		// release.mode all: one request looks the badge up and releases its jobs.
		{"tap in confirm mode only looks up", idle(), BadgeTapped{Hash: "h1"}, confirm,
			with(idle(), func(m *Model) { m.Phase, m.Badge = Lookup, "h1" }), []Effect{DoLookup{Badge: "h1"}}},
		{"tap in select mode only looks up", idle(), BadgeTapped{Hash: "h1"}, Settings{ResultScreen: 5 * time.Second, Select: true},
			with(idle(), func(m *Model) { m.Phase, m.Badge = Lookup, "h1" }), []Effect{DoLookup{Badge: "h1"}}},
		{"looked up and released at once: printing, no second request", with(idle(), func(m *Model) { m.Phase, m.Badge, m.Until = Lookup, "h1", t0.Add(15*time.Second) }),
			LookupDone{Reply: protocol.LookupReply{User: &protocol.User{ID: "a", Name: "Alice"}, Jobs: twoJobs}, Released: &protocol.ReleaseReply{Released: []string{"j1", "j2"}}}, timed,
			with(idle(), func(m *Model) { m.Phase, m.User, m.Jobs, m.Until = Printing, "Alice", twoJobs, t0.Add(30*time.Second) }), nil},
		{"looked up and released at once while a job prints", with(idle(), func(m *Model) { m.Phase, m.Badge, m.Busy = Lookup, "h1", true }),
			LookupDone{Reply: protocol.LookupReply{User: &protocol.User{ID: "a", Name: "Alice"}, Jobs: twoJobs}, Released: &protocol.ReleaseReply{Released: []string{"j1", "j2"}}}, timed,
			with(idle(), func(m *Model) { m.Phase, m.User, m.Jobs, m.Busy = Printing, "Alice", twoJobs, true }), nil},
		{"looked up, nothing to release", with(idle(), func(m *Model) { m.Phase, m.Badge = Lookup, "h1" }),
			LookupDone{Reply: protocol.LookupReply{User: &protocol.User{ID: "a", Name: "Alice"}}, Released: &protocol.ReleaseReply{}}, settings,
			with(idle(), func(m *Model) { m.Phase, m.User, m.Until = NoJobs, "Alice", t0.Add(5*time.Second) }), nil},
		{"the released jobs print before the answer is read: they answer it", with(idle(), func(m *Model) { m.Phase, m.Badge, m.Releasing, m.Until = Lookup, "h1", true, t0.Add(15*time.Second) }),
			PrintProgress{Title: "A", Done: 0, Total: 2}, timed,
			with(idle(), func(m *Model) { m.Phase, m.Busy, m.Title, m.Total = Printing, true, "A", 2 }), nil},
		{"its answer after that changes nothing", with(idle(), func(m *Model) { m.Phase, m.Busy, m.Title, m.Total = Printing, true, "A", 2 }),
			LookupDone{Reply: protocol.LookupReply{User: &protocol.User{ID: "a", Name: "Alice"}, Jobs: twoJobs}, Released: &protocol.ReleaseReply{Released: []string{"j1", "j2"}}}, timed,
			with(idle(), func(m *Model) { m.Phase, m.Busy, m.Title, m.Total = Printing, true, "A", 2 }), nil},
		{"a released job refused before the answer is the answer", with(idle(), func(m *Model) { m.Phase, m.Badge, m.Releasing = Lookup, "h1", true }),
			JobRejected{ID: "j1", Reason: "bad layout"}, settings,
			with(idle(), func(m *Model) {
				m.Phase, m.Releasing, m.Message, m.Until = Failed, true, "Job refused: bad layout", t0.Add(5*time.Second)
			}), nil},
		{"progress does not interrupt an offline release's lookup", with(idle(), func(m *Model) { m.Phase, m.Badge, m.Releasing, m.OfflineRelease = Lookup, "h1", true, true }),
			PrintProgress{Title: "A", Done: 0, Total: 2}, settings,
			with(idle(), func(m *Model) {
				m.Phase, m.Badge, m.Releasing, m.OfflineRelease, m.Busy, m.Title, m.Total = Lookup, "h1", true, true, true, "A", 2
			}), nil},
		{"an answered lookup is no longer releasing", with(idle(), func(m *Model) { m.Phase, m.Badge, m.Releasing = Lookup, "h1", true }),
			LookupDone{Err: errors.New("boom")}, settings,
			with(idle(), func(m *Model) { m.Phase, m.Message, m.Until = Failed, "boom", t0.Add(5*time.Second) }), nil},
		{"released at once even if the mode changed meanwhile", with(idle(), func(m *Model) { m.Phase, m.Badge = Lookup, "h1" }),
			LookupDone{Reply: protocol.LookupReply{User: &protocol.User{ID: "a", Name: "Alice"}, Jobs: twoJobs}, Released: &protocol.ReleaseReply{Released: []string{"j1", "j2"}}}, confirm,
			with(idle(), func(m *Model) { m.Phase, m.User, m.Jobs = Printing, "Alice", twoJobs }), nil},

		// Release results.
		{"released", with(idle(), func(m *Model) { m.Phase, m.Badge, m.Jobs = List, "h1", twoJobs }),
			ReleaseDone{Reply: protocol.ReleaseReply{Released: []string{"j1", "j2"}}}, settings,
			with(idle(), func(m *Model) { m.Phase, m.Jobs = Printing, twoJobs }), nil},
		{"released nothing", with(idle(), func(m *Model) { m.Phase, m.Badge = List, "h1" }), ReleaseDone{Reply: protocol.ReleaseReply{}}, settings,
			with(idle(), func(m *Model) { m.Phase, m.Until = NoJobs, t0.Add(5*time.Second) }), nil},
		{"release offline", with(idle(), func(m *Model) { m.Phase, m.Badge = List, "h1" }), ReleaseDone{Err: cloud.ErrOffline}, settings,
			with(idle(), func(m *Model) { m.Phase, m.Message, m.Until = Offline, "Cloud unreachable", t0.Add(5*time.Second) }), nil},

		// Printing.
		{"progress", with(idle(), func(m *Model) { m.Phase = Printing }), PrintProgress{Title: "A", Done: 1, Total: 2}, settings,
			with(idle(), func(m *Model) { m.Phase, m.Busy, m.Title, m.Done, m.Total = Printing, true, "A", 1, 2 }), nil},
		{"resumed job after restart shows printing", idle(), PrintProgress{Title: "A", Done: 1, Total: 2}, settings,
			with(idle(), func(m *Model) { m.Phase, m.Busy, m.Title, m.Done, m.Total = Printing, true, "A", 1, 2 }), nil},
		{"progress does not interrupt a lookup", with(idle(), func(m *Model) { m.Phase = Lookup }), PrintProgress{Title: "A", Done: 1, Total: 2}, settings,
			with(idle(), func(m *Model) { m.Phase, m.Busy, m.Title, m.Done, m.Total = Lookup, true, "A", 1, 2 }), nil},
		{"fault pauses", with(idle(), func(m *Model) { m.Phase, m.Busy = Printing, true }), PrintFault{Message: "paper out"}, settings,
			with(idle(), func(m *Model) { m.Phase, m.Busy, m.Message = Paused, true, "paper out" }), nil},
		{"fault cleared resumes", with(idle(), func(m *Model) { m.Phase, m.Busy, m.Message = Paused, true, "paper out" }), PrintCleared{}, settings,
			with(idle(), func(m *Model) { m.Phase, m.Busy = Printing, true }), nil},
		{"job failed", with(idle(), func(m *Model) { m.Phase, m.Busy = Printing, true }), JobFinished{Title: "A", Err: errors.New("layout: bad")}, settings,
			with(idle(), func(m *Model) {
				m.Phase, m.Busy, m.Message, m.Until = Failed, true, "A: layout: bad", t0.Add(5*time.Second)
			}), nil},
		{"job finished ok changes nothing", with(idle(), func(m *Model) { m.Phase, m.Busy = Printing, true }), JobFinished{Title: "A"}, settings,
			with(idle(), func(m *Model) { m.Phase, m.Busy = Printing, true }), nil},
		{"queue empty: done", with(idle(), func(m *Model) { m.Phase, m.Busy = Printing, true }), PrintIdle{}, settings,
			with(idle(), func(m *Model) { m.Phase, m.Until = Done, t0.Add(5*time.Second) }), nil},

		// Result screens expire.
		{"done stays", with(idle(), func(m *Model) { m.Phase, m.Until = Done, t0.Add(time.Second) }), Tick{}, settings,
			with(idle(), func(m *Model) { m.Phase, m.Until = Done, t0.Add(time.Second) }), nil},
		{"done expires", with(idle(), func(m *Model) { m.Phase, m.Until, m.User = Done, t0, "Alice" }), Tick{}, settings, idle(), nil},
		{"offline expires to connecting", Model{Phase: Offline, Until: t0, Message: "Cloud unreachable"}, Tick{}, settings, Model{Phase: Connecting}, nil},
		{"result expires into running job", with(idle(), func(m *Model) { m.Phase, m.Until, m.Busy = Failed, t0, true }), Tick{}, settings,
			with(idle(), func(m *Model) { m.Phase, m.Busy = Printing, true }), nil},
		{"idle tick", idle(), Tick{}, settings, idle(), nil},

		// Badge reader health.
		{"reader fault", idle(), ReaderFailed{Err: errors.New("badge: pn532: no ACK")}, settings,
			with(idle(), func(m *Model) { m.ReaderFault = "badge: pn532: no ACK" }), nil},
		{"reader fault while printing keeps printing", with(idle(), func(m *Model) { m.Phase = Printing }), ReaderFailed{Err: errors.New("x")}, settings,
			with(idle(), func(m *Model) { m.Phase, m.ReaderFault = Printing, "x" }), nil},
		{"reader fault without error text", idle(), ReaderFailed{}, settings,
			with(idle(), func(m *Model) { m.ReaderFault = "badge reader failed" }), nil},
		{"reader recovered", with(idle(), func(m *Model) { m.ReaderFault = "x" }), ReaderRecovered{}, settings, idle(), nil},
		{"tap clears nothing about the reader", with(idle(), func(m *Model) { m.ReaderFault = "x" }), BadgeTapped{Hash: "h1"}, settings,
			with(idle(), func(m *Model) { m.Releasing = true; m.Phase, m.Badge, m.ReaderFault = Lookup, "h1", "x" }), []Effect{DoLookup{Badge: "h1", ReleaseAll: true}}},

		// Every waiting phase has a bound.
		{"tap bounds the lookup", idle(), BadgeTapped{Hash: "h1"}, timed,
			with(idle(), func(m *Model) { m.Releasing = true; m.Phase, m.Badge, m.Until = Lookup, "h1", t0.Add(15*time.Second) }), []Effect{DoLookup{Badge: "h1", ReleaseAll: true}}},
		{"lookup still waiting", with(idle(), func(m *Model) { m.Phase, m.Badge, m.Until = Lookup, "h1", t0.Add(time.Second) }), Tick{}, timed,
			with(idle(), func(m *Model) { m.Phase, m.Badge, m.Until = Lookup, "h1", t0.Add(time.Second) }), nil},
		{"lookup unanswered", with(idle(), func(m *Model) { m.Phase, m.Badge, m.Until = Lookup, "h1", t0 }), Tick{}, timed,
			with(idle(), func(m *Model) {
				m.Phase, m.Message, m.Until = Offline, "No answer from the cloud", t0.Add(5*time.Second)
			}), nil},
		{"release bounded", with(idle(), func(m *Model) { m.Phase, m.Badge, m.Until = Lookup, "h1", t0 }),
			LookupDone{Reply: protocol.LookupReply{User: &protocol.User{Name: "Alice"}, Jobs: twoJobs}}, timed,
			with(idle(), func(m *Model) {
				m.Phase, m.Badge, m.User, m.Jobs, m.Releasing, m.Until = List, "h1", "Alice", twoJobs, true, t0.Add(15*time.Second)
			}), []Effect{DoRelease{Badge: "h1", Jobs: []string{"j1", "j2"}}}},
		{"release unanswered", with(idle(), func(m *Model) { m.Phase, m.Badge, m.Jobs, m.Releasing, m.Until = List, "h1", twoJobs, true, t0 }), Tick{}, timed,
			with(idle(), func(m *Model) {
				m.Phase, m.Jobs, m.Message, m.Until = Offline, twoJobs, "No answer from the cloud", t0.Add(5*time.Second)
			}), nil},
		{"released: wait for the job, bounded", with(idle(), func(m *Model) { m.Phase, m.Badge, m.Releasing, m.Until = List, "h1", true, t0 }),
			ReleaseDone{Reply: protocol.ReleaseReply{Released: []string{"j1"}}}, timed,
			with(idle(), func(m *Model) { m.Phase, m.Until = Printing, t0.Add(30*time.Second) }), nil},
		{"released while the worker is busy: no bound", with(idle(), func(m *Model) { m.Phase, m.Badge, m.Busy = List, "h1", true }),
			ReleaseDone{Reply: protocol.ReleaseReply{Released: []string{"j1"}}}, timed,
			with(idle(), func(m *Model) { m.Phase, m.Busy = Printing, true }), nil},
		{"the job arrives", with(idle(), func(m *Model) { m.Phase, m.Until = Printing, t0.Add(30*time.Second) }), PrintProgress{Title: "A", Total: 2}, timed,
			with(idle(), func(m *Model) { m.Phase, m.Busy, m.Title, m.Total = Printing, true, "A", 2 }), nil},
		{"released job never arrives: back to idle with a message", with(idle(), func(m *Model) { m.Phase, m.Until = Printing, t0 }), Tick{}, timed,
			with(idle(), func(m *Model) {
				m.Phase, m.Message, m.Until = Failed, "The released job did not arrive; tap again", t0.Add(5*time.Second)
			}), nil},
		{"then idle", with(idle(), func(m *Model) { m.Phase, m.Message, m.Until = Failed, "The released job did not arrive; tap again", t0 }), Tick{}, timed, idle(), nil},
		{"printing job is not bounded", with(idle(), func(m *Model) { m.Phase, m.Busy, m.Done, m.Total = Printing, true, 5, 10000 }), Tick{}, timed,
			with(idle(), func(m *Model) { m.Phase, m.Busy, m.Done, m.Total = Printing, true, 5, 10000 }), nil},

		// Jobs the station refuses.
		{"refused job answers the wait", with(idle(), func(m *Model) { m.Phase, m.Until = Printing, t0.Add(time.Second) }), JobRejected{ID: "j1", Reason: "undecodable job"}, timed,
			with(idle(), func(m *Model) {
				m.Phase, m.Message, m.Until = Failed, "Job refused: undecodable job", t0.Add(5*time.Second)
			}), nil},
		{"storage full", idle(), JobRejected{ID: "j1", Reason: "journal: storage full", Full: true}, settings,
			with(idle(), func(m *Model) {
				m.Phase, m.Message, m.Until, m.StorageFull = Failed, "Storage full: job refused", t0.Add(5*time.Second), true
			}), nil},
		{"storage full while printing is a notice", with(idle(), func(m *Model) { m.Phase, m.Busy = Printing, true }), JobRejected{ID: "j2", Reason: "x", Full: true}, settings,
			with(idle(), func(m *Model) {
				m.Phase, m.Busy, m.StorageFull, m.Notice, m.NoticeUntil = Printing, true, true, "Storage full: job refused", t0.Add(5*time.Second)
			}), nil},
		{"storage usable again", with(idle(), func(m *Model) { m.StorageFull = true }), JobJournaled{}, settings, idle(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, effects := Step(tt.from, tt.ev, t0, tt.s)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("model\n got %+v\nwant %+v", got, tt.want)
			}
			if !reflect.DeepEqual(effects, tt.effects) {
				t.Errorf("effects\n got %#v\nwant %#v", effects, tt.effects)
			}
		})
	}
}

// Every phase has a screen.
func TestViewOfEveryPhase(t *testing.T) {
	seen := map[string]Phase{}
	for p := Boot; p <= Failed; p++ {
		v := ViewOf(Model{Phase: p, Code: code, Message: "m"}, t0, "st-1")
		if p != Failed && v.Kind.String() == "Error" && p.String() != "failed" {
			t.Errorf("%s has no screen of its own", p)
		}
		if prev, dup := seen[v.Kind.String()]; dup {
			t.Errorf("%s and %s share the screen %s", prev, p, v.Kind)
		}
		seen[v.Kind.String()] = p
	}
	v := ViewOf(Model{Phase: Enrolling, Code: code}, t0, "st-1")
	if v.QR != code.URIComplete || v.Code != code.UserCode || v.URL != code.URI || !v.Expires.Equal(code.Expires) {
		t.Errorf("enrolling view = %+v", v)
	}
	v = ViewOf(Model{Phase: Enrolling, Code: PairingCode{UserCode: "X", URI: "http://x/device"}}, t0, "")
	if v.QR != "http://x/device" {
		t.Errorf("without verification_uri_complete the QR is %q, want the plain URI", v.QR)
	}
	// The setup problem names the OAuth error so the admin knows what to fix.
	v = ViewOf(Model{Phase: SetupProblem, Setup: "invalid_scope"}, t0, "")
	if v.Kind.String() != "Error" || v.Title != "Setup problem" || !reflect.DeepEqual(v.Lines, []string{"Tell IT: invalid_scope", "Your jobs are kept."}) {
		t.Errorf("setup problem view = %v %q", v.Kind, v.Lines)
	}
}

// Storage trouble and a tap while busy are on screen, not only in the log.
func TestViewShowsStorageFullAndNotices(t *testing.T) {
	v := ViewOf(with(idle(), func(m *Model) { m.StorageFull = true }), t0, "st-1")
	if len(v.Lines) == 0 || v.Lines[0] != "Storage full" {
		t.Errorf("idle with full storage: lines %q", v.Lines)
	}
	v = ViewOf(with(idle(), func(m *Model) { m.Phase, m.Title, m.Notice = Printing, "Parcels", busyNotice }), t0, "st-1")
	if len(v.Lines) != 2 || v.Lines[1] != busyNotice {
		t.Errorf("printing with a notice: lines %q", v.Lines)
	}
}

// A failing reader replaces the idle screen's invitation to tap; recovery brings it back.
func TestViewReaderProblem(t *testing.T) {
	m := with(idle(), func(m *Model) { m.ReaderFault = "badge: i2c: remote I/O error" })
	v := ViewOf(m, t0, "st-1")
	if v.Kind.String() != "Error" || v.Title != ReaderProblem {
		t.Fatalf("idle with a reader fault shows %s %q, want Error %q", v.Kind, v.Title, ReaderProblem)
	}
	m, _ = Step(m, ReaderRecovered{}, t0, settings)
	if v := ViewOf(m, t0, "st-1"); v.Kind.String() != "Idle" || v.Title != "" {
		t.Fatalf("after recovery: %s %q, want Idle", v.Kind, v.Title)
	}
}
