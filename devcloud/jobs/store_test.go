package jobs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// storeKind opens a fresh store; reopen, when not nil, closes it and opens the same data again
// (what a restart of devcloud does).
type storeKind struct {
	name    string
	durable bool
	open    func(t testing.TB) (s Store, reopen func(Store) Store)
}

func storeKinds() []storeKind {
	return []storeKind{
		{"memory", false, func(t testing.TB) (Store, func(Store) Store) { return NewMemStore(), nil }},
		{"bolt", true, func(t testing.TB) (Store, func(Store) Store) {
			path := filepath.Join(t.TempDir(), "jobs.db")
			open := func() Store {
				s, err := OpenBolt(path)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
			return open(), func(old Store) Store {
				if err := old.Close(); err != nil {
					t.Fatal(err)
				}
				return open()
			}
		}},
		{"postgres", true, func(t testing.TB) (Store, func(Store) Store) {
			url := testPostgres(t)
			open := func() Store {
				s, err := OpenPostgres(context.Background(), url)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
			return open(), func(old Store) Store { old.Close(); return open() }
		}},
	}
}

// forEachStore runs test against every Store implementation.
func forEachStore(t *testing.T, test func(t *testing.T, k storeKind)) {
	for _, k := range storeKinds() {
		t.Run(k.name, func(t *testing.T) { test(t, k) })
	}
}

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func mustAdd(t *testing.T, s Store, jobs ...Job) {
	t.Helper()
	for _, j := range jobs {
		if err := s.Add(j); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStoreReleaseAndIdempotentStatus(t *testing.T) {
	forEachStore(t, func(t *testing.T, k storeKind) {
		now := t0
		s, _ := k.open(t)
		mustAdd(t, s,
			Job{ID: "j1", User: "alice", Labels: 3, State: StateHeld, Created: now, Updated: now},
			Job{ID: "j2", User: "alice", Labels: 1, State: StateHeld, Created: now.Add(time.Second), Updated: now},
			Job{ID: "j3", User: "bob", Labels: 1, State: StateHeld, Created: now, Updated: now})

		// Only the user's own held jobs are released.
		got, err := s.Release("alice", "st-1", []string{"j1", "j3", "nope"}, now)
		if err != nil || len(got) != 1 || got[0].ID != "j1" || got[0].Station != "st-1" || got[0].State != StateReleased {
			t.Fatalf("released %+v, %v", got, err)
		}
		if again, err := s.Release("alice", "st-2", []string{"j1"}, now); err != nil || len(again) != 0 {
			t.Fatalf("a released job was released again: %+v, %v", again, err)
		}
		// The same station asking again (it never heard the reply) gets the job again.
		if again, err := s.Release("alice", "st-1", []string{"j1"}, now); err != nil || ids(again) != "j1" || again[0].Station != "st-1" {
			t.Fatalf("repeat of st-1's release: %+v, %v", again, err)
		}
		if held, err := s.List("alice", StateHeld); err != nil || len(held) != 1 || held[0].ID != "j2" {
			t.Fatalf("held = %+v, %v", held, err)
		}

		steps := []struct {
			station, state string
			printed, seq   int
			changed        bool
			wantErr        bool
		}{
			{"st-1", StateClaimed, 0, 1, true, false},
			{"st-1", StateClaimed, 0, 1, false, false}, // repeat
			{"st-2", StatePrinted, 3, 9, false, true},  // not released to st-2
			{"st-1", StatePrinting, 2, 3, true, false},
			{"st-1", StatePrinting, 1, 2, false, false}, // late, older report
			{"st-1", StatePrinted, 3, 4, true, false},
			{"st-1", StateFailed, 3, 5, false, false}, // printed is final
		}
		for i, st := range steps {
			_, changed, err := s.ApplyStatus(st.station, "j1", st.state, st.printed, st.seq, "", now)
			if (err != nil) != st.wantErr || changed != st.changed {
				t.Fatalf("step %d: changed=%v err=%v", i, changed, err)
			}
		}
		if again, err := s.Release("alice", "st-1", []string{"j1"}, now); err != nil || len(again) != 0 {
			t.Fatalf("a claimed job was released again: %+v, %v", again, err)
		}
		j, err := s.Get("j1")
		if err != nil || j.State != StatePrinted || j.Printed != 3 {
			t.Fatalf("final %+v, %v", j, err)
		}
		if _, _, err := s.ApplyStatus("st-1", "ghost", StatePrinted, 1, 1, "", now); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown job: %v", err)
		}
	})
}

func TestStoreAddGetList(t *testing.T) {
	forEachStore(t, func(t *testing.T, k storeKind) {
		s, _ := k.open(t)
		data := []byte("a,b\n1,2\n\x00\xff")
		mustAdd(t, s,
			Job{ID: "b", Title: "Second", Layout: "shipping", User: "alice", DataFormat: "csv", Data: data, Labels: 2, State: StateHeld, Created: t0.Add(time.Minute), Updated: t0},
			Job{ID: "a", User: "alice", State: StateHeld, Created: t0, Updated: t0},
			Job{ID: "c", User: "bob", State: StateHeld, Created: t0, Updated: t0})
		if err := s.Add(Job{ID: "a", User: "mallory", State: StateHeld, Created: t0}); !errors.Is(err, ErrExists) {
			t.Fatalf("second add of id a: %v, want ErrExists", err)
		}
		j, err := s.Get("b")
		if err != nil {
			t.Fatal(err)
		}
		if j.Title != "Second" || j.Layout != "shipping" || j.DataFormat != "csv" || j.Labels != 2 || !bytes.Equal(j.Data, data) || !j.Created.Equal(t0.Add(time.Minute)) {
			t.Fatalf("got %+v", j)
		}
		if _, err := s.Get("zz"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown id: %v", err)
		}
		all, err := s.List("")
		if err != nil || ids(all) != "a,c,b" {
			t.Fatalf("List all = %s, %v", ids(all), err)
		}
		if l, _ := s.List("alice"); ids(l) != "a,b" {
			t.Fatalf("List alice = %s", ids(l))
		}
		if l, _ := s.List("alice", StateReleased, StatePrinted); len(l) != 0 {
			t.Fatalf("List alice released = %s", ids(l))
		}
		if a, _ := s.Get("a"); a.User != "alice" {
			t.Fatalf("a refused Add changed job a: %+v", a)
		}
	})
}

func ids(js []Job) string {
	var b bytes.Buffer
	for i, j := range js {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(j.ID)
	}
	return b.String()
}

// Many stations tapping the same user's badge at once: every job goes to exactly one station.
func TestStoreConcurrentReleases(t *testing.T) {
	forEachStore(t, func(t *testing.T, k storeKind) {
		s, _ := k.open(t)
		const nJobs, nStations = 40, 8
		var all []string
		for i := range nJobs {
			id := fmt.Sprintf("j%02d", i)
			all = append(all, id)
			mustAdd(t, s, Job{ID: id, User: "alice", State: StateHeld, Created: t0, Updated: t0})
		}
		var (
			mu    sync.Mutex
			wg    sync.WaitGroup
			owner = map[string]string{}
			errs  []error
		)
		start := make(chan struct{})
		for st := range nStations {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				station := fmt.Sprintf("st-%d", st)
				// Each station asks several times, for all jobs, in a different order.
				for round := range 5 {
					ask := append([]string(nil), all...)
					for i := range ask {
						o := (i*(st+1) + round) % len(ask)
						ask[i], ask[o] = ask[o], ask[i]
					}
					got, err := s.Release("alice", station, ask, t0)
					mu.Lock()
					if err != nil {
						errs = append(errs, err)
					}
					for _, j := range got {
						if prev, ok := owner[j.ID]; ok && prev != station {
							errs = append(errs, fmt.Errorf("job %s released to %s and %s", j.ID, prev, station))
						}
						owner[j.ID] = station
					}
					mu.Unlock()
				}
			}()
		}
		close(start)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		if len(owner) != nJobs {
			t.Fatalf("%d of %d jobs released", len(owner), nJobs)
		}
		for id, st := range owner {
			if j, _ := s.Get(id); j.Station != st || j.State != StateReleased {
				t.Fatalf("job %s stored as %+v, released to %s", id, j, st)
			}
		}
	})
}

func TestStoreWaitFor(t *testing.T) {
	forEachStore(t, func(t *testing.T, k storeKind) {
		s, _ := k.open(t)
		mustAdd(t, s, Job{ID: "j1", User: "alice", State: StateHeld, Created: t0, Updated: t0})
		if _, err := s.Release("alice", "st-1", []string{"j1"}, t0); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			j, err := s.WaitFor(ctx, "j1", func(j Job) bool { return j.State == StatePrinted })
			if err == nil && j.Printed != 2 {
				err = fmt.Errorf("woke with %+v", j)
			}
			done <- err
		}()
		if _, _, err := s.ApplyStatus("st-1", "j1", StatePrinted, 2, 1, "", t0); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		// A job that never gets there: WaitFor ends with the context and says where it is.
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := s.WaitFor(ctx, "j1", func(j Job) bool { return j.State == StateFailed }); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("WaitFor past deadline: %v", err)
		}
	})
}

