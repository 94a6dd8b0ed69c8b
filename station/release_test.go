package station

import (
	"context"
	"errors"
	"image"
	"reflect"
	"strings"
	"testing"
	"time"

	"labelstation/protocol"
	"labelstation/station/cloud"
	"labelstation/station/journal"
)

var (
	selecting = Settings{ResultScreen: 5 * time.Second, Select: true, SelectWait: 30 * time.Second, Answer: 15 * time.Second, Arrive: 30 * time.Second}
	aged      = []protocol.JobSummary{
		{ID: "new", Title: "New", Labels: 1, Submitted: t0.Add(-time.Minute), Expires: t0.Add(8 * time.Hour)},
		{ID: "old", Title: "Old", Labels: 2, Submitted: t0.Add(-2 * time.Hour), Expires: t0.Add(6 * time.Hour)},
		{ID: "gone", Title: "Gone", Labels: 3, Submitted: t0.Add(-9 * time.Hour), Expires: t0},
	}
)

func selectModel(f func(*Model)) Model {
	return with(idle(), func(m *Model) {
		m.Phase, m.Badge, m.User, m.Jobs, m.Until = Select, "h1", "Alice", twoJobs, t0.Add(30*time.Second)
		f(m)
	})
}

func TestStepRelease(t *testing.T) {
	pic := image.NewGray(image.Rect(0, 0, 8, 8))
	withPreview := selecting
	withPreview.Preview = true
	newest := selecting
	newest.Newest = true
	offline := settings
	offline.OfflineRelease, offline.Answer, offline.Arrive = true, 15*time.Second, 30*time.Second
	tests := []struct {
		name    string
		from    Model
		ev      Event
		s       Settings
		want    Model
		effects []Effect
	}{
		{"select mode lists live jobs oldest first", with(idle(), func(m *Model) { m.Phase, m.Badge = Lookup, "h1" }),
			LookupDone{Reply: protocol.LookupReply{User: &protocol.User{Name: "Alice"}, Jobs: aged}}, selecting,
			with(idle(), func(m *Model) {
				m.Phase, m.Badge, m.User, m.Jobs, m.Until = Select, "h1", "Alice", []protocol.JobSummary{aged[1], aged[0]}, t0.Add(30*time.Second)
			}), nil},
		{"newest first", with(idle(), func(m *Model) { m.Phase, m.Badge = Lookup, "h1" }),
			LookupDone{Reply: protocol.LookupReply{User: &protocol.User{Name: "Alice"}, Jobs: aged}}, newest,
			with(idle(), func(m *Model) {
				m.Phase, m.Badge, m.User, m.Jobs, m.Until = Select, "h1", "Alice", []protocol.JobSummary{aged[0], aged[1]}, t0.Add(30*time.Second)
			}), nil},
		{"only expired jobs: nothing to print", with(idle(), func(m *Model) { m.Phase, m.Badge = Lookup, "h1" }),
			LookupDone{Reply: protocol.LookupReply{Jobs: aged[2:]}}, selecting,
			with(idle(), func(m *Model) { m.Phase, m.Until = NoJobs, t0.Add(5*time.Second) }), nil},
		{"A moves to the next entry", selectModel(func(*Model) {}), ButtonPressed{Name: "A"}, selecting,
			selectModel(func(m *Model) { m.Cursor = 1 }), nil},
		{"A wraps after Back", selectModel(func(m *Model) { m.Cursor = 3 }), ButtonPressed{Name: "A"}, selecting,
			selectModel(func(m *Model) { m.Cursor = 0 }), nil},
		{"B on Print all releases every job", selectModel(func(*Model) {}), ButtonPressed{Name: "B"}, selecting,
			selectModel(func(m *Model) { m.Releasing, m.Until = true, t0.Add(15*time.Second) }), []Effect{DoRelease{Badge: "h1", Jobs: []string{"j1", "j2"}}}},
		{"B on the second job releases only it", selectModel(func(m *Model) { m.Cursor = 2 }), ButtonPressed{Name: "B"}, selecting,
			selectModel(func(m *Model) { m.Cursor, m.Releasing, m.Until = 2, true, t0.Add(15*time.Second) }), []Effect{DoRelease{Badge: "h1", Jobs: []string{"j2"}}}},
		{"ok is a print button too", selectModel(func(m *Model) { m.Cursor = 1 }), ButtonPressed{Name: "ok"}, withPreview,
			selectModel(func(m *Model) { m.Cursor, m.Releasing, m.Until = 1, true, t0.Add(15*time.Second) }), []Effect{DoRelease{Badge: "h1", Jobs: []string{"j1"}, Preview: true}}},
		{"B on Back returns to idle", selectModel(func(m *Model) { m.Cursor = 3 }), ButtonPressed{Name: "B"}, selecting, idle(), nil},
		{"B held on a job returns to idle, nothing released", selectModel(func(m *Model) { m.Cursor = 2 }), ButtonPressed{Name: "B", Long: true}, selecting, idle(), nil},
		{"B held on Print all returns to idle", selectModel(func(*Model) {}), ButtonPressed{Name: "B", Long: true}, selecting, idle(), nil},
		{"ok held returns to idle too", selectModel(func(m *Model) { m.Cursor = 1 }), ButtonPressed{Name: "ok", Long: true}, withPreview, idle(), nil},
		{"A held moves on like a press", selectModel(func(m *Model) { m.Cursor = 1 }), ButtonPressed{Name: "A", Long: true}, selecting,
			selectModel(func(m *Model) { m.Cursor = 2 }), nil},
		{"B held while releasing is ignored", selectModel(func(m *Model) { m.Releasing = true }), ButtonPressed{Name: "B", Long: true}, selecting,
			selectModel(func(m *Model) { m.Releasing = true }), nil},
		{"buttons ignored while releasing", selectModel(func(m *Model) { m.Releasing = true }), ButtonPressed{Name: "A"}, selecting,
			selectModel(func(m *Model) { m.Releasing = true }), nil},
		{"nobody chose: idle, nothing printed", selectModel(func(m *Model) { m.Cursor, m.Until = 2, t0 }), Tick{}, selecting, idle(), nil},
		{"tap ignored while choosing", selectModel(func(*Model) {}), BadgeTapped{Hash: "h2"}, selecting, selectModel(func(*Model) {}), nil},
		{"released from the list: wait for the job", selectModel(func(m *Model) { m.Releasing = true }),
			ReleaseDone{Reply: protocol.ReleaseReply{Released: []string{"j2"}}}, selecting,
			selectModel(func(m *Model) { m.Phase, m.Badge, m.Until = Printing, "", t0.Add(30*time.Second) }), nil},
		{"release unanswered from the list", selectModel(func(m *Model) { m.Releasing, m.Until = true, t0 }), Tick{}, selecting,
			selectModel(func(m *Model) {
				m.Phase, m.Badge, m.Message, m.Until = Offline, "", "No answer from the cloud", t0.Add(5*time.Second)
			}), nil},

		// Preview.
		{"preview arrives", with(idle(), func(m *Model) { m.Phase, m.Until = Printing, t0.Add(time.Second) }),
			PreviewReady{ID: "j2", Title: "B", Labels: 1, Image: pic}, withPreview,
			with(idle(), func(m *Model) {
				m.Phase, m.PreviewJob, m.PreviewImage, m.Title, m.Total, m.Until = Preview, "j2", pic, "B", 1, t0.Add(30*time.Second)
			}), nil},
		{"preview overtakes the release reply", selectModel(func(m *Model) { m.Releasing = true }),
			PreviewReady{ID: "j2", Title: "B", Labels: 1, Image: pic}, withPreview,
			selectModel(func(m *Model) {
				m.Phase, m.PreviewJob, m.PreviewImage, m.Title, m.Total = Preview, "j2", pic, "B", 1
			}), nil},
		{"late preview stays held", idle(), PreviewReady{ID: "j2", Image: pic}, withPreview, idle(), nil},
		{"B prints the previewed job", with(idle(), func(m *Model) { m.Phase, m.PreviewJob, m.PreviewImage, m.Until = Preview, "j2", pic, t0 }),
			ButtonPressed{Name: "B"}, withPreview,
			with(idle(), func(m *Model) { m.Phase, m.Until = Printing, t0.Add(30*time.Second) }), []Effect{DoHold{ID: "j2", Held: false}}},
		{"A keeps it here", with(idle(), func(m *Model) { m.Phase, m.PreviewJob, m.PreviewImage = Preview, "j2", pic }),
			ButtonPressed{Name: "A"}, withPreview,
			with(idle(), func(m *Model) { m.Phase, m.Until = Kept, t0.Add(5*time.Second) }), nil},
		{"B held on the preview keeps it here", with(idle(), func(m *Model) { m.Phase, m.PreviewJob, m.PreviewImage = Preview, "j2", pic }),
			ButtonPressed{Name: "B", Long: true}, withPreview,
			with(idle(), func(m *Model) { m.Phase, m.Until = Kept, t0.Add(5*time.Second) }), nil},
		{"A held on the preview keeps it here", with(idle(), func(m *Model) { m.Phase, m.PreviewJob, m.PreviewImage = Preview, "j2", pic }),
			ButtonPressed{Name: "A", Long: true}, withPreview,
			with(idle(), func(m *Model) { m.Phase, m.Until = Kept, t0.Add(5*time.Second) }), nil},
		// A long press elsewhere counts as a press.
		{"held on the confirm list releases like a press", with(idle(), func(m *Model) { m.Phase, m.Badge, m.Jobs = List, "h1", twoJobs }),
			ButtonPressed{Name: "B", Long: true}, confirm,
			with(idle(), func(m *Model) { m.Phase, m.Badge, m.Jobs, m.Releasing = List, "h1", twoJobs, true }), []Effect{DoRelease{Badge: "h1", Jobs: []string{"j1", "j2"}}}},
		{"held on the pairing screen prints the label", Model{Phase: Enrolling, Code: code}, ButtonPressed{Name: "ok", Long: true}, settings,
			Model{Phase: Enrolling, Code: code}, []Effect{DoPrintPairing{Code: code}}},
		{"preview left alone keeps it here", with(idle(), func(m *Model) { m.Phase, m.PreviewJob, m.PreviewImage, m.Until = Preview, "j2", pic, t0 }),
			Tick{}, withPreview, with(idle(), func(m *Model) { m.Phase, m.Until = Kept, t0.Add(5*time.Second) }), nil},
		{"kept screen ends", with(idle(), func(m *Model) { m.Phase, m.Until = Kept, t0 }), Tick{}, withPreview, idle(), nil},

		// Offline release.
		{"offline tap looks for jobs here", Model{Phase: Connecting, Configured: true}, BadgeTapped{Hash: "h1"}, offline,
			Model{Phase: Lookup, Configured: true, Badge: "h1", OfflineRelease: true, Until: t0.Add(15 * time.Second)}, []Effect{DoOfflineRelease{Badge: "h1"}}},
		{"lookup finds the cloud gone", with(idle(), func(m *Model) { m.Phase, m.Badge = Lookup, "h1" }), LookupDone{Err: cloud.ErrOffline}, offline,
			with(idle(), func(m *Model) {
				m.Phase, m.Badge, m.OfflineRelease, m.Until = Lookup, "h1", true, t0.Add(15*time.Second)
			}), []Effect{DoOfflineRelease{Badge: "h1"}}},
		{"offline release prints", Model{Phase: Lookup, Configured: true, Badge: "h1", OfflineRelease: true}, OfflineReleased{User: "Alice", Jobs: 1}, offline,
			Model{Phase: Printing, Configured: true, User: "Alice", OfflineRelease: true, Until: t0.Add(30 * time.Second)}, nil},
		{"nothing here: offline screen", Model{Phase: Lookup, Configured: true, Badge: "h1", OfflineRelease: true}, OfflineReleased{}, offline,
			Model{Phase: Offline, Configured: true, Message: "Cloud unreachable", Until: t0.Add(5 * time.Second)}, nil},
		{"late cloud answer ignored offline", Model{Phase: Lookup, Configured: true, Badge: "h1", OfflineRelease: true}, LookupDone{Reply: protocol.LookupReply{Jobs: twoJobs}}, offline,
			Model{Phase: Lookup, Configured: true, Badge: "h1", OfflineRelease: true}, nil},
		{"offline release off: as before", Model{Phase: Connecting, Configured: true}, BadgeTapped{Hash: "h1"}, settings,
			Model{Phase: Offline, Configured: true, Message: "Cloud unreachable", Until: t0.Add(5 * time.Second)}, nil},
		{"done after offline printing clears it", Model{Phase: Printing, Configured: true, Busy: true, OfflineRelease: true}, PrintIdle{}, offline,
			Model{Phase: Done, Configured: true, Until: t0.Add(5 * time.Second)}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, eff := Step(tc.from, tc.ev, t0, tc.s)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("model\n got %+v\nwant %+v", got, tc.want)
			}
			if !reflect.DeepEqual(eff, tc.effects) {
				t.Errorf("effects\n got %#v\nwant %#v", eff, tc.effects)
			}
		})
	}
}

