package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"labelstation/devcloud/seed"
	"labelstation/label"
)

// testClock is a clock tests move by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// apiEnv is a job service over real HTTP. Tokens are "<user>:<app>" ("alice:" names no app);
// apps erp and shop are registered, with secrets "erp-secret" and "shop-secret".
type apiEnv struct {
	svc   *Service
	srv   *httptest.Server
	clock *testClock
	apps  *AppDirectory
	store Store
}

func newAPIEnv(t *testing.T, store Store, api APIOptions, submit SubmitOptions) *apiEnv {
	t.Helper()
	sd := &seed.Seed{Layouts: map[string]seed.Layout{}}
	l, err := label.ParseLayout([]byte(nameLayout))
	if err != nil {
		t.Fatal(err)
	}
	sd.Layouts[l.ID] = seed.Layout{Parsed: l, Raw: json.RawMessage(nameLayout)}
	e := &apiEnv{clock: &testClock{t: t0}, store: store,
		apps: NewAppDirectory(App{ID: "erp", Secret: "erp-secret"}, App{ID: "shop", Secret: "shop-secret"})}
	e.svc, err = New(Options{
		Seed: sd, BadgeKey: bytes.Repeat([]byte{7}, 16), Submit: submit, Sealer: sealerFor(t), Store: store,
		API: api, Apps: e.apps, Now: e.clock.Now,
		VerifyCaller: func(_ context.Context, tok string) (Caller, error) {
			user, app, ok := strings.Cut(tok, ":")
			if !ok || user == "" {
				return Caller{}, fmt.Errorf("unknown token")
			}
			return Caller{User: user, App: app}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.svc.Handler())
	t.Cleanup(e.srv.Close)
	t.Cleanup(e.svc.Close)
	return e
}

// call sends one request with token (none when "") and returns status, body and headers.
func (e *apiEnv) call(t *testing.T, method, path, token, ct string, body []byte) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header
}

// submit posts a one-record job as token and returns it.
func (e *apiEnv) submit(t *testing.T, token string, extra url.Values) Job {
	t.Helper()
	v := url.Values{"title": {"t"}, "format": {"name"}, "data": {"name\nAda\n"}}
	for k, vs := range extra {
		v[k] = vs
	}
	code, b, _ := e.call(t, http.MethodPost, "/v1/jobs", token, "application/x-www-form-urlencoded", []byte(v.Encode()))
	var j Job
	if code != http.StatusCreated || json.Unmarshal(b, &j) != nil {
		t.Fatalf("submit: %d %s", code, b)
	}
	return j
}

func decodeInto[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return v
}

// Status, list and cancel over HTTP against every store: owners see their jobs with state,
// counts, station, timestamps and expiry; others get 404; another app of the owner may not
// cancel (403); a job a station has is 409; DELETE and POST …/cancel do the same.
func TestJobStatusListCancel(t *testing.T) {
	forEachStore(t, func(t *testing.T, k storeKind) {
		store, _ := k.open(t)
		e := newAPIEnv(t, store, APIOptions{}, SubmitOptions{})
		a := e.submit(t, "alice:erp", nil)
		if !a.Expires.Equal(t0.Add(DefaultRetention)) || a.App != "erp" || !a.Created.Equal(t0) {
			t.Fatalf("submitted job %+v: want app erp, expiry created+8h", a)
		}

		code, b, _ := e.call(t, http.MethodGet, "/v1/jobs/"+a.ID, "alice:shop", "", nil)
		got := decodeInto[Job](t, b)
		if code != http.StatusOK || got.State != StateHeld || got.Labels != 1 || got.Printed != 0 || !got.Expires.Equal(a.Expires) || !got.Updated.Equal(t0) {
			t.Fatalf("GET own job: %d %s", code, b)
		}
		if code, b, _ := e.call(t, http.MethodGet, "/v1/jobs/"+a.ID, "bob:erp", "", nil); code != http.StatusNotFound || decodeInto[apiError](t, b).Code != "not_found" {
			t.Fatalf("bob reads alice's job: %d %s", code, b)
		}
		if code, _, _ := e.call(t, http.MethodGet, "/v1/jobs/job_nope", "alice:erp", "", nil); code != http.StatusNotFound {
			t.Fatalf("unknown job: %d", code)
		}
		if code, b, _ := e.call(t, http.MethodGet, "/v1/jobs/"+a.ID, "", "", nil); code != http.StatusUnauthorized || decodeInto[apiError](t, b).ID == "" {
			t.Fatalf("no token: %d %s", code, b)
		}

		// The station side moves a job on: printing, then its status shows it.
		out := e.submit(t, "alice:erp", nil)
		if _, err := store.Release("alice", "st-1", []string{out.ID}, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		if _, _, err := store.ApplyStatus("st-1", out.ID, StatePrinting, 0, 1, "", e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		_, b, _ = e.call(t, http.MethodGet, "/v1/jobs/"+out.ID, "alice:erp", "", nil)
		if got := decodeInto[Job](t, b); got.State != StatePrinting || got.Station != "st-1" {
			t.Fatalf("printing job: %s", b)
		}

		// Cancel: others 404, another app 403, a printing job 409, the owner app 200.
		if code, _, _ := e.call(t, http.MethodDelete, "/v1/jobs/"+a.ID, "bob:erp", "", nil); code != http.StatusNotFound {
			t.Fatalf("bob cancels alice's job: %d", code)
		}
		code, b, _ = e.call(t, http.MethodDelete, "/v1/jobs/"+a.ID, "alice:shop", "", nil)
		if ae := decodeInto[apiError](t, b); code != http.StatusForbidden || ae.Code != "forbidden" || !strings.Contains(ae.Message, `"erp"`) {
			t.Fatalf("another app cancels: %d %s", code, b)
		}
		code, b, _ = e.call(t, http.MethodDelete, "/v1/jobs/"+out.ID, "alice:erp", "", nil)
		if ae := decodeInto[apiError](t, b); code != http.StatusConflict || ae.Code != "not_cancellable" || !strings.Contains(ae.Message, "printing at station") {
			t.Fatalf("cancel of a printing job: %d %s", code, b)
		}
		code, b, _ = e.call(t, http.MethodDelete, "/v1/jobs/"+a.ID, "alice:erp", "", nil)
		if code != http.StatusOK || decodeInto[Job](t, b).State != StateCancelled {
			t.Fatalf("cancel: %d %s", code, b)
		}
		code, b, _ = e.call(t, http.MethodPost, "/v1/jobs/"+a.ID+"/cancel", "alice:erp", "", nil)
		if ae := decodeInto[apiError](t, b); code != http.StatusConflict || !strings.Contains(ae.Message, "already cancelled") {
			t.Fatalf("second cancel: %d %s", code, b)
		}
		c := e.submit(t, "alice:erp", nil)
		if code, b, _ := e.call(t, http.MethodPost, "/v1/jobs/"+c.ID+"/cancel", "alice:erp", "", nil); code != http.StatusOK || decodeInto[Job](t, b).State != StateCancelled {
			t.Fatalf("POST cancel: %d %s", code, b)
		}
		if code, b, _ := e.call(t, http.MethodPut, "/v1/jobs/"+c.ID, "alice:erp", "", nil); code != http.StatusMethodNotAllowed || decodeInto[apiError](t, b).Code != "method_not_allowed" {
			t.Fatalf("PUT: %d %s", code, b)
		}
	})
}

// GET /v1/jobs?state=held pages through the caller's held jobs, oldest first, and nobody
// else's; a bad state, limit or cursor is a 400 naming the parameter.
func TestJobListPages(t *testing.T) {
	forEachStore(t, func(t *testing.T, k storeKind) {
		store, _ := k.open(t)
		e := newAPIEnv(t, store, APIOptions{}, SubmitOptions{})
		var want []string
		for i := range 7 {
			want = append(want, e.submit(t, "alice:erp", nil).ID)
			e.submit(t, "bob:erp", nil)
			e.clock.Advance(time.Second)
			if i == 3 { // one of alice's is no longer held
				if code, _, _ := e.call(t, http.MethodDelete, "/v1/jobs/"+want[i], "alice:erp", "", nil); code != http.StatusOK {
					t.Fatal(code)
				}
				want = want[:i]
			}
		}
		var got []string
		cursor, pages := "", 0
		for {
			code, b, _ := e.call(t, http.MethodGet, "/v1/jobs?state=held&limit=4&cursor="+cursor, "alice:shop", "", nil)
			p := decodeInto[jobPage](t, b)
			if code != http.StatusOK {
				t.Fatalf("list: %d %s", code, b)
			}
			pages++
			for _, j := range p.Jobs {
				if j.User != "alice" || j.State != StateHeld {
					t.Fatalf("listed %+v", j)
				}
				got = append(got, j.ID)
			}
			if cursor = p.NextCursor; cursor == "" {
				break
			}
		}
		if strings.Join(got, ",") != strings.Join(want, ",") || pages != 2 {
			t.Fatalf("pages %d listed %v, want %v", pages, got, want)
		}
		if _, b, _ := e.call(t, http.MethodGet, "/v1/jobs?state=cancelled,expired", "alice:erp", "", nil); len(decodeInto[jobPage](t, b).Jobs) != 1 {
			t.Fatalf("cancelled: %s", b)
		}
		for q, field := range map[string]string{"state=lost": "state:", "limit=0": "limit:", "limit=x": "limit:", "cursor=%25%25": "cursor:"} {
			code, b, _ := e.call(t, http.MethodGet, "/v1/jobs?"+q, "alice:erp", "", nil)
			if ae := decodeInto[apiError](t, b); code != http.StatusBadRequest || !strings.HasPrefix(ae.Message, field) {
				t.Errorf("%s: %d %s", q, code, b)
			}
		}
		// JSONP stays for the GET form.
		code, b, h := e.call(t, http.MethodGet, "/v1/jobs?callback=show", "alice:erp", "", nil)
		if code != http.StatusOK || !strings.HasPrefix(string(b), "show({") || h.Get("Content-Type") != "application/javascript" {
			t.Fatalf("JSONP list: %d %s", code, b)
		}
	})
}