// A durable store keeps held jobs, states, stations, payloads and status sequences across a
// reopen, and the status rule goes on where it stopped.
func TestStoreSurvivesReopen(t *testing.T) {
	forEachStore(t, func(t *testing.T, k storeKind) {
		if !k.durable {
			t.Skip("memory store: a restart starts empty by design")
		}
		s, reopen := k.open(t)
		mustAdd(t, s,
			Job{ID: "held", User: "alice", Data: []byte("x"), State: StateHeld, Created: t0, Updated: t0},
			Job{ID: "out", User: "alice", Data: []byte("y"), Labels: 3, State: StateHeld, Created: t0, Updated: t0})
		if _, err := s.Release("alice", "st-1", []string{"out"}, t0); err != nil {
			t.Fatal(err)
		}
		if _, ch, err := s.ApplyStatus("st-1", "out", StatePrinting, 1, 7, "", t0); err != nil || !ch {
			t.Fatalf("status: %v %v", ch, err)
		}
		s = reopen(s)
		if h, err := s.List("alice", StateHeld); err != nil || ids(h) != "held" || string(h[0].Data) != "x" {
			t.Fatalf("held after reopen: %+v, %v", h, err)
		}
		j, err := s.Get("out")
		if err != nil || j.State != StatePrinting || j.Station != "st-1" || j.Printed != 1 || string(j.Data) != "y" {
			t.Fatalf("after reopen: %+v, %v", j, err)
		}
		if _, ch, err := s.ApplyStatus("st-1", "out", StatePrinting, 0, 7, "", t0); err != nil || ch {
			t.Fatalf("repeat of seq 7 after reopen applied: %v %v", ch, err)
		}
		if _, ch, err := s.ApplyStatus("st-1", "out", StatePrinted, 3, 8, "", t0); err != nil || !ch {
			t.Fatalf("seq 8 after reopen: %v %v", ch, err)
		}
	})
}

