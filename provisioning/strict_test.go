package provisioning

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// strictServer is an authorization server that knows nothing of this project:
// RFC 6749, RFC 8628 and OpenID Connect userinfo only. Access tokens are
// opaque, `openid` is required, refresh tokens rotate and a reused one is
// answered invalid_request (RFC 6749 §5.2 allows it), unknown parameters are
// ignored (§3.1). It counts every request so tests can assert there is no
// storm.
type strictServer struct {
	t   testing.TB
	url string
	now func() time.Time

	mu       sync.Mutex
	requests map[string]int // path → count
	refuse   map[string]string
	down     bool // every endpoint answers 503
	dropNext bool // rotate the next refresh token, then drop the response
	claims   map[string]any
	codes    map[string]*strictCode // device_code →
	users    map[string]string      // user_code → device_code
	access   map[string]bool
	refresh  map[string]string // refresh token → "live" or "used"
}

type strictCode struct {
	userCode string
	approved bool
	declined bool // answered with Entra ID's authorization_declined
	lastPoll time.Time
}

func newStrictServer(t testing.TB, now func() time.Time) *strictServer {
	s := &strictServer{
		t: t, now: now, requests: map[string]int{}, refuse: map[string]string{},
		claims: map[string]any{"sub": "device-7f3a"},
		codes:  map[string]*strictCode{}, users: map[string]string{}, access: map[string]bool{}, refresh: map[string]string{},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /device", s.device)
	mux.HandleFunc("POST /token", s.token)
	mux.HandleFunc("GET /userinfo", s.userinfo)
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests[r.URL.Path]++
		down := s.down
		s.mu.Unlock()
		if down {
			oauthErr(w, http.StatusServiceUnavailable, "temporarily_unavailable")
			return
		}
		mux.ServeHTTP(w, r)
	}))
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	t.Cleanup(hs.Close)
	s.url = hs.URL
	return s
}

func oauthErr(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code})
}

func randomString() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *strictServer) set(f func(s *strictServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *strictServer) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[path]
}

func (s *strictServer) approve(userCode string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[s.users[userCode]].approved = true
}

