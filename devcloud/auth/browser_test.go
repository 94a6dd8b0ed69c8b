package auth_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// browser is an HTTP client with cookies, as a person's browser on the approval page.
type browser struct {
	t        testing.TB
	base     string
	c        *http.Client
	last     string // body of the last page
	csrf     string // CSRF token of the signed-in session
	origin   string // Origin header to send, "" for none
	onCookie func(*http.Cookie)
}

func newBrowser(t testing.TB, base string) *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, base: base}
	b.c = &http.Client{Jar: jar}
	return b
}

func (b *browser) do(req *http.Request) (int, string) {
	b.t.Helper()
	if b.origin != "" {
		req.Header.Set("Origin", b.origin)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	if b.onCookie != nil {
		// Cookies set by the first response of a redirect chain.
		r := resp
		for r.Request.Response != nil {
			r = r.Request.Response
		}
		for _, c := range r.Cookies() {
			if c.MaxAge >= 0 {
				b.onCookie(c)
			}
		}
	}
	body, _ := io.ReadAll(resp.Body)
	b.last = string(body)
	return resp.StatusCode, b.last
}

func (b *browser) get(u string) (int, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) (int, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func (b *browser) csrfFromLastPage() string {
	m := csrfRE.FindStringSubmatch(b.last)
	if m == nil {
		b.t.Fatalf("no CSRF token on the page: %s", b.last)
	}
	return m[1]
}

// signIn opens the approval page for code and signs in with the form, as a person would.
func (b *browser) signIn(user, password, code string) {
	b.t.Helper()
	b.get(b.base + "/device?user_code=" + url.QueryEscape(code))
	st, page := b.post("/device/login", url.Values{"user": {user}, "password": {password}, "user_code": {code}, "csrf_token": {b.csrfFromLastPage()}})
	if st != http.StatusOK || !strings.Contains(page, "Signed in as") {
		b.t.Fatalf("sign in as %s: %d %s", user, st, page)
	}
	b.csrf = b.csrfFromLastPage()
}
