package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"labelstation/devcloud"
	"labelstation/devcloud/broker"
	"labelstation/devcloud/seed"
	"labelstation/station"
)

// The station against an OpenID Provider this project did not write: the example OP that ships
// with github.com/zitadel/oidc (its exampleop and storage packages, unmodified). Its main program
// registers no client allowed the device grant, so the test does what an admin does on any
// server — register one public client for stations with the device and refresh grants and JWT
// access tokens — and one account per station, whose id is the `sub` the station takes as its id.

const exampleStationUser = "station-0001"

// stationClient is the admin's client registration: public (no secret), device and refresh
// grants, JWT access tokens the broker can verify by the issuer's keys.
type stationClient struct{ op.Client }

func (stationClient) AuthMethod() oidc.AuthMethod { return oidc.AuthMethodNone }
func (stationClient) ApplicationType() op.ApplicationType {
	return op.ApplicationTypeNative // public: the library requires no secret from these
}
func (stationClient) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeDeviceCode, oidc.GrantTypeRefreshToken}
}
func (stationClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }

// exampleStorage is the example's storage with the station client registered. The example does
// not record which client a device-flow grant belongs to (its getInfoFromRequest knows only the
// code and refresh flows), so every refresh after a device grant fails with invalid_grant;
// fixClientID, when set, fills the client id in on the way out, as a fixed server would.
type exampleStorage struct {
	*storage.Storage
	fixClientID *atomic.Bool
}

type refreshWithClient struct{ op.RefreshTokenRequest }

func (refreshWithClient) GetClientID() string { return "station" }

func (s exampleStorage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	r, err := s.Storage.TokenRequestByRefreshToken(ctx, token)
	if err != nil || !s.fixClientID.Load() || r.GetClientID() != "" {
		return r, err
	}
	return refreshWithClient{r}, nil
}

func (s exampleStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil || id != "station" {
		return c, err
	}
	return stationClient{c}, nil
}

// lossyTokenEndpoint passes everything to the OP, but can let the OP rotate a refresh token and
// then lose its answer, as a dropped connection would.
type lossyTokenEndpoint struct {
	next      http.Handler
	drop      atomic.Bool
	refreshes atomic.Int32
	dropped   chan struct{}
}

func (l *lossyTokenEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/token") {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if form, _ := url.ParseQuery(string(body)); form.Get("grant_type") == "refresh_token" {
			l.refreshes.Add(1)
			if l.drop.CompareAndSwap(true, false) {
				rec := &discardResponse{h: http.Header{}}
				l.next.ServeHTTP(rec, r)
				close(l.dropped)
				panic(http.ErrAbortHandler)
			}
		}
	}
	l.next.ServeHTTP(w, r)
}

type discardResponse struct {
	h      http.Header
	status int
}

func (d *discardResponse) Header() http.Header         { return d.h }
func (d *discardResponse) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardResponse) WriteHeader(s int)           { d.status = s }

// startExampleOP serves the example OP on loopback; the station account's password is returned.
func startExampleOP(t *testing.T, fixClientID *atomic.Bool) (issuer, password string, lossy *lossyTokenEndpoint) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer = "http://" + ln.Addr().String()
	password = fmt.Sprintf("pw-%d", time.Now().UnixNano())
	users, _ := json.Marshal(map[string]storage.User{exampleStationUser: {ID: exampleStationUser, Username: exampleStationUser, Password: password}})
	path := filepath.Join(t.TempDir(), "users.json")
	if err := os.WriteFile(path, users, 0o600); err != nil {
		t.Fatal(err)
	}
	us, err := storage.StoreFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	storage.RegisterClients(storage.DeviceClient("station", ""))
	router := exampleop.SetupServer(issuer, exampleStorage{storage.NewStorage(us), fixClientID}, nil, false)
	lossy = &lossyTokenEndpoint{next: router, dropped: make(chan struct{})}
	srv := &http.Server{Handler: lossy, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return issuer, password, lossy
}

