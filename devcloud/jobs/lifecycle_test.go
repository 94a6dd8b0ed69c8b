package jobs

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// A held job past its expiry is never released, even before the sweeper marked it; Expire
// marks exactly the held jobs whose time is up, and queues their "expired" calls.
func TestStoreExpiry(t *testing.T) {
	forEachStore(t, func(t *testing.T, k storeKind) {
		s, _ := k.open(t)
		exp := t0.Add(8 * time.Hour)
		mustAdd(t, s,
			Job{ID: "old", User: "alice", State: StateHeld, Created: t0, Updated: t0, Expires: exp, App: "erp", Callback: "http://erp.example/hook"},
			Job{ID: "young", User: "alice", State: StateHeld, Created: t0, Updated: t0, Expires: exp.Add(time.Hour)},
			Job{ID: "forever", User: "alice", State: StateHeld, Created: t0, Updated: t0},
			Job{ID: "gone", User: "alice", State: StateHeld, Created: t0, Updated: t0, Expires: exp})
		if _, err := s.Release("alice", "st-1", []string{"gone"}, exp.Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		if j, _ := s.Get("old"); !j.Expires.Equal(exp) || j.App != "erp" || j.Callback != "http://erp.example/hook" {
			t.Fatalf("stored job lost its expiry, app or callback: %+v", j)
		}
		got, err := s.Release("alice", "st-1", []string{"old", "young", "forever"}, exp)
		if err != nil || ids(got) != "young,forever" {
			t.Fatalf("release at the expiry: %s, %v; want young,forever (old has expired)", ids(got), err)
		}
		// A repeat of a release made before the expiry still reaches the station.
		if got, err := s.Release("alice", "st-1", []string{"gone"}, exp.Add(time.Hour)); err != nil || ids(got) != "gone" {
			t.Fatalf("repeat of an earlier release: %s, %v", ids(got), err)
		}
		if cbs, _ := s.ClaimCallbacks(exp, time.Minute, 10); len(cbs) != 0 {
			t.Fatalf("callbacks before the sweep: %+v", cbs)
		}
		swept, err := s.Expire(exp)
		if err != nil || ids(swept) != "old" || swept[0].State != StateExpired {
			t.Fatalf("Expire: %+v, %v", swept, err)
		}
		if again, err := s.Expire(exp.Add(time.Minute)); err != nil || len(again) != 0 {
			t.Fatalf("second Expire: %+v, %v", again, err)
		}
		if j, _ := s.Get("old"); j.State != StateExpired || !j.Updated.Equal(exp) {
			t.Fatalf("old after the sweep: %+v", j)
		}
		if got, _ := s.Release("alice", "st-2", []string{"old"}, exp); len(got) != 0 {
			t.Fatalf("an expired job was released: %+v", got)
		}
		cbs, err := s.ClaimCallbacks(exp, time.Minute, 10)
		if err != nil || len(cbs) != 1 || cbs[0].ID != "cb_old_expired" || cbs[0].Event != EventExpired || cbs[0].App != "erp" || cbs[0].URL != "http://erp.example/hook" {
			t.Fatalf("queued callbacks: %+v, %v", cbs, err)
		}
		var body CallbackBody
		if err := json.Unmarshal(cbs[0].Body, &body); err != nil || body.Event != "expired" || body.Job.ID != "old" || body.Job.State != StateExpired || body.ID != cbs[0].ID {
			t.Fatalf("callback body %s: %v", cbs[0].Body, err)
		}
	})
}

// Cancel withdraws held and validating jobs only, and queues the "cancelled" call with it.
func TestStoreCancel(t *testing.T) {
	forEachStore(t, func(t *testing.T, k storeKind) {
		s, _ := k.open(t)
		hook := "http://erp.example/hook"
		mustAdd(t, s,
			Job{ID: "held", User: "alice", State: StateHeld, Created: t0, Updated: t0, App: "erp", Callback: hook},
			Job{ID: "val", User: "alice", State: StateValidating, Created: t0, Updated: t0},
			Job{ID: "out", User: "alice", State: StateHeld, Created: t0, Updated: t0, Callback: hook})
		later := t0.Add(time.Minute)
		j, err := s.Cancel("held", later)
		if err != nil || j.State != StateCancelled || !j.Updated.Equal(later) {
			t.Fatalf("cancel held: %+v, %v", j, err)
		}
		if j, err := s.Cancel("val", later); err != nil || j.State != StateCancelled {
			t.Fatalf("cancel validating: %+v, %v", j, err)
		}
		if _, err := s.Cancel("held", later); !errors.Is(err, ErrNotCancellable) {
			t.Fatalf("second cancel: %v", err)
		}
		if got, _ := s.Release("alice", "st-1", []string{"held", "val", "out"}, later); ids(got) != "out" {
			t.Fatalf("released %s; a cancelled job was released", ids(got))
		}
		if _, err := s.Cancel("out", later); !errors.Is(err, ErrNotCancellable) {
			t.Fatalf("cancel of a released job: %v", err)
		}
		if j, _ := s.Get("out"); j.State != StateReleased {
			t.Fatalf("refused cancel changed the job: %+v", j)
		}
		if _, err := s.Cancel("ghost", later); !errors.Is(err, ErrNotFound) {
			t.Fatalf("cancel unknown: %v", err)
		}
		if _, err := s.Validated("val", 1, nil, nil, "", later); err == nil {
			t.Fatal("a cancelled job was validated into held")
		}
		cbs, err := s.ClaimCallbacks(later, time.Minute, 10)
		if err != nil || len(cbs) != 1 || cbs[0].ID != "cb_held_cancelled" {
			t.Fatalf("callbacks: %+v, %v", cbs, err)
		}
	})
}

// A status into printed or failed queues the job's call once, in the status transaction;
// claiming leases a call, a retry moves it, a delete ends it, and queued calls survive a
// reopen of a durable store.
func TestStoreCallbackQueue(t *testing.T) {
	forEachStore(t, func(t *testing.T, k storeKind) {
		s, reopen := k.open(t)
		hook := "http://erp.example/hook"
		mustAdd(t, s,
			Job{ID: "p", User: "alice", Labels: 2, State: StateHeld, Created: t0, Updated: t0, App: "erp", Callback: hook},
			Job{ID: "f", User: "alice", Labels: 2, State: StateHeld, Created: t0, Updated: t0, App: "erp", Callback: hook},
			Job{ID: "quiet", User: "alice", Labels: 1, State: StateHeld, Created: t0, Updated: t0})
		if _, err := s.Release("alice", "st-1", []string{"p", "f", "quiet"}, t0); err != nil {
			t.Fatal(err)
		}
		at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
		steps := []struct {
			id, state string
			seq       int
		}{{"p", StatePrinting, 1}, {"p", StatePrinted, 2}, {"p", StatePrinted, 2}, {"f", StateFailed, 1}, {"quiet", StatePrinted, 1}}
		for i, st := range steps {
			if _, _, err := s.ApplyStatus("st-1", st.id, st.state, 1, st.seq, "", at(i+1)); err != nil {
				t.Fatal(err)
			}
		}
		if k.durable {
			s = reopen(s)
		}
		cbs, err := s.ClaimCallbacks(at(10), time.Minute, 10)
		if err != nil || len(cbs) != 2 || cbs[0].ID != "cb_p_printed" || cbs[1].ID != "cb_f_failed" {
			t.Fatalf("claimed %+v, %v; want p printed then f failed", cbs, err)
		}
		var body CallbackBody
		if err := json.Unmarshal(cbs[0].Body, &body); err != nil || body.Job.State != StatePrinted || body.Job.Printed != 1 || body.Job.Station != "st-1" {
			t.Fatalf("body %s: %v", cbs[0].Body, err)
		}
		// Leased: another sender does not get them until the lease ends.
		if again, _ := s.ClaimCallbacks(at(10), time.Minute, 10); len(again) != 0 {
			t.Fatalf("claimed twice within the lease: %+v", again)
		}
		if err := s.RetryCallback("cb_f_failed", 3, at(20), "503"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteCallback("cb_p_printed"); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.ClaimCallbacks(at(19), time.Minute, 10); len(got) != 0 {
			t.Fatalf("claimed before its retry time: %+v", got)
		}
		got, err := s.ClaimCallbacks(at(20), time.Minute, 10)
		if err != nil || len(got) != 1 || got[0].ID != "cb_f_failed" || got[0].Attempts != 3 || got[0].LastError != "503" {
			t.Fatalf("after retry: %+v, %v", got, err)
		}
		if err := s.RetryCallback("nope", 1, at(1), ""); !errors.Is(err, ErrNotFound) {
			t.Fatalf("retry of unknown call: %v", err)
		}
	})
}