func (s *strictServer) device(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.ParseForm()
	if c := s.refuse["/device"]; c != "" {
		oauthErr(w, http.StatusBadRequest, c)
		return
	}
	if r.PostForm.Get("client_id") != "station" {
		oauthErr(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	if !strings.Contains(" "+r.PostForm.Get("scope")+" ", " openid ") {
		oauthErr(w, http.StatusBadRequest, "invalid_scope")
		return
	}
	dc, uc := randomString(), strings.ToUpper(randomString()[:8])
	s.codes[dc] = &strictCode{userCode: uc, lastPoll: s.now()}
	s.users[uc] = dc
	json.NewEncoder(w).Encode(map[string]any{
		"device_code": dc, "user_code": uc, "verification_uri": s.url + "/activate",
		"expires_in": 600, "interval": 5,
	})
}

func (s *strictServer) issue(w http.ResponseWriter) {
	at, rt := randomString(), randomString()
	s.access[at] = true
	s.refresh[rt] = "live"
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": 3600, "refresh_token": rt})
}

func (s *strictServer) token(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.ParseForm()
	if c := s.refuse["/token"]; c != "" {
		oauthErr(w, http.StatusBadRequest, c)
		return
	}
	if r.PostForm.Get("client_id") != "station" {
		oauthErr(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	switch r.PostForm.Get("grant_type") {
	case grantDeviceCode:
		c, ok := s.codes[r.PostForm.Get("device_code")]
		switch {
		case !ok:
			oauthErr(w, http.StatusBadRequest, "invalid_grant")
		case s.now().Sub(c.lastPoll) < 5*time.Second:
			oauthErr(w, http.StatusBadRequest, "slow_down")
		case c.declined:
			oauthErr(w, http.StatusBadRequest, "authorization_declined")
		case !c.approved:
			c.lastPoll = s.now()
			oauthErr(w, http.StatusBadRequest, "authorization_pending")
		default:
			delete(s.codes, r.PostForm.Get("device_code"))
			s.issue(w)
		}
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		if s.refresh[rt] != "live" {
			oauthErr(w, http.StatusBadRequest, "invalid_request")
			return
		}
		s.refresh[rt] = "used"
		if s.dropNext {
			s.dropNext = false
			panic(http.ErrAbortHandler) // rotated, but the answer is lost
		}
		s.issue(w)
	default:
		oauthErr(w, http.StatusBadRequest, "unsupported_grant_type")
	}
}

func (s *strictServer) userinfo(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !s.access[at] {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	json.NewEncoder(w).Encode(s.claims)
}

func (s *strictServer) decline(userCode string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[s.users[userCode]].declined = true
}

// strictEnv is a provisioner against a strictServer on a fake clock.
type strictEnv struct {
	clock       *fakeClock
	srv         *strictServer
	events      events
	rediscovers int
	dir         string
}

func newStrictEnv(t *testing.T, mod func(*Config)) (*strictEnv, *Provisioner) {
	e := &strictEnv{clock: newFakeClock(), dir: t.TempDir()}
	e.srv = newStrictServer(t, e.clock.Now)
	ep := Endpoints{DeviceAuthorization: e.srv.url + "/device", Token: e.srv.url + "/token", Userinfo: e.srv.url + "/userinfo"}
	cfg := Config{
		DeviceAuthURL: ep.DeviceAuthorization, TokenURL: ep.Token, UserinfoURL: ep.Userinfo,
		Serial: "10000000c0ffee01", StateDir: filepath.Join(e.dir, "state"),
		HTTPClient: &http.Client{Timeout: 10 * time.Second},
		Now:        e.clock.Now, After: e.clock.After,
		Rediscover: func(context.Context) (Endpoints, error) { e.rediscovers++; return ep, nil },
		OnEvent:    e.events.add,
		Jitter:     func(d time.Duration) time.Duration { return d / 2 },
		Logger:     slog.New(slog.DiscardHandler),
	}
	if mod != nil {
		mod(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e, p
}

func (e *strictEnv) enroll(t *testing.T, p *Provisioner) {
	t.Helper()
	if err := p.Enroll(enrollCtx(t), func(c Code) { e.srv.approve(c.UserCode) }); err != nil {
		t.Fatalf("Enroll: %v", err)
	}
}

// The station id comes from the userinfo endpoint when the access token is
// opaque and there is no ID token; a reused refresh token answered with
// invalid_request is retried once with fresh metadata, then re-enrolled.
func TestStrictServerIdentityRotationAndReuse(t *testing.T) {
	e, p := newStrictEnv(t, nil)
	e.enroll(t, p)
	if got := p.StationID(); got != "device-7f3a" {
		t.Fatalf("StationID = %q, want the sub from userinfo", got)
	}
	at1, err := p.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p.Invalidate()
	at2, err := p.Token(context.Background())
	if err != nil || at2.AccessToken == at1.AccessToken {
		t.Fatalf("refresh: %v (same token: %v)", err, at2 != nil && at2.AccessToken == at1.AccessToken)
	}

	// The server rotates but the answer is lost: the station still holds the
	// old refresh token, and the server calls its reuse invalid_request.
	e.srv.set(func(s *strictServer) { s.dropNext = true })
	p.Invalidate()
	if _, err := p.Token(context.Background()); err == nil || errors.Is(err, ErrReenroll) {
		t.Fatalf("lost response: %v, want a transient error", err)
	}
	before := e.srv.count("/token")
	e.clock.Advance(backoffMax)
	if _, err := p.Token(context.Background()); !errors.Is(err, ErrReenroll) {
		t.Fatalf("reused refresh token: %v, want ErrReenroll", err)
	}
	if n := e.srv.count("/token") - before; n != 2 || e.rediscovers != 1 {
		t.Fatalf("%d refresh requests and %d rediscoveries, want 2 and 1 (one retry with fresh metadata)", n, e.rediscovers)
	}
	if p.Enrolled() {
		t.Fatal("dead grant kept")
	}
	e.enroll(t, p)
	if got := p.StationID(); got != "device-7f3a" {
		t.Fatalf("after re-enrollment StationID = %q", got)
	}
}

// Every configuration error ends in a setup problem, retried once a minute
// and no faster, and a server fixed meanwhile is picked up without a restart.
func TestStrictServerConfigErrorsNoStorm(t *testing.T) {
	for _, tc := range []struct{ path, code string }{
		{"/device", "invalid_client"},
		{"/device", "invalid_scope"},
		{"/device", "unauthorized_client"},
		{"/token", "unsupported_grant_type"},
		{"/token", "invalid_client"},
	} {
		t.Run(tc.code+tc.path, func(t *testing.T) {
			e, p := newStrictEnv(t, nil)
			e.srv.set(func(s *strictServer) { s.refuse[tc.path] = tc.code })
			start := e.clock.Now()
			fixed := false
			var setupCodes []string
			p.cfg.OnEvent = func(ev Event) {
				e.events.add(ev)
				if ev.Kind == EventSetupProblem {
					var se *SetupError
					errors.As(ev.Err, &se)
					setupCodes = append(setupCodes, se.Code)
				}
				if !fixed && e.clock.Now().Sub(start) >= time.Hour {
					fixed = true
					e.srv.set(func(s *strictServer) { s.refuse[tc.path] = "" })
				}
			}
			e.enroll(t, p)
			if len(setupCodes) == 0 || setupCodes[0] != tc.code {
				t.Fatalf("setup problems %v, want %s", setupCodes, tc.code)
			}
			if p.StationID() != "device-7f3a" {
				t.Fatalf("after the fix StationID = %q", p.StationID())
			}
			t.Logf("a simulated hour of %s at %s: %d requests there, %d to /device, %d setup problems", tc.code, tc.path, e.srv.count(tc.path), e.srv.count("/device"), len(setupCodes))
			// One hour of a refusing server: about one request a minute.
			if n := e.srv.count(tc.path); n > 70 {
				t.Fatalf("%d requests to %s in a simulated hour of %s, want ≤ 70", n, tc.path, tc.code)
			}
			if n := len(setupCodes); n < 55 {
				t.Fatalf("%d setup problems in an hour, want about 60 (one a minute)", n)
			}
		})
	}
}

// The strict server requires openid: a station configured without it is told
// why, on the screen, instead of cycling codes.
func TestScopesWithoutOpenIDRefused(t *testing.T) {
	ctx, cancel := context.WithCancel(enrollCtx(t))
	var got *SetupError
	_, p := newStrictEnv(t, func(c *Config) {
		c.Scopes = []string{"printing", "offline_access"}
		c.OnEvent = func(ev Event) {
			if ev.Kind == EventSetupProblem {
				errors.As(ev.Err, &got)
				cancel()
			}
		}
	})
	if err := p.Enroll(ctx, func(Code) { t.Error("a code was shown") }); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if got == nil || got.Code != "invalid_scope" || got.Step != "device authorization" {
		t.Fatalf("setup problem %+v, want invalid_scope at device authorization", got)
	}
}

// Entra ID says authorization_declined where RFC 8628 says access_denied: the same screen.
func TestDeclinedIsDenied(t *testing.T) {
	e, p := newStrictEnv(t, nil)
	n := 0
	if err := p.Enroll(enrollCtx(t), func(c Code) {
		if n++; n == 1 {
			e.srv.decline(c.UserCode)
			return
		}
		e.srv.approve(c.UserCode)
	}); err != nil {
		t.Fatal(err)
	}
	if got := e.events.kinds(); got != "code,denied,code,enrolled" {
		t.Fatalf("events %s", got)
	}
}

// A refresh refused for a configuration reason, or failing transiently, is
// retried on a schedule whatever the caller does: a thousand calls to Token
// do not make a thousand requests.
func TestRefreshFailuresNoStorm(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(s *strictServer)
		max    int
	}{
		{"config", func(s *strictServer) { s.refuse["/token"] = "invalid_client" }, 20},
		{"transient", func(s *strictServer) { s.down = true }, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, p := newStrictEnv(t, nil)
			e.enroll(t, p)
			e.srv.set(tc.break_)
			before := e.srv.count("/token")
			e.clock.Advance(2 * time.Hour) // the access token has expired
			for range 1000 {
				if _, err := p.Token(context.Background()); err == nil {
					t.Fatal("Token with a refusing server and an expired token succeeded")
				}
				e.clock.Advance(time.Second)
			}
			n := e.srv.count("/token") - before
			t.Logf("%s: %d refresh requests for 1000 calls over 1000 simulated seconds", tc.name, n)
			if n > tc.max || n < 5 {
				t.Fatalf("%d refresh requests in 1000 simulated seconds, want 5..%d", n, tc.max)
			}
			if tc.name == "config" {
				_, err := p.Token(context.Background())
				var se *SetupError
				if !errors.As(err, &se) || se.Code != "invalid_client" {
					t.Fatalf("Token: %v, want a SetupError invalid_client", err)
				}
			}
			// Fixed: the next scheduled attempt succeeds, with the same grant.
			e.srv.set(func(s *strictServer) { s.refuse["/token"], s.down = "", false })
			e.clock.Advance(time.Hour)
			if _, err := p.Token(context.Background()); err != nil {
				t.Fatalf("after the fix: %v", err)
			}
		})
	}
}

// A server whose tokens do not carry the configured claim: the grant is kept,
// the problem is reported, and a refresh after the admin added the claim
// gives the station its id.
func TestMissingStationClaimIsASetupProblem(t *testing.T) {
	e, p := newStrictEnv(t, func(c *Config) { c.StationClaim = "tp_id" })
	e.enroll(t, p)
	if got := e.events.kinds(); !strings.HasSuffix(got, "enrolled,setup_problem") {
		t.Fatalf("events %s", got)
	}
	if !p.Enrolled() || p.StationID() != "" {
		t.Fatalf("Enrolled %v StationID %q", p.Enrolled(), p.StationID())
	}
	e.srv.set(func(s *strictServer) { s.claims["tp_id"] = json.Number("4711") })
	p.Invalidate()
	if _, err := p.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := p.StationID(); got != "4711" {
		t.Fatalf("StationID = %q, want the numeric tp_id as text", got)
	}
}
