package jobs

import (
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"labelstation/protocol"
)

// Every response carries the rate limit headers; past the limit a token gets 429 with
// Retry-After until the window turns, while other tokens go on.
func TestRateLimit(t *testing.T) {
	e := newAPIEnv(t, NewMemStore(), APIOptions{RateLimit: 3, RateWindow: time.Minute}, SubmitOptions{})
	e.clock.Advance(15 * time.Second) // 45 s left in the window
	check := func(h http.Header, remaining int) {
		t.Helper()
		if h.Get("X-RateLimit-Limit") != "3" || h.Get("X-RateLimit-Remaining") != strconv.Itoa(remaining) || h.Get("X-RateLimit-Reset") != "45" {
			t.Fatalf("headers %v, want limit 3, remaining %d, reset 45", h, remaining)
		}
	}
	_, _, h := e.call(t, http.MethodGet, "/v1/jobs", "alice:erp", "", nil)
	check(h, 2)
	code, _, h := e.call(t, http.MethodGet, "/v1/jobs/nope", "alice:erp", "", nil) // errors count and carry them too
	check(h, 1)
	if code != http.StatusNotFound {
		t.Fatal(code)
	}
	_, _, h = e.call(t, http.MethodGet, "/v1/nothing-here", "alice:erp", "", nil)
	check(h, 0)
	code, b, h := e.call(t, http.MethodGet, "/v1/jobs", "alice:erp", "", nil)
	check(h, 0)
	if ae := decodeInto[apiError](t, b); code != http.StatusTooManyRequests || h.Get("Retry-After") != "45" || ae.Code != "rate_limited" || ae.ID == "" {
		t.Fatalf("over the limit: %d %v %s", code, h, b)
	}
	if code, _, h := e.call(t, http.MethodGet, "/v1/jobs", "bob:erp", "", nil); code != http.StatusOK || h.Get("X-RateLimit-Remaining") != "2" {
		t.Fatalf("another token: %d %v", code, h)
	}
	// An unauthenticated caller is limited by address, with the same headers.
	if code, _, h := e.call(t, http.MethodGet, "/v1/jobs", "", "", nil); code != http.StatusUnauthorized || h.Get("X-RateLimit-Remaining") != "2" {
		t.Fatalf("no token: %d %v", code, h)
	}
	e.clock.Advance(45 * time.Second)
	code, _, h = e.call(t, http.MethodGet, "/v1/jobs", "alice:erp", "", nil)
	if code != http.StatusOK || h.Get("X-RateLimit-Remaining") != "2" || h.Get("X-RateLimit-Reset") != "60" {
		t.Fatalf("next window: %d %v", code, h)
	}
}

// Held jobs expire after the service's retention, or their app's own; the sweeper (its loop
// on an injected clock) marks them and the owner's callback hears "expired".
func TestRetentionSweeperAndCallback(t *testing.T) {
	forEachStore(t, func(t *testing.T, k storeKind) {
		store, _ := k.open(t)
		hook := newHookReceiver(t)
		e := newAPIEnv(t, store, APIOptions{Retention: 4 * time.Hour, SweepEvery: 10 * time.Millisecond, CallbackPoll: 10 * time.Millisecond}, SubmitOptions{})
		if err := e.apps.SetRetention("shop", 30*time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := e.apps.SetRetention("shop", -time.Minute); err == nil {
			t.Fatal("a negative retention was taken")
		}
		long := e.submit(t, "alice:erp", nil)
		short := e.submit(t, "alice:shop", url.Values{"callback": {hook.srv.URL}})
		if !long.Expires.Equal(t0.Add(4*time.Hour)) || !short.Expires.Equal(t0.Add(30*time.Minute)) {
			t.Fatalf("expiries %v and %v", long.Expires, short.Expires)
		}
		e.svc.StartBackground()
		e.clock.Advance(30 * time.Minute)
		body := checkCall(t, hook.wait(t), "shop-secret", EventExpired, e.clock.Now())
		if body.Job.ID != short.ID || body.Job.State != StateExpired {
			t.Fatalf("expired call: %+v", body)
		}
		if j, _ := store.Get(long.ID); j.State != StateHeld {
			t.Fatalf("the 4 h job after 30 min: %+v", j)
		}
		_, b, _ := e.call(t, http.MethodGet, "/v1/jobs/"+short.ID, "alice:shop", "", nil)
		if j := decodeInto[Job](t, b); j.State != StateExpired || !j.Expires.Equal(short.Expires) {
			t.Fatalf("status of the expired job: %s", b)
		}
		if got, _ := store.Release("alice", "st-1", []string{short.ID, long.ID}, e.clock.Now()); ids(got) != long.ID {
			t.Fatalf("released %s", ids(got))
		}
	})
}

// A badge lookup lists held jobs with their submission time and expiry, and leaves out one
// past its expiry that the sweeper has not reached; a released job carries its expiry.
func TestLookupShowsExpiry(t *testing.T) {
	url := startBroker(t)
	clock := &testClock{t: t0}
	store := NewMemStore()
	exp := t0.Add(time.Hour)
	mustAdd(t, store,
		Job{ID: "j1", User: "alice", Title: "one", Labels: 1, State: StateHeld, Created: t0, Updated: t0, Expires: exp},
		Job{ID: "j2", User: "alice", Title: "two", Labels: 1, State: StateHeld, Created: t0.Add(time.Minute), Updated: t0, Expires: exp.Add(time.Minute)})
	startServiceOn(t, url, Options{Store: store, Now: clock.Now, API: APIOptions{SweepEvery: time.Hour}})
	st := newTestStation(t, url, "st-1")
	clock.Advance(time.Hour) // j1's time is up; the sweeper runs only hourly
	st.send(protocol.LeafLookup, protocol.LookupRequest{V: protocol.Version, Req: "l1", Badge: aliceBadge()})
	var look protocol.LookupReply
	st.expect(protocol.LeafLookupReply, &look)
	if look.Error != nil || len(look.Jobs) != 1 || look.Jobs[0].ID != "j2" || !look.Jobs[0].Submitted.Equal(t0.Add(time.Minute)) || !look.Jobs[0].Expires.Equal(exp.Add(time.Minute)) {
		t.Fatalf("lookup: %+v", look)
	}
	st.send(protocol.LeafRelease, protocol.ReleaseRequest{V: protocol.Version, Req: "r1", Badge: aliceBadge(), Jobs: []string{"j1", "j2"}})
	var rep protocol.ReleaseReply
	st.expect(protocol.LeafReleaseReply, &rep)
	var job protocol.Job
	st.expect(protocol.LeafJob, &job)
	if len(rep.Released) != 1 || rep.Released[0] != "j2" || job.ID != "j2" || !job.Expires.Equal(exp.Add(time.Minute)) {
		t.Fatalf("release: %+v, job %+v", rep, job)
	}
}