func TestOpenSpec(t *testing.T) {
	for _, bad := range []string{"", "bolt:", "sqlite:x.db", "mysql://x"} {
		if _, err := Open(context.Background(), bad); err == nil {
			t.Errorf("Open(%q) accepted", bad)
		}
	}
	s, err := Open(context.Background(), "bolt:"+filepath.Join(t.TempDir(), "d.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.(*BoltStore); !ok {
		t.Fatalf("bolt: opened %T", s)
	}
}

// A second process on the same bolt file gets an error instead of hanging.
func TestBoltStoreRefusesSecondOpener(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobs.db")
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s2, err := OpenBolt(path); err == nil {
		s2.Close()
		t.Fatal("a second OpenBolt of a file in use succeeded")
	}
}

// BenchmarkStoreLookupRelease: one badge tap's store work, a lookup of the user's held jobs (10)
// and the release of one of them, plus the submission that keeps 10 held, per store.
func BenchmarkStoreLookupRelease(b *testing.B) {
	for _, k := range storeKinds() {
		b.Run(k.name, func(b *testing.B) {
			s, _ := k.open(b)
			add := func(i int) {
				if err := s.Add(Job{ID: fmt.Sprintf("j%08d", i), User: "alice", State: StateHeld, Created: t0.Add(time.Duration(i)), Updated: t0}); err != nil {
					b.Fatal(err)
				}
			}
			for i := range 10 {
				add(i)
			}
			b.ResetTimer()
			for i := range b.N {
				add(10 + i)
				held, err := s.List("alice", StateHeld)
				if err != nil || len(held) != 11 {
					b.Fatalf("lookup: %d held, %v", len(held), err)
				}
				if got, err := s.Release("alice", "st-1", []string{held[0].ID}, t0); err != nil || len(got) != 1 {
					b.Fatalf("release: %v %v", got, err)
				}
			}
		})
	}
}

func TestStoreValidated(t *testing.T) {
	forEachStore(t, func(t *testing.T, k storeKind) {
		s, _ := k.open(t)
		mustAdd(t, s,
			Job{ID: "ok", User: "alice", Data: []byte("raw"), State: StateValidating, Created: t0, Updated: t0},
			Job{ID: "bad", User: "alice", Data: []byte("raw"), State: StateValidating, Created: t0, Updated: t0})
		if rel, err := s.Release("alice", "st-1", []string{"ok"}, t0); err != nil || len(rel) != 0 {
			t.Fatalf("a validating job was released: %+v, %v", rel, err)
		}
		later := t0.Add(time.Minute)
		if _, err := s.Validated("ok", 4, []byte("norm"), []string{"record 2: cut"}, "", later); err != nil {
			t.Fatal(err)
		}
		j, err := s.Get("ok")
		if err != nil || j.State != StateHeld || j.Labels != 4 || string(j.Data) != "norm" || len(j.Warnings) != 1 || !j.Updated.Equal(later) {
			t.Fatalf("validated job: %+v, %v", j, err)
		}
		if _, err := s.Validated("ok", 1, nil, nil, "late", later); err == nil {
			t.Fatal("a held job was validated again")
		}
		if _, err := s.Validated("bad", 0, nil, nil, "record 3: bad", later); err != nil {
			t.Fatal(err)
		}
		if j, err := s.Get("bad"); err != nil || j.State != StateRejected || j.Error != "record 3: bad" || len(j.Data) != 0 {
			t.Fatalf("rejected job: %+v, %v", j, err)
		}
		if _, err := s.Validated("ghost", 0, nil, nil, "", later); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown job: %v", err)
		}
	})
}
