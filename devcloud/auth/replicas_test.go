package auth_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"labelstation/devcloud/auth"
	"labelstation/devcloud/jobs/jobstest"
	"labelstation/devcloud/records"
	"labelstation/internal/pgtest"
)

// replicaPair is two authorization servers on one PostgreSQL database behind one public
// issuer, as devcloud replicas behind a load balancer, sharing a clock.
func replicaPair(t *testing.T) (a, b *fixture) {
	t.Helper()
	spec := pgtest.Database(t)
	a = newFixture(t, withStore(jobstest.Open(t, spec).(records.Store)))
	b = newFixture(t, func(o *auth.Options) {
		withStore(jobstest.Open(t, spec).(records.Store))(o)
		o.Issuer, o.Now = a.url, a.clock.Now
	})
	b.clock = a.clock
	return a, b
}

// signInAt signs alice in on base's approval page for userCode and returns the page then shown.
func signInAt(t *testing.T, c *http.Client, base, userCode string) string {
	t.Helper()
	page := base + "/device?" + url.Values{"user_code": {userCode}}.Encode()
	st, body, _ := step(t, c, http.MethodGet, page, nil)
	if st != http.StatusOK || !strings.Contains(body, `action="/device/login"`) {
		t.Fatalf("sign-in page at %s: %d %s", base, st, body)
	}
	csrf := regexpFind(t, body, `name="csrf_token" value="([^"]+)"`)
	st, body, _ = step(t, c, http.MethodPost, base+"/device/login", url.Values{"user": {"alice"}, "password": {alicePassword},
		"user_code": {userCode}, "csrf_token": {csrf}})
	if st != http.StatusSeeOther {
		t.Fatalf("sign-in at %s: %d %s", base, st, body)
	}
	_, body, _ = step(t, c, http.MethodGet, page, nil)
	return body
}

// approveAt approves userCode on base's page with the session the browser already has,
// posting the page's CSRF form.
func approveAt(t *testing.T, c *http.Client, base, userCode string) {
	t.Helper()
	st, body, _ := step(t, c, http.MethodGet, base+"/device?"+url.Values{"user_code": {userCode}}.Encode(), nil)
	if st != http.StatusOK || !strings.Contains(body, `id="approve"`) {
		t.Fatalf("approval page at %s: %d, want the signed-in decision page: %s", base, st, body)
	}
	csrf := regexpFind(t, body, `name="csrf_token" value="([^"]+)"`)
	st, body, _ = step(t, c, http.MethodPost, base+"/device", url.Values{"user_code": {userCode}, "action": {"approve"}, "csrf_token": {csrf}})
	if st != http.StatusOK || !strings.Contains(body, "Approved.") {
		t.Fatalf("approve at %s: %d %s", base, st, body)
	}
}

