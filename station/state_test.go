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
		{"reenroll drops everything", with(idle(), func(m *Model) { m.User = "x" }), Reenroll{}, settings, Model{Phase: Enrolling, Configured: true}, nil},

		// Connectivity.
		{"connected", Model{Phase: Connecting}, OnlineChanged{Online: true}, settings, Model{Phase: Idle, Online: true}, nil},
		{"lost while idle", idle(), OnlineChanged{Online: false}, settings, Model{Phase: Connecting, Configured: true}, nil},
		{"lost while printing keeps printing", with(idle(), func(m *Model) { m.Phase = Printing }), OnlineChanged{Online: false}, settings, Model{Phase: Printing, Configured: true}, nil},
		{"configured", Model{Phase: Idle, Online: true}, Configured{Badges: true}, settings, idle(), nil},

		// Tap.
		{"tap looks up", idle(), BadgeTapped{Hash: "h1"}, settings, with(idle(), func(m *Model) { m.Phase, m.Badge = Lookup, "h1" }), []Effect{DoLookup{Badge: "h1"}}},
		{"tap offline", Model{Phase: Connecting, Configured: true}, BadgeTapped{Hash: "h1"}, settings,
			Model{Phase: Offline, Configured: true, Message: "Cloud unreachable", Until: t0.Add(5 * time.Second)}, nil},
		{"tap unconfigured", Model{Phase: Idle, Online: true}, BadgeTapped{Hash: "h1"}, settings,
			Model{Phase: Failed, Online: true, Message: "Not configured yet", Until: t0.Add(5 * time.Second)}, nil},
		{"tap with bad number", idle(), BadgeTapped{Err: errors.New("badge: bits 99")}, settings,
			with(idle(), func(m *Model) { m.Phase, m.Message, m.Until = Failed, "badge: bits 99", t0.Add(5*time.Second) }), nil},
		{"tap ignored while printing", with(idle(), func(m *Model) { m.Phase = Printing }), BadgeTapped{Hash: "h1"}, settings, with(idle(), func(m *Model) { m.Phase = Printing }), nil},
		{"tap ignored while enrolling", Model{Phase: Enrolling, Code: code}, BadgeTapped{Hash: "h1"}, settings, Model{Phase: Enrolling, Code: code}, nil},
		{"tap on a result screen starts over", with(idle(), func(m *Model) { m.Phase, m.Until = Done, t0 }), BadgeTapped{Hash: "h2"}, settings,
			with(idle(), func(m *Model) { m.Phase, m.Badge, m.Until = Lookup, "h2", t0 }), []Effect{DoLookup{Badge: "h2"}}},

		// Lookup results.
		{"jobs released at once", with(idle(), func(m *Model) { m.Phase, m.Badge = Lookup, "h1" }),
			LookupDone{Reply: protocol.LookupReply{User: &protocol.User{ID: "a", Name: "Alice"}, Jobs: twoJobs}}, settings,
			with(idle(), func(m *Model) { m.Phase, m.Badge, m.User, m.Jobs = List, "h1", "Alice", twoJobs }),
			[]Effect{DoRelease{Badge: "h1", Jobs: []string{"j1", "j2"}}}},
		{"jobs wait for confirm", with(idle(), func(m *Model) { m.Phase, m.Badge = Lookup, "h1" }),
			LookupDone{Reply: protocol.LookupReply{User: &protocol.User{Name: "Alice"}, Jobs: twoJobs}}, confirm,
			with(idle(), func(m *Model) {
				m.Phase, m.Badge, m.User, m.Jobs, m.Until = List, "h1", "Alice", twoJobs, t0.Add(20*time.Second)
			}), nil},
		{"confirm button releases", with(idle(), func(m *Model) { m.Phase, m.Badge, m.Jobs = List, "h1", twoJobs }), ButtonPressed{Name: "A"}, confirm,
			with(idle(), func(m *Model) { m.Phase, m.Badge, m.Jobs = List, "h1", twoJobs }), []Effect{DoRelease{Badge: "h1", Jobs: []string{"j1", "j2"}}}},
		{"button ignored without confirm mode", idle(), ButtonPressed{Name: "A"}, settings, idle(), nil},
		{"button prints the pairing label", Model{Phase: Enrolling, Code: code}, ButtonPressed{Name: "A"}, settings, Model{Phase: Enrolling, Code: code}, []Effect{DoPrintPairing{Code: code}}},
		{"button after denial asks for a new code", Model{Phase: Denied}, ButtonPressed{Name: "A"}, settings, Model{Phase: Denied}, []Effect{DoRetryPairing{}}},
		{"no jobs", with(idle(), func(m *Model) { m.Phase, m.Badge = Lookup, "h1" }),
			LookupDone{Reply: protocol.LookupReply{User: &protocol.User{Name: "Alice"}, Jobs: nil}}, settings,
			with(idle(), func(m *Model) { m.Phase, m.User, m.Until = NoJobs, "Alice", t0.Add(5*time.Second) }), nil},
		{"unknown badge", with(idle(), func(m *Model) { m.Phase, m.Badge = Lookup, "h1" }),
			LookupDone{Reply: protocol.LookupReply{Error: &protocol.Error{Code: protocol.CodeUnknownBadge, Message: "no"}}}, settings,
			with(idle(), func(m *Model) { m.Phase, m.Until = UnknownBadge, t0.Add(5*time.Second) }), nil},
		{"cloud error", with(idle(), func(m *Model) { m.Phase, m.Badge = Lookup, "h1" }),
			LookupDone{Reply: protocol.LookupReply{Error: &protocol.Error{Code: protocol.CodeInternal, Message: "db down"}}}, settings,
			with(idle(), func(m *Model) { m.Phase, m.Message, m.Until = Failed, "db down", t0.Add(5*time.Second) }), nil},
		{"lookup offline", with(idle(), func(m *Model) { m.Phase, m.Badge = Lookup, "h1" }), LookupDone{Err: cloud.ErrOffline}, settings,
			with(idle(), func(m *Model) { m.Phase, m.Message, m.Until = Offline, "Cloud unreachable", t0.Add(5*time.Second) }), nil},
		{"lookup timeout", with(idle(), func(m *Model) { m.Phase, m.Badge = Lookup, "h1" }), LookupDone{Err: fmt.Errorf("x: %w", cloud.ErrTimeout)}, settings,
			with(idle(), func(m *Model) { m.Phase, m.Message, m.Until = Offline, "Cloud unreachable", t0.Add(5*time.Second) }), nil},
		{"late lookup reply ignored", idle(), LookupDone{Reply: protocol.LookupReply{Jobs: twoJobs}}, settings, idle(), nil},

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
			with(idle(), func(m *Model) { m.Phase, m.Badge, m.ReaderFault = Lookup, "h1", "x" }), []Effect{DoLookup{Badge: "h1"}}},
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
