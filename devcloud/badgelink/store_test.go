package badgelink_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"labelstation/devcloud/badgelink"
	"labelstation/devcloud/jobs"
	"labelstation/devcloud/records"
	"labelstation/internal/pgtest"
)

// The registry on each store devcloud runs on: memory, bbolt and PostgreSQL. open returns a
// fresh handle on the same store each call, as a restart or a second replica would.
type storeKind struct {
	name string
	open func(t *testing.T) func() records.Store
}

func storeKinds() []storeKind {
	return []storeKind{
		{"memory", func(t *testing.T) func() records.Store {
			m := records.NewMem()
			return func() records.Store { return m }
		}},
		{"bolt", func(t *testing.T) func() records.Store {
			path := filepath.Join(t.TempDir(), "devcloud.db")
			var cur *jobs.BoltStore
			t.Cleanup(func() {
				if cur != nil {
					cur.Close()
				}
			})
			return func() records.Store {
				if cur != nil {
					cur.Close() // bbolt is single-process: a restart closes before reopening
				}
				s, err := jobs.OpenBolt(path)
				if err != nil {
					t.Fatal(err)
				}
				cur = s
				return s
			}
		}},
		{"postgres", func(t *testing.T) func() records.Store {
			url := pgtest.Database(t)
			return func() records.Store {
				s, err := jobs.OpenPostgres(context.Background(), url)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
		}},
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// A code, a link and a wrong-code count outlive the registry: a new one on the same store
// (devcloud restarted) confirms the code issued before and knows the badge linked before.
func TestRegistryStateSurvivesRestart(t *testing.T) {
	for _, k := range storeKinds() {
		t.Run(k.name, func(t *testing.T) {
			open := k.open(t)
			c := &clock{t: time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)}
			r := badgelink.New(badgelink.Options{Records: open(), Now: c.now})
			linked, err := r.Request("st-1", "badge-a")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.Confirm(linked.Code, "alice"); err != nil {
				t.Fatal(err)
			}
			waiting, err := r.Request("st-1", "badge-b")
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < badgelink.DefaultMaxWrong; i++ {
				if _, err := r.Look("BBBB-BBBB", "mallory"); !errors.Is(err, badgelink.ErrUnknownCode) {
					t.Fatalf("wrong code %d: %v", i, err)
				}
			}

			r = badgelink.New(badgelink.Options{Records: open(), Now: c.now})
			if u, ok, err := r.Owner("badge-a"); err != nil || !ok || u != "alice" {
				t.Fatalf("after restart, badge-a belongs to %q %v %v, want alice", u, ok, err)
			}
			if _, err := r.Confirm(linked.Code, "alice"); !errors.Is(err, badgelink.ErrUsed) {
				t.Fatalf("used code after restart: %v, want ErrUsed", err)
			}
			if p, err := r.Confirm(waiting.Code, "bob"); err != nil || p.Badge != "badge-b" {
				t.Fatalf("code issued before the restart: %+v %v", p, err)
			}
			if _, err := r.Look("BBBB-BBBB", "mallory"); !errors.Is(err, badgelink.ErrTooManyWrong) {
				t.Fatalf("wrong-code count after restart: %v, want ErrTooManyWrong", err)
			}
		})
	}
}

// Two replicas on one store: a code issued by one is confirmed through the other, and both
// see the link.
func TestReplicasShareCodesAndLinks(t *testing.T) {
	for _, k := range storeKinds() {
		if k.name == "bolt" {
			continue // one process at a time
		}
		t.Run(k.name, func(t *testing.T) {
			open := k.open(t)
			c := &clock{t: time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)}
			var told []string
			a := badgelink.New(badgelink.Options{Records: open(), Now: c.now})
			b := badgelink.New(badgelink.Options{Records: open(), Now: c.now,
				OnLinked: func(p badgelink.Pending, user string) { told = append(told, p.Station+" "+user) }})
			p, err := a.Request("st-1", "badge-a")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.Look(p.Code, "alice"); err != nil {
				t.Fatalf("replica b does not know a's code: %v", err)
			}
			if _, err := b.Confirm(p.Code, "alice"); err != nil {
				t.Fatal(err)
			}
			for name, r := range map[string]*badgelink.Registry{"a": a, "b": b} {
				if u, ok, err := r.Owner("badge-a"); err != nil || !ok || u != "alice" {
					t.Fatalf("replica %s: owner %q %v %v", name, u, ok, err)
				}
			}
			if _, err := a.Request("st-2", "badge-a"); !errors.Is(err, badgelink.ErrLinked) {
				t.Fatalf("replica a issues a code for b's linked badge: %v", err)
			}
			if len(told) != 1 || told[0] != "st-1 alice" {
				t.Fatalf("OnLinked: %q", told)
			}
		})
	}
}

// Many people confirm codes for one badge at once through several registries on one store,
// some of them sharing a code: exactly one confirmation wins, every other is refused as
// linked or used, and the badge belongs to the winner.
func TestConcurrentConfirmationsOneWinner(t *testing.T) {
	for _, k := range storeKinds() {
		t.Run(k.name, func(t *testing.T) {
			open := k.open(t)
			st := open()
			c := &clock{t: time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)}
			regs := []*badgelink.Registry{
				badgelink.New(badgelink.Options{Records: st, Now: c.now}),
				badgelink.New(badgelink.Options{Records: st, Now: c.now}),
			}
			if k.name == "postgres" {
				regs[1] = badgelink.New(badgelink.Options{Records: open(), Now: c.now}) // its own pool
			}
			const people = 8
			codes := make([]string, people/2)
			for i := range codes {
				p, err := regs[i%2].Request(fmt.Sprintf("st-%d", i), "badge-x")
				if err != nil {
					t.Fatal(err)
				}
				codes[i] = p.Code
			}
			var wg sync.WaitGroup
			errs := make([]error, people)
			start := make(chan struct{})
			for i := 0; i < people; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, errs[i] = regs[i%2].Confirm(codes[i%len(codes)], fmt.Sprintf("user-%d", i))
				}()
			}
			close(start)
			wg.Wait()
			winner := -1
			for i, err := range errs {
				switch {
				case err == nil && winner >= 0:
					t.Fatalf("user-%d and user-%d both linked the badge", winner, i)
				case err == nil:
					winner = i
				case !errors.Is(err, badgelink.ErrLinked) && !errors.Is(err, badgelink.ErrUsed):
					t.Fatalf("user-%d: %v, want linked or used", i, err)
				}
			}
			if winner < 0 {
				t.Fatalf("nobody linked the badge: %v", errs)
			}
			for _, r := range regs {
				if u, ok, err := r.Owner("badge-x"); err != nil || !ok || u != fmt.Sprintf("user-%d", winner) {
					t.Fatalf("owner %q %v %v, want user-%d", u, ok, err, winner)
				}
			}
		})
	}
}