// approveAtExampleOP does what the admin does in a browser: open the QR code's URL, sign in as
// the station's account on the example's login page, and press Allow on its consent page.
func approveAtExampleOP(t *testing.T, code station.PairingCode, password string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 15 * time.Second}
	page := func(resp *http.Response, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %s\n%s", resp.Request.Method, resp.Request.URL, resp.Status, b)
		}
		return string(b)
	}
	if code.URIComplete == "" {
		t.Fatal("the example OP sent no verification_uri_complete")
	}
	login := page(hc.Get(code.URIComplete))
	m := regexp.MustCompile(`<form method="POST" action="([^"]+)"`).FindStringSubmatch(login)
	if m == nil || !strings.Contains(login, code.UserCode) {
		t.Fatalf("no login form for %s on the device page:\n%s", code.UserCode, login)
	}
	base, _ := url.Parse(code.URIComplete)
	action, _ := base.Parse(m[1])
	consent := page(hc.PostForm(action.String(), url.Values{"user_code": {code.UserCode}, "username": {exampleStationUser}, "password": {password}}))
	m = regexp.MustCompile(`location.href='([^']*action=allowed)'`).FindStringSubmatch(consent)
	if m == nil {
		t.Fatalf("no Allow button on the consent page:\n%s", consent)
	}
	allow, _ := action.Parse(m[1])
	if done := page(hc.Get(allow.String())); !strings.Contains(done, "allowed") {
		t.Fatalf("approval not confirmed: %s", done)
	}
}

func TestEnrollWithThirdPartyOpenIDProvider(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var fixClientID atomic.Bool
	issuer, password, lossy := startExampleOP(t, &fixClientID)

	// devcloud's broker, letting the example OP's stations in by its key set.
	sd, err := seed.Load(filepath.Join("..", "..", "examples", "devcloud-seed.json"))
	if err != nil {
		t.Fatal(err)
	}
	httpLn, _ := net.Listen("tcp", "127.0.0.1:0")
	mqttLn, _ := net.Listen("tcp", "127.0.0.1:0")
	ext := &broker.JWKSOptions{Issuer: issuer, Audience: "station", StationClaim: "sub"}
	var cloudLog bytes.Buffer
	c, err := devcloud.Start(ctx, devcloud.Options{HTTP: httpLn, MQTT: mqttLn, Seed: sd, External: ext,
		ServiceClientID: fmt.Sprintf("devcloud-%d", time.Now().UnixNano()), Logger: testLogger(lockedWriter(&cloudLog))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		if t.Failed() {
			t.Logf("devcloud log:\n%s", cloudLog.String())
		}
	})

	h := startStation(t, ctx, c, "10000000c0ffee01", flags{Issuer: issuer, tokenCheck: 100 * time.Millisecond})
	online := func(m station.Model) bool { return m.Phase == station.Idle && m.Online }

	// Enrollment through the example's own pages; the broker takes the token.
	approveAtExampleOP(t, h.pairingCode().Code, password)
	h.models.waitFor(t, "online with the example OP's token", online)
	if id := h.app.Prov.StationID(); id != exampleStationUser {
		t.Fatalf("station id %q, want the sub of the approving account %q", id, exampleStationUser)
	}

	// The example as shipped refuses every refresh after a device grant (invalid_grant): the
	// station discards the dead grant and pairs again, as the same account.
	h.app.Prov.Invalidate()
	approveAtExampleOP(t, h.pairingCode().Code, password)
	h.models.waitFor(t, "online after the example's refusal of the refresh", online)
	if id := h.app.Prov.StationID(); id != exampleStationUser {
		t.Fatalf("station id %q, want %q", id, exampleStationUser)
	}

	// With the client id recorded, refresh works, with rotation; the new token opens the broker.
	fixClientID.Store(true)
	verify, err := broker.NewJWKS(*ext)
	if err != nil {
		t.Fatal(err)
	}
	before, err := h.app.Prov.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h.app.Prov.Invalidate()
	after, err := h.app.Prov.Token(ctx)
	if err != nil {
		t.Fatalf("refresh at the example OP: %v", err)
	}
	if after.AccessToken == before.AccessToken || after.RefreshToken == before.RefreshToken {
		t.Fatal("refresh did not rotate the tokens")
	}
	if id, err := verify.Verify(ctx, after.AccessToken); err != nil || id != exampleStationUser {
		t.Fatalf("refreshed token at the broker's verifier: %q, %v", id, err)
	}

	// The OP rotates the refresh token but the answer is lost: the station retries with the old
	// one, the OP refuses its reuse, and the station pairs again — as the same account.
	lossy.drop.Store(true)
	h.app.Prov.Invalidate()
	select {
	case <-lossy.dropped:
	case <-ctx.Done():
		t.Fatal("the station never refreshed")
	}
	code := h.pairingCode().Code
	if n := lossy.refreshes.Load(); n < 4 {
		t.Fatalf("%d refresh requests; want the lost one and its retry with the old token", n)
	}
	approveAtExampleOP(t, code, password)
	h.models.waitFor(t, "online again after re-enrollment", online)
	if id := h.app.Prov.StationID(); id != exampleStationUser {
		t.Fatalf("after re-enrollment station id %q, want %q", id, exampleStationUser)
	}
	tok, err := h.app.Prov.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verify.Verify(ctx, tok.AccessToken); err != nil {
		t.Fatalf("re-enrolled token: %v", err)
	}
	h.stop() // the log is complete and no longer written
	if !strings.Contains(h.logs.String(), "re-enrollment needed") {
		t.Fatal("no log line about the refused refresh token")
	}
}

