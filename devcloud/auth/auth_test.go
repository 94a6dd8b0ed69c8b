package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"labelstation/devcloud/auth"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const alicePassword = "alice-test-password"

func testHash(t testing.TB, pw string) []byte {
	t.Helper()
	h, err := auth.HashGeneratedPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

type fixture struct {
	t     testing.TB
	srv   *auth.Server
	url   string
	clock *clock
}

func newFixture(t testing.TB, mod func(*auth.Options)) *fixture {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, url: "http://" + ln.Addr().String(), clock: &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}}
	opt := auth.Options{
		Issuer: f.url,
		Users:  []auth.User{{ID: "alice", Name: "Alice", PasswordHash: testHash(t, alicePassword)}, {ID: "bob", Name: "Bob"}},
		Apps:   []auth.App{{ClientID: "erp", Secret: "s3cret-erp", UserID: "bob"}},
		Now:    f.clock.Now,
	}
	if mod != nil {
		mod(&opt)
	}
	f.srv, err = auth.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(f.srv.Handler())
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	t.Cleanup(hs.Close)
	return f
}

// post sends a form and decodes the JSON answer.
func (f *fixture) post(path string, form url.Values) (int, map[string]any) {
	f.t.Helper()
	resp, err := http.PostForm(f.url+path, form)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &m); err != nil {
		f.t.Fatalf("POST %s: status %d, body %q: %v", path, resp.StatusCode, b, err)
	}
	return resp.StatusCode, m
}

// deviceCode starts a device authorization for serial and returns the answer.
func (f *fixture) deviceCode(serial string) map[string]any {
	f.t.Helper()
	st, m := f.post("/oauth/device_authorization", url.Values{
		"client_id": {"station"}, "scope": {"printing offline_access"}, "serial_number": {serial}})
	if st != http.StatusOK {
		f.t.Fatalf("device authorization: %d %v", st, m)
	}
	return m
}

