package auth_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"labelstation/devcloud/auth"
	"labelstation/devcloud/jobs/jobstest"
	"labelstation/devcloud/records"
	"labelstation/internal/pgtest"
)

// step is one browser request that follows no redirect: the status, the page and where it
// was sent, resolved against the request's URL.
func step(t *testing.T, c *http.Client, method, u string, form url.Values) (int, string, *url.URL) {
	t.Helper()
	var req *http.Request
	if method == http.MethodPost {
		req, _ = http.NewRequest(method, u, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req, _ = http.NewRequest(method, u, nil)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var loc *url.URL
	if l := resp.Header.Get("Location"); l != "" {
		loc = req.URL.ResolveReference(mustURL(t, l))
	}
	return resp.StatusCode, string(b), loc
}

func stepBrowser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func withStore(st records.Store) func(*auth.Options) {
	return func(o *auth.Options) { o.Records, o.AppStore = st, st.(auth.AppStore) }
}

// Two authorization servers on one PostgreSQL database, as replicas behind a load balancer
// with one public issuer: the authorization request reaches A, the consent page and the
// sign-in B, the code is issued by A, exchanged at B and refreshed at A; a token revoked at one
// is refused by the other, and a code presented again at A revokes the grant B verifies.
func TestCodeFlowAcrossReplicas(t *testing.T) {
	spec := pgtest.Database(t)
	a := newAppFixture(t, withStore(jobstest.Open(t, spec).(records.Store)))
	b := newFixture(t, func(o *auth.Options) {
		withStore(jobstest.Open(t, spec).(records.Store))(o)
		o.Issuer, o.Now = a.url, a.clock.Now
	})
	c := stepBrowser()
	v := oauth2.GenerateVerifier()
	st, page, loc := step(t, c, http.MethodGet, a.conf.AuthCodeURL("st-9", oauth2.S256ChallengeOption(v)), nil)
	if loc == nil || loc.Path != "/device/apps/consent" {
		t.Fatalf("authorization request at A: %d %s, want the consent page", st, page)
	}
	id := loc.Query().Get("id")
	loc = consentAt(t, c, b.url, id)
	if loc.Host != strings.TrimPrefix(a.url, "http://") {
		t.Fatalf("approval at B: redirect to %v, want the issuer's callback", loc)
	}
	_, page, loc = step(t, c, http.MethodGet, loc.String(), nil)
	if loc == nil || loc.Query().Get("code") == "" || loc.Query().Get("state") != "st-9" {
		t.Fatalf("callback at A: %v %s", loc, page)
	}
	code := loc.Query().Get("code")

	atB := *a
	atB.conf.Endpoint.TokenURL = b.srv.TokenURL()
	tok, err := atB.exchange(code, v)
	if err != nil {
		t.Fatalf("exchange at B of A's code: %v", err)
	}
	for name, srv := range map[string]*auth.Server{"A": a.srv, "B": b.srv} {
		if p, err := srv.Verify(context.Background(), tok.AccessToken); err != nil || p.UserID != "alice" || p.ClientID != a.app.ClientID {
			t.Fatalf("%s verifies B's token: %+v %v", name, p, err)
		}
	}
	atB.revokeAt(t, b.srv.RevokeURL(), tok.AccessToken)
	if _, err := a.srv.Verify(context.Background(), tok.AccessToken); err == nil {
		t.Fatal("A still accepts the access token revoked at B")
	}
	tok, err = a.refresh(tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh at A of B's refresh token: %v", err)
	}
	if _, err := b.srv.Verify(context.Background(), tok.AccessToken); err != nil {
		t.Fatalf("B verifies A's refreshed token: %v", err)
	}
	if _, err := a.exchange(code, v); oauthErr(err) != "invalid_grant" {
		t.Fatalf("code exchanged again at A: %v, want invalid_grant", err)
	}
	if _, err := b.srv.Verify(context.Background(), tok.AccessToken); err == nil {
		t.Fatal("B still accepts a token of the grant revoked by the code's reuse at A")
	}
}

// consentAt opens the consent page of request id at base, signs alice in there and allows;
// it returns where the browser is sent (the issuer's callback).
func consentAt(t *testing.T, c *http.Client, base, id string) *url.URL {
	t.Helper()
	consent := base + "/device/apps/consent?id=" + url.QueryEscape(id)
	st, page, _ := step(t, c, http.MethodGet, consent, nil)
	if st != http.StatusOK || !strings.Contains(page, "Label Shop") {
		t.Fatalf("consent page at %s: %d %s", base, st, page)
	}
	if strings.Contains(page, `action="/device/apps/login"`) {
		csrf := regexpFind(t, page, `name="csrf_token" value="([^"]+)"`)
		if st, page, _ = step(t, c, http.MethodPost, base+"/device/apps/login", url.Values{"user": {"alice"}, "password": {alicePassword},
			"id": {id}, "csrf_token": {csrf}}); st != http.StatusSeeOther {
			t.Fatalf("sign-in at %s: %d %s", base, st, page)
		}
		st, page, _ = step(t, c, http.MethodGet, consent, nil)
	}
	if st != http.StatusOK || !strings.Contains(page, `id="approve"`) {
		t.Fatalf("consent page at %s after sign-in: %d %s", base, st, page)
	}
	csrf := regexpFind(t, page, `name="csrf_token" value="([^"]+)"`)
	_, page, loc := step(t, c, http.MethodPost, base+"/device/apps/consent", url.Values{"id": {id}, "action": {"approve"}, "csrf_token": {csrf}})
	if loc == nil {
		t.Fatalf("approval at %s: no redirect: %s", base, page)
	}
	return loc
}

// devcloud restarts in the middle of the flow, on a durable store: between the authorization
// request and the consent, and between the code and its exchange. The flow finishes on the
// restarted server, and the spent code is still caught after one more restart.
func TestCodeFlowSurvivesRestart(t *testing.T) {
	jobstest.ForEach(t, func(t *testing.T, k jobstest.Kind) {
		if !k.Durable {
			t.Skip("the memory store does not outlive a restart")
		}
		r := newRestartable(t, k.Spec(t))
		app, secret, err := r.srv.RegisterApp(auth.AppRegistration{Name: "Label Shop", RedirectURIs: []string{appRedirect}})
		if err != nil {
			t.Fatal(err)
		}
		a := &appFixture{fixture: r.fixture, app: app, secret: secret}
		a.conf = oauth2.Config{ClientID: app.ClientID, ClientSecret: secret, Scopes: []string{auth.ScopePrinting}, RedirectURL: appRedirect,
			Endpoint: oauth2.Endpoint{AuthURL: r.srv.AuthorizeURL(), TokenURL: r.srv.TokenURL(), AuthStyle: oauth2.AuthStyleInParams}}
		c := stepBrowser()
		v := oauth2.GenerateVerifier()
		_, page, loc := step(t, c, http.MethodGet, a.conf.AuthCodeURL("st-4", oauth2.S256ChallengeOption(v)), nil)
		if loc == nil || loc.Query().Get("id") == "" {
			t.Fatalf("authorization request: %s", page)
		}
		r.restart()
		loc = consentAt(t, c, r.url, loc.Query().Get("id"))
		_, page, loc = step(t, c, http.MethodGet, loc.String(), nil)
		code := loc.Query().Get("code")
		if code == "" || loc.Query().Get("state") != "st-4" {
			t.Fatalf("callback after a restart: %v %s", loc, page)
		}
		r.restart()
		tok, err := a.exchange(code, v)
		if err != nil {
			t.Fatalf("exchange after a restart: %v", err)
		}
		if p, err := r.srv.Verify(context.Background(), tok.AccessToken); err != nil || p.UserID != "alice" {
			t.Fatalf("token: %+v %v", p, err)
		}
		r.restart()
		if p, err := r.srv.Verify(context.Background(), tok.AccessToken); err != nil || p.UserID != "alice" {
			t.Fatalf("application's access token after a restart: %+v %v", p, err)
		}
		if _, err := a.exchange(code, v); oauthErr(err) != "invalid_grant" {
			t.Fatalf("spent code after a restart: %v, want invalid_grant", err)
		}
		if _, err := r.srv.Verify(context.Background(), tok.AccessToken); err == nil {
			t.Fatal("the grant of a code presented twice is not revoked")
		}
	})
}

// A client-credentials token issued by one server on a shared PostgreSQL database verifies at
// the other, and revoked at that other one is refused by the one that issued it.
func TestClientCredentialsRevokedAcrossReplicas(t *testing.T) {
	spec := pgtest.Database(t)
	a := newFixture(t, withStore(jobstest.Open(t, spec).(records.Store)))
	b := newFixture(t, func(o *auth.Options) {
		withStore(jobstest.Open(t, spec).(records.Store))(o)
		o.Issuer, o.Now = a.url, a.clock.Now
	})
	cc := clientcredentials.Config{ClientID: "erp", ClientSecret: "s3cret-erp", TokenURL: a.srv.TokenURL()}
	tok, err := cc.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if p, err := b.srv.Verify(context.Background(), tok.AccessToken); err != nil || p.UserID != "bob" || p.ClientID != "erp" {
		t.Fatalf("B verifies A's token: %+v %v", p, err)
	}
	resp, err := http.PostForm(b.srv.RevokeURL(), url.Values{"token": {tok.AccessToken}, "client_id": {"erp"}, "client_secret": {"s3cret-erp"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke at B: %d", resp.StatusCode)
	}
	for name, srv := range map[string]*auth.Server{"A": a.srv, "B": b.srv} {
		if _, err := srv.Verify(context.Background(), tok.AccessToken); err == nil {
			t.Errorf("%s accepts the token revoked at B", name)
		}
	}
}