// A station asks A for its code; the admin signs in on A's page and approves on B's (the
// session and its CSRF token are the store's); the station polls B and A at once: exactly one
// of them hands out tokens, both verify them, and neither answers the code again. A refresh at the other one works too.
func TestDeviceFlowAcrossReplicas(t *testing.T) {
	a, b := replicaPair(t)
	d := a.deviceCode("SER-R1")
	code, dc := d["user_code"].(string), d["device_code"].(string)

	c := stepBrowser()
	if page := signInAt(t, c, a.url, code); !strings.Contains(page, `id="approve"`) {
		t.Fatalf("after sign-in at A: %s", page)
	}
	approveAt(t, c, b.url, code)
	// Decided once: a second approval, on either replica, is refused.
	for _, srv := range []*auth.Server{a.srv, b.srv} {
		if err := srv.Approve(code, "alice"); !errors.Is(err, auth.ErrAlreadyDecided) {
			t.Fatalf("second approval: %v, want ErrAlreadyDecided", err)
		}
	}

	a.clock.Advance(5 * time.Second)
	type answer struct {
		status int
		body   map[string]any
	}
	answers := make([]answer, 2)
	var wg sync.WaitGroup
	for i, f := range []*fixture{b, a} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i].status, answers[i].body = f.poll(dc)
		}()
	}
	wg.Wait()
	var tok map[string]any
	for _, ans := range answers {
		switch {
		case ans.status == http.StatusOK && tok == nil:
			tok = ans.body
		case ans.status == http.StatusOK:
			t.Fatalf("both replicas handed out tokens for one device code: %v", answers)
		case ans.body["error"] != "invalid_grant" && ans.body["error"] != "slow_down":
			// slow_down: it came within the interval of the winning poll.
			t.Fatalf("the other poll: %d %v, want invalid_grant or slow_down", ans.status, ans.body)
		}
	}
	if tok == nil {
		t.Fatalf("no replica handed out tokens: %v", answers)
	}
	for name, f := range map[string]*fixture{"A": a, "B": b} {
		p, err := f.srv.Verify(context.Background(), tok["access_token"].(string))
		if err != nil || p.StationID != tok["station_id"] || p.Serial != "SER-R1" {
			t.Fatalf("%s verifies the station's token: %+v %v", name, p, err)
		}
		if st, m := f.poll(dc); m["error"] != "invalid_grant" {
			t.Fatalf("device code polled again at %s: %d %v", name, st, m)
		}
	}
	// Whichever replica issued the refresh token, both can rotate the chain.
	st, t2 := a.refresh(tok["refresh_token"].(string))
	if st != http.StatusOK {
		t.Fatalf("refresh at A: %d %v", st, t2)
	}
	st, t3 := b.refresh(t2["refresh_token"].(string))
	if st != http.StatusOK || t3["station_id"] != tok["station_id"] {
		t.Fatalf("refresh at B of A's refresh token: %d %v", st, t3)
	}
	if _, m := a.refresh(t2["refresh_token"].(string)); m["error"] != "invalid_grant" {
		t.Fatalf("reuse at A of a token B rotated: %v, want invalid_grant", m)
	}
	if _, err := b.srv.Verify(context.Background(), t3["access_token"].(string)); err == nil {
		// B holds this token in memory; the reuse at A revoked its grant in the store.
		a.clock.Advance(auth.RevocationRecheck)
		if _, err := b.srv.Verify(context.Background(), t3["access_token"].(string)); err == nil {
			t.Fatal("B still accepts a token of the grant revoked by reuse at A")
		}
	}
}

// A browser signed in at A is signed in at B, and signing out at B signs it out at A.
func TestSessionAcrossReplicas(t *testing.T) {
	a, b := replicaPair(t)
	code := a.deviceCode("SER-R2")["user_code"].(string)
	c := stepBrowser()
	signInAt(t, c, a.url, code)
	st, body, _ := step(t, c, http.MethodGet, b.url+"/device?user_code="+url.QueryEscape(code), nil)
	if st != http.StatusOK || !strings.Contains(body, "Signed in as <b>Alice</b>") {
		t.Fatalf("B's page for a browser signed in at A: %d %s", st, body)
	}
	csrf := regexpFind(t, body, `name="csrf_token" value="([^"]+)"`)
	if st, body, _ = step(t, c, http.MethodPost, b.url+"/device/logout", url.Values{"csrf_token": {csrf}}); st != http.StatusSeeOther {
		t.Fatalf("sign-out at B: %d %s", st, body)
	}
	_, body, _ = step(t, c, http.MethodGet, a.url+"/device?user_code="+url.QueryEscape(code), nil)
	if !strings.Contains(body, `action="/device/login"`) {
		t.Fatalf("A's page after sign-out at B: %s, want the sign-in form", body)
	}
	// An expired session is refused everywhere.
	signInAt(t, c, b.url, code)
	a.clock.Advance(8*time.Hour + time.Second)
	if _, body, _ = step(t, c, http.MethodGet, a.url+"/device?user_code="+url.QueryEscape(code), nil); !strings.Contains(body, `action="/device/login"`) {
		t.Fatalf("A's page after the session expired: %s, want the sign-in form", body)
	}
}