func (f *fixture) poll(deviceCode string) (int, map[string]any) {
	f.t.Helper()
	return f.post("/oauth/token", url.Values{
		"client_id": {"station"}, "grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {deviceCode}})
}

func (f *fixture) refresh(rt string) (int, map[string]any) {
	f.t.Helper()
	return f.post("/oauth/token", url.Values{"client_id": {"station"}, "grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

// enroll runs a whole device flow by hand and returns the token response.
func (f *fixture) enroll(serial string) map[string]any {
	f.t.Helper()
	d := f.deviceCode(serial)
	if err := f.srv.Approve(d["user_code"].(string), "alice"); err != nil {
		f.t.Fatal(err)
	}
	f.clock.Advance(5 * time.Second)
	st, m := f.poll(d["device_code"].(string))
	if st != http.StatusOK {
		f.t.Fatalf("poll after approval: %d %v", st, m)
	}
	return m
}

func TestDeviceAuthorizationResponse(t *testing.T) {
	f := newFixture(t, nil)
	d := f.deviceCode("abc123")
	code := d["user_code"].(string)
	if d["verification_uri"] != f.url+"/device" {
		t.Errorf("verification_uri = %v", d["verification_uri"])
	}
	if d["verification_uri_complete"] != f.url+"/device?user_code="+code {
		t.Errorf("verification_uri_complete = %v", d["verification_uri_complete"])
	}
	if d["expires_in"] != 600.0 || d["interval"] != 5.0 {
		t.Errorf("expires_in %v interval %v, want 600 and 5", d["expires_in"], d["interval"])
	}
	if d["device_code"] == "" {
		t.Error("no device_code")
	}
	// After sign-in the approval page shows the code, the serial, the app and the scopes.
	b := newBrowser(t, f.url)
	b.signIn("alice", alicePassword, code)
	_, page := b.get(d["verification_uri_complete"].(string))
	for _, want := range []string{code, "abc123", "Approve", "Deny", "Alice", "Label release station", "Print the label jobs", "Stay enrolled"} {
		if !strings.Contains(page, want) {
			t.Errorf("approval page lacks %q", want)
		}
	}
}

func TestDeviceRequestRejectsBadInput(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct {
		form url.Values
		want string
	}{
		{url.Values{"client_id": {"station"}, "scope": {"printing admin"}}, "invalid_scope"},
		{url.Values{"client_id": {"station"}, "serial_number": {"has space"}}, "invalid_request"},
		{url.Values{"client_id": {"station"}, "serial_number": {strings.Repeat("a", 65)}}, "invalid_request"},
		{url.Values{"client_id": {"nobody"}}, "invalid_client"},
	} {
		st, m := f.post("/oauth/device_authorization", tc.form)
		if st < 400 || m["error"] != tc.want {
			t.Errorf("%v: status %d error %v, want %s", tc.form, st, m["error"], tc.want)
		}
	}
}

func TestDeviceFlowAndStationIdentity(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.enroll("serial-A")
	id, _ := tok["station_id"].(string)
	if !strings.HasPrefix(id, "st-") {
		t.Fatalf("station_id = %v", tok["station_id"])
	}
	if tok["refresh_token"] == nil || tok["expires_in"] != 3600.0 || tok["token_type"] != "Bearer" {
		t.Fatalf("token response %v", tok)
	}
	p, err := f.srv.Verify(context.Background(), tok["access_token"].(string))
	if err != nil || p.Kind != auth.KindStation || p.StationID != id || p.Serial != "serial-A" {
		t.Fatalf("Verify = %+v, %v", p, err)
	}
	if again := f.enroll("serial-A"); again["station_id"] != id {
		t.Fatalf("same serial got %v, want %s", again["station_id"], id)
	}
	if other := f.enroll("serial-B"); other["station_id"] == id {
		t.Fatal("different serials share a station id")
	}
	if got, ok := f.srv.StationBySerial("serial-A"); !ok || got != id {
		t.Fatalf("StationBySerial = %q, %v", got, ok)
	}
}

func TestPollOutcomes(t *testing.T) {
	f := newFixture(t, func(o *auth.Options) { o.DeviceCodeTTL = time.Minute })
	d := f.deviceCode("s")
	dc := d["device_code"].(string)

	// Too early: the first poll must wait one interval (RFC 8628 §3.5).
	f.clock.Advance(time.Second)
	if _, m := f.poll(dc); m["error"] != "slow_down" {
		t.Fatalf("early poll: %v, want slow_down", m["error"])
	}
	// The interval is now 10 s: 5 s later is still too fast.
	f.clock.Advance(5 * time.Second)
	if _, m := f.poll(dc); m["error"] != "slow_down" {
		t.Fatalf("poll at old pace: %v, want slow_down", m["error"])
	}
	f.clock.Advance(15 * time.Second)
	if _, m := f.poll(dc); m["error"] != "authorization_pending" {
		t.Fatalf("paced poll: %v, want authorization_pending", m["error"])
	}
	f.srv.SlowDownNext(1)
	f.clock.Advance(15 * time.Second)
	if _, m := f.poll(dc); m["error"] != "slow_down" {
		t.Fatalf("forced: %v, want slow_down", m["error"])
	}
	f.clock.Advance(30 * time.Second)
	if _, m := f.poll(dc); m["error"] != "expired_token" {
		t.Fatalf("after expiry: %v, want expired_token", m["error"])
	}
	if err := f.srv.Approve(d["user_code"].(string), "alice"); !errors.Is(err, auth.ErrCodeExpired) {
		t.Fatalf("Approve expired: %v", err)
	}
	polls := f.srv.Polls(d["user_code"].(string))
	var outcomes []string
	for _, p := range polls {
		outcomes = append(outcomes, p.Outcome)
	}
	if got := strings.Join(outcomes, ","); got != "slow_down,slow_down,authorization_pending,slow_down,expired_token" {
		t.Fatalf("polls %s", got)
	}
	if polls[3].Forced != true || polls[0].Forced {
		t.Fatalf("Forced flags %+v", polls)
	}

	// Denial.
	d = f.deviceCode("s")
	if err := f.srv.Deny(strings.ToLower(d["user_code"].(string))); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(5 * time.Second)
	if _, m := f.poll(d["device_code"].(string)); m["error"] != "access_denied" {
		t.Fatalf("denied: %v", m["error"])
	}
	if err := f.srv.Approve(d["user_code"].(string), "alice"); !errors.Is(err, auth.ErrAlreadyDecided) {
		t.Fatalf("Approve denied: %v", err)
	}
}

func TestDeviceCodeSingleUse(t *testing.T) {
	f := newFixture(t, nil)
	d := f.deviceCode("s")
	f.srv.Approve(d["user_code"].(string), "alice")
	f.clock.Advance(5 * time.Second)
	if st, _ := f.poll(d["device_code"].(string)); st != http.StatusOK {
		t.Fatal("first poll after approval failed")
	}
	f.clock.Advance(5 * time.Second)
	if st, m := f.poll(d["device_code"].(string)); st == http.StatusOK || m["error"] != "invalid_grant" {
		t.Fatalf("second use of a device code: %d %v, want invalid_grant", st, m)
	}
	if _, m := f.poll("made-up"); m["error"] != "invalid_grant" {
		t.Fatalf("unknown device code: %v, want invalid_grant", m)
	}
}

func TestRefreshRotationAndReuse(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.enroll("s")
	rt1 := tok["refresh_token"].(string)
	st, t2 := f.refresh(rt1)
	if st != http.StatusOK {
		t.Fatalf("refresh: %d %v", st, t2)
	}
	rt2 := t2["refresh_token"].(string)
	if rt2 == rt1 {
		t.Fatal("refresh token not rotated")
	}
	if t2["station_id"] != tok["station_id"] {
		t.Fatalf("refresh response station_id %v", t2["station_id"])
	}
	at2 := t2["access_token"].(string)
	if _, err := f.srv.Verify(context.Background(), at2); err != nil {
		t.Fatal(err)
	}
	// Reusing the rotated token fails and revokes the family (Security BCP §4.14.2):
	// the current refresh token and its access token die with it.
	if st, m := f.refresh(rt1); st != http.StatusBadRequest || m["error"] != "invalid_grant" {
		t.Fatalf("reuse: %d %v", st, m)
	}
	if _, m := f.refresh(rt2); m["error"] != "invalid_grant" {
		t.Fatalf("current token after reuse: %v, want invalid_grant", m)
	}
	if _, err := f.srv.Verify(context.Background(), at2); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("Verify after family revocation: %v", err)
	}
}

func TestDropNextRefresh(t *testing.T) {
	f := newFixture(t, nil)
	rt := f.enroll("s")["refresh_token"].(string)
	f.srv.DropNextRefresh(1)
	resp, err := http.PostForm(f.url+"/oauth/token", url.Values{"client_id": {"station"}, "grant_type": {"refresh_token"}, "refresh_token": {rt}})
	if err == nil {
		resp.Body.Close()
		t.Fatalf("dropped refresh answered %d", resp.StatusCode)
	}
	// The server did rotate: the token the client still holds is dead.
	if _, m := f.refresh(rt); m["error"] != "invalid_grant" {
		t.Fatalf("after a lost response: %v, want invalid_grant", m)
	}
}

func TestFailNext(t *testing.T) {
	f := newFixture(t, nil)
	f.srv.FailNext(2)
	for i := range 2 {
		st, m := f.post("/oauth/device_authorization", url.Values{"client_id": {"station"}})
		if st != http.StatusServiceUnavailable || m["error"] != "temporarily_unavailable" {
			t.Fatalf("request %d: %d %v", i, st, m)
		}
	}
	f.deviceCode("s")
}

func TestVerifyRejects(t *testing.T) {
	f := newFixture(t, func(o *auth.Options) { o.AccessTTL = 10 * time.Minute })
	tok := f.enroll("s")
	at := tok["access_token"].(string)
	if tok["expires_in"] != 600.0 {
		t.Fatalf("expires_in %v, want 600", tok["expires_in"])
	}
	other := newFixture(t, nil).enroll("s")["access_token"].(string)
	for name, tc := range map[string]string{
		"garbage":      "not-a-jwt",
		"tampered":     at[:len(at)-4] + "AAAA",
		"other issuer": other,
		"empty":        "",
	} {
		if _, err := f.srv.Verify(context.Background(), tc); !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("%s: %v, want ErrInvalidToken", name, err)
		}
	}
	f.clock.Advance(10 * time.Minute)
	if _, err := f.srv.Verify(context.Background(), at); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("expired: %v, want ErrInvalidToken", err)
	}
}

func TestClientCredentials(t *testing.T) {
	f := newFixture(t, nil)
	cc := clientcredentials.Config{ClientID: "erp", ClientSecret: "s3cret-erp", TokenURL: f.srv.TokenURL()}
	tok, err := cc.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.srv.Verify(context.Background(), tok.AccessToken)
	if err != nil || p.Kind != auth.KindUser || p.UserID != "bob" || p.StationID != "" {
		t.Fatalf("Verify = %+v, %v", p, err)
	}
	if tok.RefreshToken != "" {
		t.Error("client_credentials issued a refresh token")
	}
	cc.ClientSecret = "wrong"
	if _, err := cc.Token(context.Background()); err == nil {
		t.Fatal("wrong secret accepted")
	}
}

func TestApproveAPI(t *testing.T) {
	f := newFixture(t, nil)
	d := f.deviceCode("s")
	code := d["user_code"].(string)
	send := func(path, body, user, password, ctype string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, f.url+path, strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		if user != "" {
			req.SetBasicAuth(user, password)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	post := func(path, body string) (int, map[string]any) {
		return send(path, body, "alice", alicePassword, "application/json")
	}
	body := `{"user_code":"` + code + `"}`
	for _, tc := range []struct {
		name, user, password, ctype string
		want                        int
	}{
		{"no credentials", "", "", "application/json", http.StatusUnauthorized},
		{"wrong password", "alice", "guess", "application/json", http.StatusUnauthorized},
		{"user without a password", "bob", "", "application/json", http.StatusUnauthorized},
		{"unknown user", "mallory", "x", "application/json", http.StatusUnauthorized},
		{"form body from a cross-site form", "alice", alicePassword, "text/plain", http.StatusUnsupportedMediaType},
	} {
		if st, m := send("/device/approve", body, tc.user, tc.password, tc.ctype); st != tc.want {
			t.Fatalf("%s: %d %v, want %d", tc.name, st, m, tc.want)
		}
		if st, _ := send("/device/deny", body, tc.user, tc.password, tc.ctype); st != tc.want {
			t.Fatalf("%s: deny: %d, want %d", tc.name, st, tc.want)
		}
	}
	f.clock.Advance(5 * time.Second)
	if st, m := f.poll(d["device_code"].(string)); st != http.StatusBadRequest || m["error"] != "authorization_pending" {
		t.Fatalf("after refused decisions the code must still be pending: %d %v", st, m)
	}
	if st, m := post("/device/approve", `{"user_code":"`+code+`","user":"bob"}`); st != http.StatusForbidden || !strings.Contains(m["error"].(string), "bob") {
		t.Fatalf("approving as someone else: %d %v", st, m)
	}
	if st, m := post("/device/approve", `{"user_code":"BBBB-BBBB","user":"alice"}`); st != http.StatusNotFound {
		t.Fatalf("unknown code: %d %v", st, m)
	}
	if st, m := post("/device/approve", `{"user_code":"`+code+`","usr":"alice"}`); st != http.StatusBadRequest || !strings.Contains(m["error"].(string), "usr") {
		t.Fatalf("unknown field: %d %v", st, m)
	}
	st, m := post("/device/approve", `{"user_code":"`+strings.ReplaceAll(code, "-", "")+`","user":"alice"}`)
	if st != http.StatusOK || m["status"] != "approved" || !strings.HasPrefix(m["station_id"].(string), "st-") {
		t.Fatalf("approve: %d %v", st, m)
	}
	if st, _ := post("/device/deny", `{"user_code":"`+code+`"}`); st != http.StatusConflict {
		t.Fatalf("deny after approve: %d", st)
	}
}

func TestApprovalPageForm(t *testing.T) {
	f := newFixture(t, nil)
	d := f.deviceCode("s")
	code := d["user_code"].(string)
	b := newBrowser(t, f.url)
	b.signIn("alice", alicePassword, code)
	st, page := b.post("/device", url.Values{"user_code": {code}, "action": {"approve"}, "csrf_token": {b.csrf}})
	if st != http.StatusOK || !strings.Contains(page, "Approved") {
		t.Fatalf("form approve: %d %s", st, page)
	}
	f.clock.Advance(5 * time.Second)
	if st, m := f.poll(d["device_code"].(string)); st != http.StatusOK {
		t.Fatalf("poll after form approval: %v", m)
	}
}

func TestApproveWithoutSessionFails(t *testing.T) {
	f := newFixture(t, nil)
	d := f.deviceCode("s")
	code := d["user_code"].(string)
	pending := func(what string) {
		t.Helper()
		f.clock.Advance(5 * time.Second)
		if st, m := f.poll(d["device_code"].(string)); st != http.StatusBadRequest || m["error"] != "authorization_pending" {
			t.Fatalf("%s: the code was decided: %d %v", what, st, m)
		}
	}

	// No cookie at all, as the old form post did.
	anon := newBrowser(t, f.url)
	st, page := anon.post("/device", url.Values{"user_code": {code}, "user": {"alice"}, "action": {"approve"}})
	if st != http.StatusUnauthorized || !strings.Contains(page, "Please sign in first") {
		t.Fatalf("approve without a session: %d %s", st, page)
	}
	pending("no session")

	// An anonymous session with its valid CSRF token is still not signed in.
	anon.get(f.url + "/device?user_code=" + code)
	st, _ = anon.post("/device", url.Values{"user_code": {code}, "action": {"approve"}, "csrf_token": {anon.csrfFromLastPage()}})
	if st != http.StatusUnauthorized {
		t.Fatalf("approve with an anonymous session: %d", st)
	}
	pending("anonymous session")

	// Signed in, but the CSRF token is missing, wrong, or the request comes from another site.
	b := newBrowser(t, f.url)
	b.signIn("alice", alicePassword, code)
	for _, tc := range []struct {
		name   string
		form   url.Values
		origin string
	}{
		{"missing CSRF", url.Values{"user_code": {code}, "action": {"approve"}}, ""},
		{"wrong CSRF", url.Values{"user_code": {code}, "action": {"approve"}, "csrf_token": {"forged"}}, ""},
		{"other site", url.Values{"user_code": {code}, "action": {"approve"}, "csrf_token": {b.csrf}}, "https://evil.example"},
		{"deny, missing CSRF", url.Values{"user_code": {code}, "action": {"deny"}}, ""},
	} {
		b.origin = tc.origin
		st, page := b.post("/device", tc.form)
		if st != http.StatusForbidden || !strings.Contains(page, "nothing was approved or denied") {
			t.Fatalf("%s: %d %s", tc.name, st, page)
		}
		pending(tc.name)
	}
	b.origin = ""

	// Another user's session token does not work in this session either.
	other := newBrowser(t, f.url)
	other.get(f.url + "/device")
	st, _ = b.post("/device", url.Values{"user_code": {code}, "action": {"approve"}, "csrf_token": {other.csrfFromLastPage()}})
	if st != http.StatusForbidden {
		t.Fatalf("CSRF token of another session: %d", st)
	}
	pending("another session's token")
}

func TestSignIn(t *testing.T) {
	f := newFixture(t, nil)
	b := newBrowser(t, f.url)
	b.get(f.url + "/device")
	st, page := b.post("/device/login", url.Values{"user": {"alice"}, "password": {"guess"}, "csrf_token": {b.csrfFromLastPage()}})
	if st != http.StatusUnauthorized || !strings.Contains(page, "The user name or password is wrong.") {
		t.Fatalf("wrong password: %d %s", st, page)
	}
	st, _ = b.post("/device/login", url.Values{"user": {"alice"}, "password": {alicePassword}})
	if st != http.StatusForbidden {
		t.Fatalf("sign-in without the form's CSRF token: %d", st)
	}
	// The session cookie: HttpOnly, SameSite=Lax, scoped to the approval pages.
	var set *http.Cookie
	b.onCookie = func(c *http.Cookie) { set = c }
	b.signIn("alice", alicePassword, "")
	if set == nil || !set.HttpOnly || set.SameSite != http.SameSiteLaxMode || set.Path != "/device" || set.Secure {
		t.Fatalf("session cookie over plain http = %+v", set)
	}
	// The page cannot be framed (a hidden frame could steal the click on Approve).
	resp, err := http.Get(f.url + "/device")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("framing headers: %v", resp.Header)
	}
	// An unknown code is said in words.
	st, page = b.get(f.url + "/device?user_code=BBBB-BBBB")
	if st != http.StatusNotFound || !strings.Contains(page, "No station is waiting for the code BBBB-BBBB") || strings.Contains(page, "auth:") {
		t.Fatalf("unknown code: %d %s", st, page)
	}
	// Signing out ends the session.
	st, _ = b.post("/device/logout", url.Values{"csrf_token": {b.csrf}})
	if st != http.StatusOK { // the redirect lands on the sign-in form
		t.Fatalf("logout: %d", st)
	}
	if _, page := b.get(f.url + "/device"); !strings.Contains(page, `name="password"`) {
		t.Fatal("still signed in after signing out")
	}
}

func TestSignInPausedAfterRepeatedWrongPasswords(t *testing.T) {
	f := newFixture(t, nil)
	for i := 0; i < 10; i++ {
		if _, err := f.srv.SignIn("alice", "guess"); !errors.Is(err, auth.ErrBadPassword) {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	// Even the right password is refused now, on the page (429) and the JSON API.
	if _, err := f.srv.SignIn("alice", alicePassword); !errors.Is(err, auth.ErrTooManyFailures) {
		t.Fatalf("after 10 wrong passwords: %v", err)
	}
	b := newBrowser(t, f.url)
	b.get(f.url + "/device")
	st, page := b.post("/device/login", url.Values{"user": {"alice"}, "password": {alicePassword}, "csrf_token": {b.csrfFromLastPage()}})
	if st != http.StatusTooManyRequests || !strings.Contains(page, "Too many wrong passwords") {
		t.Fatalf("page sign-in while paused: %d %s", st, page)
	}
	// Other users are not affected, and the pause ends.
	if _, err := f.srv.SignIn("bob", "x"); !errors.Is(err, auth.ErrBadPassword) {
		t.Fatalf("bob: %v", err)
	}
	f.clock.Advance(15 * time.Minute)
	if _, err := f.srv.SignIn("alice", alicePassword); err != nil {
		t.Fatalf("after the pause: %v", err)
	}
}

func TestSessionCookieSecureOverTLS(t *testing.T) {
	srv, err := auth.New(auth.Options{Issuer: "https://pair.example.com", Users: []auth.User{{ID: "alice", PasswordHash: testHash(t, alicePassword)}}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewTLSServer(srv.Handler())
	defer hs.Close()
	resp, err := hs.Client().Get(hs.URL + "/device")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cs := resp.Cookies()
	if len(cs) != 1 || !cs[0].Secure || !cs[0].HttpOnly {
		t.Fatalf("cookies over TLS = %+v", cs)
	}
}

func TestHandlerPaths(t *testing.T) {
	f := newFixture(t, nil)
	resp, err := http.Get(f.url + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var disc map[string]any
	json.NewDecoder(resp.Body).Decode(&disc)
	resp.Body.Close()
	if disc["token_endpoint"] != f.srv.TokenURL() || disc["device_authorization_endpoint"] != f.srv.DeviceAuthURL() || disc["issuer"] != f.url {
		t.Fatalf("discovery %v", disc)
	}
	// Paths of the lead's APIs are not claimed.
	for _, p := range []string{"/healthz", "/v1/jobs"} {
		resp, err := http.Get(f.url + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
}

func TestNewValidatesOptions(t *testing.T) {
	for _, tc := range []struct {
		opt  auth.Options
		want string
	}{
		{auth.Options{Issuer: "127.0.0.1:8080"}, "Issuer"},
		{auth.Options{Issuer: "http://h/x"}, "path"},
		{auth.Options{Issuer: "http://h", Users: []auth.User{{ID: "a"}, {ID: "a"}}}, "Users[1].ID"},
		{auth.Options{Issuer: "http://h", Apps: []auth.App{{ClientID: "x", Secret: "y", UserID: "nobody"}}}, "Apps[0].UserID"},
		{auth.Options{Issuer: "http://h", Apps: []auth.App{{ClientID: "station", Secret: "y"}}}, "Apps[0].ClientID"},
		{auth.Options{Issuer: "http://h", PollInterval: 1500 * time.Millisecond}, "PollInterval"},
		{auth.Options{Issuer: "http://h", Users: []auth.User{{ID: "a", PasswordHash: []byte("plain")}}}, "Users[0].PasswordHash"},
	} {
		if _, err := auth.New(tc.opt); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want mention of %s", tc.opt, err, tc.want)
		}
	}
}

// TestStockOAuth2Client runs the flow with x/oauth2's own device-flow and
// refresh code, as a third-party station would (real clock, 1 s interval).
func TestStockOAuth2Client(t *testing.T) {
	f := newFixture(t, func(o *auth.Options) { o.PollInterval, o.Now = time.Second, nil })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := oauth2.Config{
		ClientID: auth.StationClientID,
		Scopes:   []string{auth.ScopePrinting, auth.ScopeOfflineAccess},
		Endpoint: oauth2.Endpoint{DeviceAuthURL: f.srv.DeviceAuthURL(), TokenURL: f.srv.TokenURL(), AuthStyle: oauth2.AuthStyleInParams},
	}
	da, err := cfg.DeviceAuth(ctx, oauth2.SetAuthURLParam(auth.SerialParam, "stock-1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.srv.Approve(da.UserCode, "alice"); err != nil {
		t.Fatal(err)
	}
	tok, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := f.srv.StationBySerial("stock-1")
	if tok.Extra("station_id") != id || id == "" {
		t.Fatalf("Extra(station_id) = %v, want %q", tok.Extra("station_id"), id)
	}
	tok.Expiry = time.Now().Add(-time.Minute)
	t2, err := cfg.TokenSource(ctx, tok).Token()
	if err != nil {
		t.Fatal(err)
	}
	if t2.RefreshToken == tok.RefreshToken || t2.AccessToken == tok.AccessToken {
		t.Fatal("refresh through x/oauth2 did not rotate")
	}
}

func TestDeviceFlowWithoutOfflineAccess(t *testing.T) {
	f := newFixture(t, nil)
	st, d := f.post("/oauth/device_authorization", url.Values{"client_id": {"station"}, "scope": {"printing"}, "serial_number": {"s"}})
	if st != http.StatusOK {
		t.Fatalf("device authorization: %d %v", st, d)
	}
	f.srv.Approve(d["user_code"].(string), "alice")
	f.clock.Advance(5 * time.Second)
	st, tok := f.poll(d["device_code"].(string))
	if st != http.StatusOK || tok["refresh_token"] != nil {
		t.Fatalf("poll: %d %v, want an access token only", st, tok)
	}
	p, err := f.srv.Verify(context.Background(), tok["access_token"].(string))
	if err != nil || p.StationID != tok["station_id"] {
		t.Fatalf("Verify = %+v, %v", p, err)
	}
}

func TestRequireToken(t *testing.T) {
	f := newFixture(t, nil)
	at := f.enroll("s")["access_token"].(string)
	h := f.srv.RequireToken(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := auth.PrincipalFrom(r.Context())
		if !ok {
			t.Error("no principal in context")
		}
		io.WriteString(w, p.StationID)
	}))
	for _, tc := range []struct {
		header string
		status int
		errStr string
	}{
		{"", http.StatusUnauthorized, ""},
		{"Basic abc", http.StatusUnauthorized, ""},
		{"Bearer nope", http.StatusUnauthorized, `error="invalid_token"`},
		{"Bearer " + at, http.StatusOK, ""},
	} {
		r := httptest.NewRequest("GET", "/v1/jobs", nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.status || !strings.Contains(w.Header().Get("WWW-Authenticate"), tc.errStr) {
			t.Errorf("%q: %d %q", tc.header, w.Code, w.Header().Get("WWW-Authenticate"))
		}
		if w.Code == http.StatusOK && !strings.HasPrefix(w.Body.String(), "st-") {
			t.Errorf("handler saw station %q", w.Body.String())
		}
	}
}

// BenchmarkVerify: the broker verifies on every CONNECT and the job API on
// every request.
func BenchmarkVerify(b *testing.B) {
	f := newFixture(b, nil)
	at := f.enroll("s")["access_token"].(string)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.srv.Verify(ctx, at); err != nil {
			b.Fatal(err)
		}
	}
}

func TestRevokeStation(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.enroll("s")
	keep := f.enroll("other")
	id := tok["station_id"].(string)
	if n := f.srv.RevokeStation(id); n != 1 {
		t.Fatalf("revoked %d grants, want 1", n)
	}
	if _, err := f.srv.Verify(context.Background(), tok["access_token"].(string)); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("Verify after revocation: %v", err)
	}
	if _, m := f.refresh(tok["refresh_token"].(string)); m["error"] != "invalid_grant" {
		t.Fatalf("refresh after revocation: %v", m)
	}
	if _, err := f.srv.Verify(context.Background(), keep["access_token"].(string)); err != nil {
		t.Fatalf("other station hit: %v", err)
	}
	if again := f.enroll("s"); again["station_id"] != id {
		t.Fatalf("re-enrolled as %v, want %s", again["station_id"], id)
	}
}
