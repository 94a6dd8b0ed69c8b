package auth_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"labelstation/devcloud/auth"
)

// appFixture is a registered application and a browser of a user who can consent to it.
type appFixture struct {
	*fixture
	app    auth.RegisteredApp
	secret string
	conf   oauth2.Config
	b      *browser
}

const appRedirect = "http://127.0.0.1/callback"

func newAppFixture(t *testing.T, mod func(*auth.Options)) *appFixture {
	t.Helper()
	f := newFixture(t, mod)
	app, secret, err := f.srv.RegisterApp(auth.AppRegistration{Name: "Label Shop", Description: "Prints your parcel labels",
		IconURL: "https://shop.example/icon.png", RedirectURIs: []string{appRedirect}})
	if err != nil {
		t.Fatal(err)
	}
	a := &appFixture{fixture: f, app: app, secret: secret, b: newBrowser(t, f.url)}
	a.conf = oauth2.Config{ClientID: app.ClientID, ClientSecret: secret, Scopes: []string{auth.ScopePrinting},
		RedirectURL: appRedirect,
		Endpoint:    oauth2.Endpoint{AuthURL: f.srv.AuthorizeURL(), TokenURL: f.srv.TokenURL(), AuthStyle: oauth2.AuthStyleInParams}}
	// The browser stops at the first redirect that leaves devcloud: that is the application's.
	jar, _ := cookiejar.New(nil)
	host := strings.TrimPrefix(f.url, "http://")
	a.b.c = &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if req.URL.Host != host {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return a
}

// visit opens u in the browser and returns the status, the body and where devcloud sent the
// browser outside itself ("" if nowhere).
func (a *appFixture) visit(method, u string, form url.Values) (int, string, string) {
	a.t.Helper()
	var req *http.Request
	if method == http.MethodPost {
		req, _ = http.NewRequest(method, u, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req, _ = http.NewRequest(method, u, nil)
	}
	resp, err := a.b.c.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	a.b.last = string(b)
	loc := ""
	if resp.StatusCode/100 == 3 {
		loc = resp.Header.Get("Location")
	}
	return resp.StatusCode, a.b.last, loc
}

// authorize walks the browser part: the authorization request, sign-in on first use, the
// consent page and the answer. It returns where the browser was sent back to.
func (a *appFixture) authorize(authURL, action string) *url.URL {
	a.t.Helper()
	st, page, loc := a.visit(http.MethodGet, authURL, nil)
	if loc != "" {
		return mustURL(a.t, loc)
	}
	if st != http.StatusOK {
		a.t.Fatalf("authorization request: %d %s", st, page)
	}
	id := regexpFind(a.t, page, `name="id" value="([^"]+)"`)
	if strings.Contains(page, `action="/device/apps/login"`) {
		st, page, _ = a.visit(http.MethodPost, a.url+"/device/apps/login", url.Values{"user": {"alice"}, "password": {alicePassword},
			"id": {id}, "csrf_token": {a.b.csrfFromLastPage()}})
		if st != http.StatusOK || !strings.Contains(page, `id="approve"`) {
			a.t.Fatalf("sign-in on the consent page: %d %s", st, page)
		}
	}
	for _, want := range []string{"Label Shop", "Prints your parcel labels", "https://shop.example/icon.png", "Send label print jobs in your name", "127.0.0.1", "Signed in as"} {
		if !strings.Contains(page, want) {
			a.t.Errorf("consent page lacks %q", want)
		}
	}
	st, page, loc = a.visit(http.MethodPost, a.url+"/device/apps/consent", url.Values{"id": {id}, "action": {action}, "csrf_token": {a.b.csrfFromLastPage()}})
	if loc == "" {
		a.t.Fatalf("consent %s: %d, no redirect to the application: %s", action, st, page)
	}
	return mustURL(a.t, loc)
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func regexpFind(t testing.TB, s, re string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no %s in %s", re, s)
	}
	return m[1]
}

// code runs the browser part with PKCE and returns the code and the verifier.
func (a *appFixture) code(state string) (string, string) {
	a.t.Helper()
	v := oauth2.GenerateVerifier()
	back := a.authorize(a.conf.AuthCodeURL(state, oauth2.S256ChallengeOption(v)), "approve")
	if got := back.Query().Get("state"); got != state {
		a.t.Fatalf("state %q came back as %q (%s)", state, got, back)
	}
	if back.Scheme+"://"+back.Host+back.Path != appRedirect || back.Query().Get("code") == "" {
		a.t.Fatalf("sent back to %s, want %s with a code", back, appRedirect)
	}
	return back.Query().Get("code"), v
}

func (a *appFixture) exchange(code, verifier string) (*oauth2.Token, error) {
	return a.conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
}

// refresh forces a refresh_token grant, as an application does after a 401.
func (a *appFixture) refresh(rt string) (*oauth2.Token, error) {
	return a.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: rt, Expiry: time.Unix(1, 0)}).Token()
}