// A station's token that B holds in memory (B issued it) is refused by B at most
// RevocationRecheck after A revoked the station; its refresh at B is refused at once.
func TestStationRevokedAcrossReplicas(t *testing.T) {
	a, b := replicaPair(t)
	tok := b.enroll("SER-R3")
	at := tok["access_token"].(string)
	for name, f := range map[string]*fixture{"A": a, "B": b} {
		if _, err := f.srv.Verify(context.Background(), at); err != nil {
			t.Fatalf("%s before revocation: %v", name, err)
		}
	}
	if n := a.srv.RevokeStation(tok["station_id"].(string)); n != 1 {
		t.Fatalf("A revoked %d grants of a station B enrolled, want 1", n)
	}
	if _, m := b.refresh(tok["refresh_token"].(string)); m["error"] != "invalid_grant" {
		t.Fatalf("refresh at B after revocation at A: %v, want invalid_grant", m)
	}
	a.clock.Advance(auth.RevocationRecheck)
	for name, f := range map[string]*fixture{"A": a, "B": b} {
		if _, err := f.srv.Verify(context.Background(), at); !errors.Is(err, auth.ErrInvalidToken) {
			t.Fatalf("%s %v after revocation at A: %v, want ErrInvalidToken", name, auth.RevocationRecheck, err)
		}
	}
}

// devcloud restarts in the middle of a pairing: the station has its code, the admin signed in
// before the restart approves after it with the same browser session, and the station's next
// poll gets its tokens.
func TestPairingSurvivesRestart(t *testing.T) {
	jobstest.ForEach(t, func(t *testing.T, k jobstest.Kind) {
		if !k.Durable {
			t.Skip("the memory store does not outlive a restart")
		}
		r := newRestartable(t, k.Spec(t))
		d := r.deviceCode("SER-RS")
		code, dc := d["user_code"].(string), d["device_code"].(string)
		c := stepBrowser()
		signInAt(t, c, r.url, code)
		r.restart()
		approveAt(t, c, r.url, code)
		r.restart()
		r.clock.Advance(5 * time.Second)
		st, tok := r.poll(dc)
		if st != http.StatusOK || tok["station_id"] == nil {
			t.Fatalf("poll after restarts: %d %v", st, tok)
		}
		if p, err := r.srv.Verify(context.Background(), tok["access_token"].(string)); err != nil || p.Serial != "SER-RS" {
			t.Fatalf("token: %+v %v", p, err)
		}
		if polls := r.srv.Polls(code); len(polls) != 1 || polls[0].Outcome != "approved" {
			t.Fatalf("polls recorded: %+v", polls)
		}
	})
}

// Ended device authorizations and expired sessions do not stay in the store: the next code or
// session a minute later sweeps them.
func TestSweepsEndedPairingsAndSessions(t *testing.T) {
	st := records.NewMem()
	f := newFixture(t, func(o *auth.Options) { o.Records = st })
	count := func(kind string) int {
		all, err := st.ListRecords(kind)
		if err != nil {
			t.Fatal(err)
		}
		return len(all)
	}
	code := f.deviceCode("SER-SW")["user_code"].(string)
	signInAt(t, stepBrowser(), f.url, code)
	if count("auth.device") != 1 || count("auth.usercode") != 1 || count("auth.session") != 1 {
		t.Fatalf("before expiry: %d devices, %d user codes, %d sessions", count("auth.device"), count("auth.usercode"), count("auth.session"))
	}
	f.clock.Advance(8*time.Hour + time.Minute)
	f.deviceCode("SER-SW2")
	step(t, stepBrowser(), http.MethodGet, f.url+"/device", nil)
	if count("auth.device") != 1 || count("auth.usercode") != 1 || count("auth.session") != 1 {
		t.Fatalf("after expiry: %d devices, %d user codes, %d sessions, want only the new ones", count("auth.device"), count("auth.usercode"), count("auth.session"))
	}
}