// An expired job is never printed: the worker fails it with the reason, reported through the
// outbox, and a held job is failed at expiry by maintenance; a job not yet expired prints.
func TestWorkerNeverPrintsExpiredJob(t *testing.T) {
	fp := &fakePrinter{}
	s, j := workerStation(t, fp)
	s.kick = make(chan struct{}, 1)
	now := time.Now()
	old := testJob(t)
	old.ID, old.Title, old.Expires = "old", "Old", now.Add(-time.Minute)
	fresh := testJob(t)
	fresh.ID, fresh.Title, fresh.Expires = "fresh", "Fresh", now.Add(time.Hour)
	kept := testJob(t)
	kept.ID, kept.Expires = "kept", now.Add(-time.Second)
	for _, jb := range []protocol.Job{old, fresh, kept} {
		if _, _, err := j.Claim(jb); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Hold("kept", true); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.worker(ctx) }()
	defer func() { cancel(); <-done }()
	finished := map[string]error{}
	for len(finished) < 2 {
		if e, ok := next(t, s).(JobFinished); ok {
			finished[e.Title] = e.Err
		}
	}
	if err := finished[old.Title]; !errors.Is(err, errExpired) {
		t.Errorf("expired job finished with %v, want errExpired", err)
	}
	if e, _ := j.Get("old"); e.State != protocol.JobFailed || !strings.Contains(e.Error, "expired") {
		t.Errorf("expired job journaled as %s %q", e.State, e.Error)
	}
	if e, _ := j.Get("fresh"); e.State != protocol.JobPrinted {
		t.Errorf("fresh job is %s, want printed", e.State)
	}
	fp.mu.Lock()
	n := len(fp.labels)
	fp.mu.Unlock()
	if n != fresh.Labels {
		t.Errorf("printer got %d labels, want only the fresh job's %d", n, fresh.Labels)
	}
	s.expireHeld()
	if e, _ := j.Get("kept"); e.State != protocol.JobFailed {
		t.Errorf("held job past its expiry is %s, want failed", e.State)
	}
}