func oauthErr(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

func TestCodeFlowActsForTheUser(t *testing.T) {
	a := newAppFixture(t, nil)
	code, v := a.code("st-123")
	tok, err := a.exchange(code, v)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.RefreshToken, "lsa_") || tok.Extra("expires_in") != 3600.0 {
		t.Fatalf("token response: refresh %q expires_in %v", tok.RefreshToken, tok.Extra("expires_in"))
	}
	p, err := a.srv.Verify(context.Background(), tok.AccessToken)
	if err != nil || p.Kind != auth.KindUser || p.UserID != "alice" || p.ClientID != a.app.ClientID || !p.Delegated {
		t.Fatalf("Verify = %+v, %v; want alice via %s, delegated", p, err, a.app.ClientID)
	}
	if !p.Expiry.Equal(a.clock.Now().Add(time.Hour)) {
		t.Errorf("access token expires %v, want in 60 minutes", p.Expiry)
	}
	// Rotation: the new refresh token works, the old one is reuse and kills the grant.
	tok2, err := a.refresh(tok.RefreshToken)
	if err != nil || tok2.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh: %v (new token %q)", err, tok2.RefreshToken)
	}
	if p, err := a.srv.Verify(context.Background(), tok2.AccessToken); err != nil || p.UserID != "alice" {
		t.Fatalf("refreshed token: %+v, %v", p, err)
	}
	if _, err := a.refresh(tok.RefreshToken); oauthErr(err) != "invalid_grant" {
		t.Fatalf("reusing a rotated refresh token: %v, want invalid_grant", err)
	}
	if _, err := a.srv.Verify(context.Background(), tok2.AccessToken); err == nil {
		t.Error("after reuse the grant's access token still verifies")
	}
	if _, err := a.refresh(tok2.RefreshToken); oauthErr(err) != "invalid_grant" {
		t.Errorf("after reuse the newest refresh token: %v, want invalid_grant", err)
	}
}