// The example OP's own program, built and run unmodified: it registers no client allowed the
// device grant, so it answers the device request with unauthorized_client. The station shows
// that on its setup-problem screen instead of cycling codes.
func TestUnmodifiedExampleServerIsASetupProblem(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("needs the go tool to build github.com/zitadel/oidc/v3/example/server; put go on PATH")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "example-op")
	build := exec.CommandContext(ctx, gobin, "build", "-o", bin, "github.com/zitadel/oidc/v3/example/server")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the example OP: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	var opLog bytes.Buffer
	srv := exec.CommandContext(ctx, bin)
	srv.Env = append(os.Environ(), "PORT="+port)
	srv.Stdout, srv.Stderr = lockedWriter(&opLog), lockedWriter(&opLog)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Process.Kill()
		srv.Wait()
		if t.Failed() {
			t.Logf("example OP log:\n%s", opLog.String())
		}
	})

	c := startCloud(t, ctx, cloudOpts{}, io.Discard)
	// Its issuer is http://localhost:PORT/; "native" is its public client.
	cloud := fmt.Sprintf(`{"issuer":"http://localhost:%s/","broker":%q,"client_id":"native"}`, port, c.BrokerURL)
	h := runStationCloud(t, ctx, c, cloud, `"board":{"kind":"sim","serial":"10000000c0ffee02"},
	  "printer":{"url":"tcp://127.0.0.1:9","lang":"zpl","dpi":203}`, flags{Sim: true, Web: "127.0.0.1:0"})
	m := h.models.waitFor(t, "the setup-problem screen", phase(station.SetupProblem))
	if m.Setup != "unauthorized_client" {
		t.Fatalf("setup problem %q, want unauthorized_client", m.Setup)
	}
	if v := station.ViewOf(m, time.Now(), ""); v.Title != "Setup problem" || !strings.Contains(strings.Join(v.Lines, " "), "Tell IT: unauthorized_client") {
		t.Fatalf("screen %q %q", v.Title, v.Lines)
	}
	h.stop() // the log is complete and no longer written
	if !strings.Contains(h.logs.String(), "setup problem") {
		t.Fatal("no log line for the setup problem")
	}
}
