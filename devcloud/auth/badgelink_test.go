package auth_test

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"labelstation/devcloud/badgelink"
)

// badgeFixture is the authorization server with the badge page on a registry of its own.
func badgeFixture(t *testing.T) (*fixture, *badgelink.Registry) {
	f := newFixture(t, nil)
	reg := badgelink.New(badgelink.Options{Now: f.clock.Now})
	f.srv.EnableBadgeLinks(reg)
	return f, reg
}

var codeField = regexp.MustCompile(`name="code" value="([^"]*)"`)

// signInForBadge opens the QR's URL and signs in on the form it shows.
func signInForBadge(t *testing.T, b *browser, u, user, password string) int {
	t.Helper()
	if st, page := b.get(u); st != http.StatusOK || !strings.Contains(page, `action="/device/badge/login"`) {
		t.Fatalf("QR URL: %d %s", st, page)
	}
	code := codeField.FindStringSubmatch(b.last)[1]
	st, _ := b.post("/device/badge/login", url.Values{"user": {user}, "password": {password}, "code": {code}, "csrf_token": {b.csrfFromLastPage()}})
	return st
}

func TestBadgePageNeedsSignInAndItsOwnForm(t *testing.T) {
	f, reg := badgeFixture(t)
	p, err := reg.Request("st-1", "9f2c00001a2b")
	if err != nil {
		t.Fatal(err)
	}
	u := f.url + "/device/badge?code=" + p.Code

	// Not signed in: a post links nothing.
	anon := newBrowser(t, f.url)
	anon.get(u)
	if st, page := anon.post("/device/badge", url.Values{"code": {p.Code}, "action": {"link"}, "csrf_token": {anon.csrfFromLastPage()}}); st != http.StatusUnauthorized || !strings.Contains(page, "Nothing was linked") {
		t.Fatalf("anonymous post: %d %s", st, page)
	}
	// A wrong password keeps the code on the form.
	wrong := newBrowser(t, f.url)
	if st := signInForBadge(t, wrong, u, "alice", "not-her-password"); st != http.StatusUnauthorized || !strings.Contains(wrong.last, p.Code) {
		t.Fatalf("wrong password: %d %s", st, wrong.last)
	}

	b := newBrowser(t, f.url)
	if st := signInForBadge(t, b, u, "alice", alicePassword); st != http.StatusOK || !strings.Contains(b.last, "…1a2b</span> to Alice?") {
		t.Fatalf("sign in: %d %s", st, b.last)
	}
	csrf := b.csrfFromLastPage()
	// A form from another site is refused.
	b.origin = "https://evil.example"
	if st, _ := b.post("/device/badge", url.Values{"code": {p.Code}, "action": {"link"}, "csrf_token": {csrf}}); st != http.StatusForbidden {
		t.Fatalf("cross-site post: %d", st)
	}
	b.origin = ""
	// Cancel links nothing and leaves the code usable.
	b.get(u)
	if st, page := b.post("/device/badge", url.Values{"code": {p.Code}, "action": {"cancel"}, "csrf_token": {b.csrfFromLastPage()}}); st != http.StatusOK || !strings.Contains(page, "Nothing was linked") {
		t.Fatalf("cancel: %d %s", st, page)
	}
	if _, ok, _ := reg.Owner(p.Badge); ok {
		t.Fatal("linked without a confirmation")
	}
	b.get(u)
	if st, page := b.post("/device/badge", url.Values{"code": {p.Code}, "action": {"link"}, "csrf_token": {b.csrfFromLastPage()}}); st != http.StatusOK || !strings.Contains(page, "Badge …1a2b is now linked to Alice") {
		t.Fatalf("confirm: %d %s", st, page)
	}
	if owner, _, _ := reg.Owner(p.Badge); owner != "alice" {
		t.Fatalf("owner %q, want alice", owner)
	}
}

func TestBadgePageHeadersAndEscaping(t *testing.T) {
	f, _ := badgeFixture(t)
	resp, err := http.Get(f.url + "/device/badge?code=" + url.QueryEscape(`"><script>alert(1)</script>`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(body), "<script>") {
		t.Fatal("the code parameter is reflected unescaped")
	}
	for h, want := range map[string]string{"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
}
