package jobs

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"labelstation/internal/supervise"
)

// hookCall is one request a test receiver got.
type hookCall struct {
	header http.Header
	body   []byte
}

// hookReceiver answers each call with the next of statuses (200 once they run out) and
// reports the calls on its channel.
type hookReceiver struct {
	srv   *httptest.Server
	calls chan hookCall
	mu    sync.Mutex
	codes []int
}

func newHookReceiver(t *testing.T, statuses ...int) *hookReceiver {
	h := &hookReceiver{calls: make(chan hookCall, 100), codes: statuses}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		code := http.StatusOK
		if len(h.codes) > 0 {
			code, h.codes = h.codes[0], h.codes[1:]
		}
		h.mu.Unlock()
		w.WriteHeader(code)
		h.calls <- hookCall{r.Header.Clone(), b}
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// got returns the calls received so far without waiting.
func (h *hookReceiver) got() []hookCall {
	var out []hookCall
	for {
		select {
		case c := <-h.calls:
			out = append(out, c)
		default:
			return out
		}
	}
}

// wait returns the next call, failing the test after a deadline.
func (h *hookReceiver) wait(t *testing.T) hookCall {
	t.Helper()
	select {
	case c := <-h.calls:
		return c
	case <-time.After(20 * time.Second):
		t.Fatal("no callback arrived")
		return hookCall{}
	}
}

// checkCall verifies a call as a receiver would and returns its body.
func checkCall(t *testing.T, c hookCall, secret, event string, now time.Time) CallbackBody {
	t.Helper()
	if err := VerifyCallback(secret, c.header.Get(HeaderSignature), c.body, now, DefaultCallbackTolerance); err != nil {
		t.Fatalf("signature: %v (%s)", err, c.header.Get(HeaderSignature))
	}
	var b CallbackBody
	if err := json.Unmarshal(c.body, &b); err != nil {
		t.Fatal(err)
	}
	if b.Event != event || c.header.Get(HeaderEvent) != event || c.header.Get(HeaderDelivery) != b.ID || c.header.Get("Content-Type") != "application/json" {
		t.Fatalf("call %s %v, want event %s", c.body, c.header, event)
	}
	return b
}

// fixedJitter makes the backoff exact: each delay is the current step.
func fixedJitter(n int64) int64 { return n / 2 }

// A cancelled job's callback is signed with the app's secret and retried with the backoff
// until the receiver answers 2xx; then it is not sent again.
func TestCallbackRetriedWithBackoff(t *testing.T) {
	hook := newHookReceiver(t, http.StatusServiceUnavailable, http.StatusInternalServerError)
	e := newAPIEnv(t, NewMemStore(), APIOptions{CallbackBackoff: supervise.Backoff{Min: 10 * time.Second, Max: time.Minute, Rand: fixedJitter}}, SubmitOptions{})
	j := e.submit(t, "alice:erp", url.Values{"callback": {hook.srv.URL + "/labels?x=1"}})
	if j.Callback != hook.srv.URL+"/labels?x=1" {
		t.Fatalf("job callback %q", j.Callback)
	}
	if code, b, _ := e.call(t, http.MethodDelete, "/v1/jobs/"+j.ID, "alice:erp", "", nil); code != http.StatusOK {
		t.Fatalf("cancel: %d %s", code, b)
	}
	ctx := context.Background()
	deliver := func() []hookCall {
		t.Helper()
		if err := e.svc.DeliverCallbacks(ctx); err != nil {
			t.Fatal(err)
		}
		return hook.got()
	}
	calls := deliver()
	if len(calls) != 1 {
		t.Fatalf("first attempt: %d calls", len(calls))
	}
	first := checkCall(t, calls[0], "erp-secret", EventCancelled, e.clock.Now())
	if first.Job.ID != j.ID || first.Job.State != StateCancelled || first.ID != "cb_"+j.ID+"_cancelled" {
		t.Fatalf("body %+v", first)
	}
	// 10 s after the first failure, then 20 s after the second.
	for _, step := range []struct {
		advance time.Duration
		want    int
	}{{9 * time.Second, 0}, {time.Second, 1}, {19 * time.Second, 0}, {time.Second, 1}, {time.Hour, 0}} {
		e.clock.Advance(step.advance)
		calls := deliver()
		if len(calls) != step.want {
			t.Fatalf("after %v more: %d calls, want %d", step.advance, len(calls), step.want)
		}
		for _, c := range calls {
			if b := checkCall(t, c, "erp-secret", EventCancelled, e.clock.Now()); b.ID != first.ID || string(c.body) != string(calls[0].body) {
				t.Fatalf("a retry changed the call: %s", c.body)
			}
		}
	}
	// Another app's secret does not verify it, nor does a tampered body or a replay.
	if err := VerifyCallback("shop-secret", calls[0].header.Get(HeaderSignature), calls[0].body, e.clock.Now(), time.Minute); err == nil {
		t.Fatal("verified with another app's secret")
	}
	sig := calls[0].header.Get(HeaderSignature)
	if err := VerifyCallback("erp-secret", sig, append([]byte(" "), calls[0].body...), t0, time.Hour); err == nil {
		t.Fatal("a changed body verified")
	}
	if err := VerifyCallback("erp-secret", sig, calls[0].body, t0.Add(10*time.Minute), 5*time.Minute); err == nil {
		t.Fatal("a call replayed 10 minutes later verified")
	}
}

// A call never answered 2xx is given up after CallbackMaxAge.
func TestCallbackGivenUp(t *testing.T) {
	fail := make([]int, 1000)
	for i := range fail {
		fail[i] = http.StatusInternalServerError
	}
	hook := newHookReceiver(t, fail...)
	e := newAPIEnv(t, NewMemStore(), APIOptions{CallbackMaxAge: time.Hour, CallbackBackoff: supervise.Backoff{Min: time.Minute, Max: time.Minute}}, SubmitOptions{})
	j := e.submit(t, "alice:erp", url.Values{"callback": {hook.srv.URL}})
	e.call(t, http.MethodDelete, "/v1/jobs/"+j.ID, "alice:erp", "", nil)
	attempts := 0
	for range 100 {
		if err := e.svc.DeliverCallbacks(context.Background()); err != nil {
			t.Fatal(err)
		}
		attempts += len(hook.got())
		e.clock.Advance(2 * time.Minute)
	}
	// Attempts at 0, 2, 4, … 58 minutes; at 60 the last one fails and the call is dropped.
	if attempts != 31 {
		t.Fatalf("%d attempts in 200 minutes, want 31 within the hour's max age", attempts)
	}
	if left, _ := e.store.ClaimCallbacks(e.clock.Now().Add(time.Hour), time.Minute, 10); len(left) != 0 {
		t.Fatalf("given-up call still queued: %+v", left)
	}
}

// A call queued before a restart of devcloud is delivered by the next process on the same
// durable store.
func TestCallbackSurvivesRestart(t *testing.T) {
	forEachStore(t, func(t *testing.T, k storeKind) {
		if !k.durable {
			t.Skip("memory store: a restart starts empty by design")
		}
		hook := newHookReceiver(t, http.StatusBadGateway)
		store, reopen := k.open(t)
		e := newAPIEnv(t, store, APIOptions{}, SubmitOptions{})
		j := e.submit(t, "alice:erp", url.Values{"callback": {hook.srv.URL}})
		if _, err := store.Release("alice", "st-1", []string{j.ID}, t0); err != nil {
			t.Fatal(err)
		}
		if _, _, err := store.ApplyStatus("st-1", j.ID, StateFailed, 0, 1, "printer: out of labels", t0); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.DeliverCallbacks(context.Background()); err != nil || len(hook.got()) != 1 {
			t.Fatalf("first attempt: %v", err)
		}
		e.svc.Close()
		e.srv.Close()

		e2 := newAPIEnv(t, reopen(store), APIOptions{}, SubmitOptions{})
		e2.clock.Advance(time.Minute)
		e2.svc.StartBackground()
		body := checkCall(t, hook.wait(t), "erp-secret", EventFailed, e2.clock.Now())
		if body.Job.ID != j.ID || body.Job.Error != "printer: out of labels" || body.Job.Station != "st-1" {
			t.Fatalf("delivered after restart: %+v", body)
		}
	})
}

// A callback URL must be http(s) and the token must name a registered app to sign with; a
// plain JavaScript name in a form still asks for JSONP.
func TestCallbackRefusedInput(t *testing.T) {
	e := newAPIEnv(t, NewMemStore(), APIOptions{}, SubmitOptions{})
	for _, c := range []struct{ token, cb, want string }{
		{"alice:erp", "ftp://erp.example/x", "callback: \"ftp://erp.example/x\" is not an absolute http(s) URL"},
		{"alice:erp", "alert(1);x", "callback: \"alert(1);x\" is not an absolute"},
		{"alice:", "https://erp.example/x", "callback: the access token names no application"},
		{"alice:ghost", "https://erp.example/x", "callback: application \"ghost\" is not registered"},
	} {
		v := url.Values{"title": {"t"}, "format": {"name"}, "data": {"name\nAda\n"}, "callback": {c.cb}}
		code, b, _ := e.call(t, http.MethodPost, "/v1/jobs", c.token, "application/x-www-form-urlencoded", []byte(v.Encode()))
		if ae := decodeInto[apiError](t, b); code != http.StatusBadRequest || len(ae.Message) < len(c.want) || ae.Message[:len(c.want)] != c.want {
			t.Errorf("%s %q: %d %s", c.token, c.cb, code, b)
		}
	}
	v := url.Values{"title": {"t"}, "format": {"name"}, "data": {"name\nAda\n"}, "callback": {"done"}}
	code, b, h := e.call(t, http.MethodPost, "/v1/jobs", "alice:", "application/x-www-form-urlencoded", []byte(v.Encode()))
	if code != http.StatusCreated || string(b[:6]) != "done({" || h.Get("Content-Type") != "application/javascript" {
		t.Fatalf("JSONP submission: %d %s", code, b)
	}
	body := `{"title":"t","format":"name","data":[{"name":"Ada"}],"callback":"https://erp.example/hook"}`
	code, b, _ = e.call(t, http.MethodPost, "/v1/jobs", "alice:erp", "application/json", []byte(body))
	if code != http.StatusCreated || decodeInto[Job](t, b).Callback != "https://erp.example/hook" {
		t.Fatalf("JSON submission with a callback: %d %s", code, b)
	}
}