func TestCodeFlowRequiresPKCE(t *testing.T) {
	a := newAppFixture(t, nil)
	for name, opts := range map[string][]oauth2.AuthCodeOption{
		"none":  nil,
		"plain": {oauth2.SetAuthURLParam("code_challenge", oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("code_challenge_method", "plain")},
	} {
		back := a.authorize(a.conf.AuthCodeURL("s-"+name, opts...), "approve")
		q := back.Query()
		if q.Get("error") != "invalid_request" || q.Get("state") != "s-"+name || q.Get("code") != "" || !strings.Contains(q.Get("error_description"), "S256") {
			t.Errorf("PKCE %s: sent back to %s, want error=invalid_request naming S256 and the state", name, back)
		}
	}
	// A verifier that does not match the challenge.
	code, _ := a.code("s")
	if _, err := a.exchange(code, oauth2.GenerateVerifier()); oauthErr(err) != "invalid_grant" {
		t.Fatalf("wrong code_verifier: %v, want invalid_grant", err)
	}
	if _, err := a.conf.Exchange(context.Background(), code); oauthErr(err) != "invalid_request" {
		t.Fatalf("no code_verifier: %v, want invalid_request", err)
	}
}

func TestCodeIsSingleUseAndReuseRevokes(t *testing.T) {
	a := newAppFixture(t, nil)
	code, v := a.code("s")
	tok, err := a.exchange(code, v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.exchange(code, v); oauthErr(err) != "invalid_grant" {
		t.Fatalf("second exchange: %v, want invalid_grant", err)
	}
	// RFC 6749 §4.1.2: what the code yielded is revoked.
	if _, err := a.srv.Verify(context.Background(), tok.AccessToken); err == nil {
		t.Error("the access token of a reused code still verifies")
	}
	if _, err := a.refresh(tok.RefreshToken); oauthErr(err) != "invalid_grant" {
		t.Errorf("the refresh token of a reused code: %v, want invalid_grant", err)
	}
	// A replayed callback yields no second code.
	st, _, loc := a.visit(http.MethodGet, a.url+"/oauth/authorize/callback?id=whatever", nil)
	if loc != "" || st < 400 {
		t.Errorf("callback with an unknown id: %d → %q", st, loc)
	}
}

func TestCodeExpiresAfterTenMinutes(t *testing.T) {
	a := newAppFixture(t, nil)
	code, v := a.code("s")
	a.clock.Advance(auth.CodeTTL)
	if _, err := a.exchange(code, v); oauthErr(err) != "invalid_grant" {
		t.Fatalf("exchange after 10 minutes: %v, want invalid_grant", err)
	}
	code, v = a.code("s")
	a.clock.Advance(auth.CodeTTL - time.Second)
	if _, err := a.exchange(code, v); err != nil {
		t.Fatalf("exchange within 10 minutes: %v", err)
	}
}

func TestRedirectURIIsBound(t *testing.T) {
	a := newAppFixture(t, nil)
	v := oauth2.GenerateVerifier()
	// An unregistered redirect URI: an error page, never a redirect (RFC 6749 §4.1.2.1).
	for _, bad := range []string{"http://127.0.0.1/other", "https://evil.example/callback"} {
		c := a.conf
		c.RedirectURL = bad
		st, page, loc := a.visit(http.MethodGet, c.AuthCodeURL("s", oauth2.S256ChallengeOption(v)), nil)
		if loc != "" || st != http.StatusBadRequest {
			t.Errorf("redirect_uri %s: %d → %q, want 400 and no redirect (%s)", bad, st, loc, page)
		}
	}
	// A loopback redirect may use any port (RFC 8252 §7.3); the exchange must name the same URI.
	c := a.conf
	c.RedirectURL = "http://127.0.0.1:49152/callback"
	back := a.authorize(c.AuthCodeURL("s", oauth2.S256ChallengeOption(v)), "approve")
	if back.Host != "127.0.0.1:49152" || back.Query().Get("code") == "" {
		t.Fatalf("loopback port: sent back to %s", back)
	}
	if _, err := a.conf.Exchange(context.Background(), back.Query().Get("code"), oauth2.VerifierOption(v)); oauthErr(err) != "invalid_grant" {
		t.Fatalf("exchange naming another redirect_uri: %v, want invalid_grant", err)
	}
}

func TestConsentDeniedAndCSRF(t *testing.T) {
	a := newAppFixture(t, nil)
	back := a.authorize(a.conf.AuthCodeURL("xyz", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), "deny")
	if q := back.Query(); q.Get("error") != "access_denied" || q.Get("state") != "xyz" || q.Get("code") != "" {
		t.Fatalf("deny sent back to %s, want error=access_denied&state=xyz", back)
	}
	// A consent posted without the page's CSRF token changes nothing.
	_, page, _ := a.visit(http.MethodGet, a.conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), nil)
	id := regexpFind(t, page, `name="id" value="([^"]+)"`)
	st, _, loc := a.visit(http.MethodPost, a.url+"/device/apps/consent", url.Values{"id": {id}, "action": {"approve"}, "csrf_token": {"forged"}})
	if st != http.StatusForbidden || loc != "" {
		t.Fatalf("forged consent: %d → %q, want 403", st, loc)
	}
	st, _, loc = a.visit(http.MethodGet, a.url+"/oauth/authorize/callback?id="+id, nil)
	if strings.Contains(loc, "code=") {
		t.Fatalf("the callback issued a code after a refused consent: %d %s", st, loc)
	}
}

func TestAppTokenExpiryRevocationAndRestart(t *testing.T) {
	store := auth.NewMemAppStore()
	a := newAppFixture(t, func(o *auth.Options) { o.AppStore = store })
	code, v := a.code("s")
	tok, err := a.exchange(code, v)
	if err != nil {
		t.Fatal(err)
	}
	// 60 minutes later the access token is dead and a refresh gives a live one.
	a.clock.Advance(time.Hour)
	if _, err := a.srv.Verify(context.Background(), tok.AccessToken); err == nil {
		t.Fatal("access token verifies after 60 minutes")
	}
	if tok, err = a.refresh(tok.RefreshToken); err != nil {
		t.Fatal(err)
	}
	// RFC 7009 revocation of the access token: 401 at once, the refresh token still works.
	revoke := func(token, hint string) {
		t.Helper()
		resp, err := http.PostForm(a.srv.RevokeURL(), url.Values{"token": {token}, "token_type_hint": {hint},
			"client_id": {a.app.ClientID}, "client_secret": {a.secret}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("revoke %s: %d", hint, resp.StatusCode)
		}
	}
	revoke(tok.AccessToken, "access_token")
	if _, err := a.srv.Verify(context.Background(), tok.AccessToken); err == nil {
		t.Fatal("revoked access token still verifies")
	}
	if tok, err = a.refresh(tok.RefreshToken); err != nil {
		t.Fatalf("refresh after the access token was revoked: %v", err)
	}
	// A restart with the same store keeps the registration and the grant.
	b := newFixture(t, func(o *auth.Options) { o.AppStore = store; o.Now = a.clock.Now })
	a2 := *a
	a2.fixture = b
	a2.conf.Endpoint.TokenURL = b.srv.TokenURL()
	if tok, err = a2.refresh(tok.RefreshToken); err != nil {
		t.Fatalf("refresh at the restarted server: %v", err)
	}
	if p, err := b.srv.Verify(context.Background(), tok.AccessToken); err != nil || p.UserID != "alice" {
		t.Fatalf("token from the restarted server: %+v, %v", p, err)
	}
	// Revoking the refresh token ends the grant.
	a2.revokeAt(t, b.srv.RevokeURL(), tok.RefreshToken)
	if _, err := a2.refresh(tok.RefreshToken); oauthErr(err) != "invalid_grant" {
		t.Fatalf("refresh after revocation: %v, want invalid_grant", err)
	}
	if _, err := b.srv.Verify(context.Background(), tok.AccessToken); err == nil {
		t.Fatal("access token of a revoked grant still verifies")
	}
}

func (a *appFixture) revokeAt(t *testing.T, u, token string) {
	t.Helper()
	resp, err := http.PostForm(u, url.Values{"token": {token}, "client_id": {a.app.ClientID}, "client_secret": {a.secret}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
}

func TestUserRevokesApp(t *testing.T) {
	a := newAppFixture(t, nil)
	code, v := a.code("s")
	tok, err := a.exchange(code, v)
	if err != nil {
		t.Fatal(err)
	}
	// Signed in on another browser: the page asks to sign in first.
	other := newAppFixture(t, nil)
	if st, page, _ := other.visit(http.MethodGet, other.url+"/device/apps", nil); st != http.StatusOK || !strings.Contains(page, `action="/device/apps/login"`) {
		t.Fatalf("your apps, signed out: %d %s", st, page)
	}
	st, page, _ := other.visit(http.MethodPost, other.url+"/device/apps/login", url.Values{"user": {"alice"}, "password": {alicePassword}, "csrf_token": {other.b.csrfFromLastPage()}})
	if st != http.StatusOK || !strings.Contains(page, "No application may act for you") {
		t.Fatalf("your apps after sign-in: %d %s", st, page)
	}
	st, page, _ = a.visit(http.MethodGet, a.url+"/device/apps", nil)
	if st != http.StatusOK || !strings.Contains(page, "Revoke Label Shop") {
		t.Fatalf("your apps page: %d %s", st, page)
	}
	st, page, _ = a.visit(http.MethodPost, a.url+"/device/apps/revoke", url.Values{"client_id": {a.app.ClientID}, "csrf_token": {a.b.csrfFromLastPage()}})
	if st != http.StatusOK || !strings.Contains(page, "Revoked") || strings.Contains(page, "Revoke Label Shop") {
		t.Fatalf("revoke: %d %s", st, page)
	}
	if _, err := a.srv.Verify(context.Background(), tok.AccessToken); err == nil {
		t.Fatal("access token verifies after the user revoked the app")
	}
	if _, err := a.refresh(tok.RefreshToken); oauthErr(err) != "invalid_grant" {
		t.Fatalf("refresh after the user revoked the app: %v, want invalid_grant", err)
	}
}

func TestRegisterAppRefusesBadInput(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct {
		r    auth.AppRegistration
		want string
	}{
		{auth.AppRegistration{RedirectURIs: []string{appRedirect}}, "client_name"},
		{auth.AppRegistration{Name: "x"}, "redirect_uris"},
		{auth.AppRegistration{Name: "x", RedirectURIs: []string{"/relative"}}, "redirect_uris[0]"},
		{auth.AppRegistration{Name: "x", RedirectURIs: []string{appRedirect, "https://a.example/cb#frag"}}, "redirect_uris[1]"},
		{auth.AppRegistration{Name: "x", RedirectURIs: []string{appRedirect}, IconURL: "javascript:alert(1)"}, "logo_uri"},
	} {
		if _, _, err := f.srv.RegisterApp(tc.r); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error naming %s", tc.r, err, tc.want)
		}
	}
}

func TestDeleteAppRevokesItsGrants(t *testing.T) {
	a := newAppFixture(t, nil)
	code, v := a.code("s")
	tok, err := a.exchange(code, v)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.srv.DeleteApp(a.app.ClientID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.srv.Verify(context.Background(), tok.AccessToken); err == nil {
		t.Fatal("a deleted app's access token still verifies")
	}
	if _, err := a.refresh(tok.RefreshToken); err == nil {
		t.Fatal("a deleted app refreshed")
	}
	if err := a.srv.DeleteApp(a.app.ClientID); !errors.Is(err, auth.ErrUnknownApp) {
		t.Fatalf("deleting twice: %v, want ErrUnknownApp", err)
	}
	// Its authorization requests are refused without a redirect: the client is unknown.
	st, _, loc := a.visit(http.MethodGet, a.conf.AuthCodeURL("s", oauth2.S256ChallengeOption(v)), nil)
	if loc != "" || st != http.StatusBadRequest {
		t.Fatalf("authorize for a deleted app: %d → %q, want 400 and no redirect", st, loc)
	}
}

func TestCodeIsBoundToItsClient(t *testing.T) {
	a := newAppFixture(t, nil)
	other, secret, err := a.srv.RegisterApp(auth.AppRegistration{Name: "Other", RedirectURIs: []string{appRedirect}})
	if err != nil {
		t.Fatal(err)
	}
	code, v := a.code("s")
	c := a.conf
	c.ClientID, c.ClientSecret = other.ClientID, secret
	if _, err := c.Exchange(context.Background(), code, oauth2.VerifierOption(v)); oauthErr(err) != "invalid_grant" {
		t.Fatalf("another client's exchange: %v, want invalid_grant", err)
	}
	c = a.conf
	c.ClientSecret = "wrong"
	if _, err := c.Exchange(context.Background(), code, oauth2.VerifierOption(v)); err == nil {
		t.Fatal("exchange with a wrong client secret succeeded")
	}
	if _, err := a.exchange(code, v); err != nil {
		t.Fatalf("the right client's exchange after the refusals: %v", err)
	}
}
