package devcloud

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"labelstation/internal/pgtest"
)

// Two devclouds on one PostgreSQL database: a station asks A for its pairing code, alice signs
// in on A's approval page and approves on B's with the same browser (the session and its CSRF
// token are the store's), and the station's polls at B and A at once get tokens exactly once.
func TestPairingAcrossReplicas(t *testing.T) {
	spec := pgtest.Database(t)
	sa, sb := openStore(t, spec), openStore(t, spec)
	t.Cleanup(func() { sa.Close(); sb.Close() })
	a, b := linkOn(t, startCloudOn(t, sa), "PAIR-A"), linkOn(t, startCloudOn(t, sb), "PAIR-B")

	d := postForm(t, a.c.Auth.DeviceAuthURL(), url.Values{"client_id": {"station"}, "scope": {"printing offline_access"}, "serial_number": {"PAIR-X"}})
	code, dc := d["user_code"].(string), d["device_code"].(string)

	p := a.phone(t)
	if st := p.get(a.c.URL + "/device?user_code=" + url.QueryEscape(code)); st != http.StatusOK || !strings.Contains(p.last, `action="/device/login"`) {
		t.Fatalf("A's approval page: %d %s", st, p.last)
	}
	if st := p.post("/device/login", url.Values{"user": {"alice"}, "password": {a.password("alice")}, "user_code": {code}, "csrf_token": {p.csrf()}}); st != http.StatusOK || !strings.Contains(p.last, `id="approve"`) {
		t.Fatalf("sign-in at A: %d %s", st, p.last)
	}
	p.base = b.c.URL
	if st := p.get(b.c.URL + "/device?user_code=" + url.QueryEscape(code)); st != http.StatusOK || !strings.Contains(p.last, `id="approve"`) {
		t.Fatalf("B's approval page for a browser signed in at A: %d %s", st, p.last)
	}
	if st := p.post("/device", url.Values{"user_code": {code}, "action": {"approve"}, "csrf_token": {p.csrf()}}); st != http.StatusOK || !strings.Contains(p.last, "Approved.") {
		t.Fatalf("approve at B: %d %s", st, p.last)
	}

	a.clock.Advance(6 * time.Second)
	b.clock.Advance(6 * time.Second)
	type answer struct {
		status int
		body   map[string]any
	}
	answers := make([]answer, 2)
	var wg sync.WaitGroup
	for i, u := range []string{b.c.Auth.TokenURL(), a.c.Auth.TokenURL()} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.PostForm(u, url.Values{"client_id": {"station"},
				"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {dc}})
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			answers[i].status = resp.StatusCode
			json.NewDecoder(resp.Body).Decode(&answers[i].body)
		}()
	}
	wg.Wait()
	granted := 0
	for _, ans := range answers {
		switch {
		case ans.status == http.StatusOK && ans.body["access_token"] != nil:
			granted++
		case ans.body["error"] != "invalid_grant" && ans.body["error"] != "slow_down":
			t.Fatalf("the losing poll: %d %v, want invalid_grant or slow_down", ans.status, ans.body)
		}
	}
	if granted != 1 {
		t.Fatalf("%d token grants for one device code (B, A): %v", granted, answers)
	}
}