// A badge the cloud recognised may release, while the cloud is unreachable, its owner's jobs
// held on the station — also after a restart — until its offline lifetime ends; another
// owner's jobs stay held.
func TestOfflineReleaseRemembersBadgeAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	clock := time.Now()
	station := func(j *journal.Journal) *Station {
		s, _ := workerStation(t, &fakePrinter{})
		if j != nil {
			s.opt.Journal = j
		}
		s.kick = make(chan struct{}, 1)
		s.opt.Now = func() time.Time { return clock }
		s.cfg.Station.StateDir = dir
		s.cfg.Release.OfflineSeconds = 600
		return s
	}
	s1 := station(nil)
	j := s1.opt.Journal
	mine, theirs := testJob(t), testJob(t)
	mine.ID, mine.User = "mine", protocol.User{ID: "u-ann", Name: "Ann"}
	theirs.ID, theirs.User = "theirs", protocol.User{ID: "u-bob", Name: "Bob"}
	for _, jb := range []protocol.Job{mine, theirs} {
		if _, _, err := j.Claim(jb); err != nil {
			t.Fatal(err)
		}
		if err := j.Hold(jb.ID, true); err != nil {
			t.Fatal(err)
		}
	}
	rep := s1.afterLookup("hash-ann", protocol.LookupReply{User: &protocol.User{ID: "u-ann", Name: "Ann"}})
	if len(rep.Jobs) != 1 || rep.Jobs[0].ID != "mine" {
		t.Fatalf("lookup lists %+v, want Ann's job held here", rep.Jobs)
	}

	s2 := station(j) // a restart: nothing in memory
	s2.releaseEffect(DoOfflineRelease{Badge: "hash-unknown"})
	if ev := next(t, s2); ev != (OfflineReleased{}) {
		t.Fatalf("unknown badge: %#v, want nothing released", ev)
	}
	s2.releaseEffect(DoOfflineRelease{Badge: "hash-ann"})
	if ev := next(t, s2); ev != (OfflineReleased{User: "Ann", Jobs: 1}) {
		t.Fatalf("Ann's badge: %#v, want her one job", ev)
	}
	pending, _ := j.Pending()
	held, _ := j.Held()
	if len(pending) != 1 || pending[0].Job.ID != "mine" || len(held) != 1 || held[0].Job.ID != "theirs" {
		t.Fatalf("pending %d held %d: want Ann's job queued and Bob's still held", len(pending), len(held))
	}

	clock = clock.Add(601 * time.Second)
	if err := j.Hold("mine", true); err != nil {
		t.Fatal(err)
	}
	s3 := station(j)
	s3.releaseEffect(DoOfflineRelease{Badge: "hash-ann"})
	if ev := next(t, s3); ev != (OfflineReleased{}) {
		t.Fatalf("after the lifetime: %#v, want nothing released", ev)
	}
}
