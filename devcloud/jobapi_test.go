package devcloud

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"labelstation/devcloud/auth"
	"labelstation/devcloud/jobs"
	"labelstation/devcloud/seed"
)

// An application's token names it: its job carries the app and the seed's retention for it,
// and the job's callback, signed with the app's client secret, tells the app the job was
// cancelled.
func TestJobCallbackSignedWithAppSecret(t *testing.T) {
	sd, err := seed.Load(filepath.Join("..", "examples", "devcloud-seed.json"))
	if err != nil {
		t.Fatal(err)
	}
	sd.Apps[0].Retention = "90m"
	h, _ := net.Listen("tcp", "127.0.0.1:0")
	m, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Start(ctx, Options{HTTP: h, MQTT: m, Seed: sd, JobAPI: jobs.APIOptions{Retention: 3 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })

	type call struct {
		sig  string
		body []byte
	}
	calls := make(chan call, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		calls <- call{r.Header.Get(jobs.HeaderSignature), b}
	}))
	defer hook.Close()

	app := sd.Apps[0] // warehouse-app, alice's
	tok, err := AppToken(ctx, c.Auth.TokenURL(), app.ClientID, app.Secret)
	if err != nil {
		t.Fatal(err)
	}
	v := url.Values{"title": {"t"}, "format": {"shipping"}, "data": {"name,street,zip,city,tracking\nA,s,1,c,1\n"}, "callback": {hook.URL}}
	status, b, hdr := do(t, form(t, c, tok, v))
	var j jobs.Job
	if err := json.Unmarshal(b, &j); status != http.StatusCreated || err != nil {
		t.Fatalf("submit: %d %s", status, b)
	}
	if j.App != app.ClientID || j.Expires.Sub(j.Created) != 90*time.Minute || hdr.Get("X-RateLimit-Limit") == "" {
		t.Fatalf("job %+v (headers %v): want app %s, 90 min retention, rate limit headers", j, hdr, app.ClientID)
	}
	req, _ := http.NewRequest(http.MethodDelete, c.URL+"/v1/jobs/"+j.ID, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if status, b, _ := do(t, req); status != http.StatusOK {
		t.Fatalf("cancel: %d %s", status, b)
	}
	select {
	case got := <-calls:
		if err := jobs.VerifyCallback(app.Secret, got.sig, got.body, time.Now(), jobs.DefaultCallbackTolerance); err != nil {
			t.Fatalf("callback: %v", err)
		}
		var body jobs.CallbackBody
		if err := json.Unmarshal(got.body, &body); err != nil || body.Event != jobs.EventCancelled || body.Job.ID != j.ID {
			t.Fatalf("callback body %s: %v", got.body, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no callback")
	}
}

// An application registered over the API (not seeded) can ask for callbacks: they are signed
// with the hex SHA-256 of its client secret, the only form devcloud keeps.
func TestRegisteredAppCallbackKey(t *testing.T) {
	sd, err := seed.Load(filepath.Join("..", "examples", "devcloud-seed.json"))
	if err != nil {
		t.Fatal(err)
	}
	h, _ := net.Listen("tcp", "127.0.0.1:0")
	m, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Start(ctx, Options{HTTP: h, MQTT: m, Seed: sd})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	reg, secret, err := c.Auth.RegisterApp(auth.AppRegistration{Name: "Shop", RedirectURIs: []string{"http://127.0.0.1/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	apps := appsOf{c.Apps, c.Auth}
	got, ok := apps.App(reg.ClientID)
	sum := sha256.Sum256([]byte(secret))
	if !ok || got.Secret != hex.EncodeToString(sum[:]) {
		t.Fatalf("registered app: %+v %v; want its secret's SHA-256 as the callback key", got, ok)
	}
	if _, ok := apps.App("no-such-app"); ok {
		t.Fatal("an unknown application was found")
	}
	if got, ok := apps.App(sd.Apps[0].ClientID); !ok || got.Secret != sd.Apps[0].Secret {
		t.Fatalf("seeded app: %+v %v; want its own secret", got, ok)
	}
}
