package provisioning

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"labelstation/devcloud/auth"
)

// fakeClock advances only when someone waits on it, and then at once: the
// provisioner's sleeps cost no real time and the server sees the same time.
type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	waits []time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	c.waits = append(c.waits, d)
	ch := make(chan time.Time, 1)
	ch <- c.t
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// syncBuffer collects the logs of a test run.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is a devcloud auth server on a real loopback listener plus a
// provisioner talking to it, sharing one fake clock and one log.
type env struct {
	t     testing.TB
	clock *fakeClock
	srv   *auth.Server
	url   string
	logs  *syncBuffer
	log   *slog.Logger
	dir   string
}

func newEnv(t testing.TB, opt auth.Options) *env {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, clock: newFakeClock(), logs: &syncBuffer{}, dir: t.TempDir()}
	e.log = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.url = "http://" + ln.Addr().String()
	opt.Issuer = e.url
	opt.Now = e.clock.Now
	opt.Logger = e.log
	if opt.Users == nil {
		h, err := auth.HashGeneratedPassword(adminPassword)
		if err != nil {
			t.Fatal(err)
		}
		opt.Users = []auth.User{{ID: "alice", Name: "Alice Admin", PasswordHash: h}}
	}
	e.srv, err = auth.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(e.srv.Handler())
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	t.Cleanup(hs.Close)
	return e
}

func (e *env) provisioner(serial string, mod func(*Config)) *Provisioner {
	e.t.Helper()
	cfg := Config{
		DeviceAuthURL: e.srv.DeviceAuthURL(),
		TokenURL:      e.srv.TokenURL(),
		Serial:        serial,
		StateDir:      filepath.Join(e.dir, "state"),
		HTTPClient:    &http.Client{Timeout: 10 * time.Second},
		Now:           e.clock.Now,
		After:         e.clock.After,
		Logger:        e.log,
	}
	if mod != nil {
		mod(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// adminPassword is alice's password on the test server.
const adminPassword = "alice-test-password"

// approve approves a code the way a script does: POST /device/approve as alice.
func (e *env) approve(userCode string) {
	e.t.Helper()
	e.decide("/device/approve", userCode)
}

func (e *env) deny(userCode string) {
	e.t.Helper()
	e.decide("/device/deny", userCode)
}

func (e *env) decide(path, userCode string) {
	e.t.Helper()
	b, _ := json.Marshal(map[string]string{"user_code": userCode})
	req, _ := http.NewRequest(http.MethodPost, e.url+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("alice", adminPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("%s %s: status %d", path, userCode, resp.StatusCode)
	}
}

// enroll runs Enroll, approving the first code shown.
func (e *env) enroll(p *Provisioner) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Enroll(ctx, func(c Code) { e.approve(c.UserCode) }); err != nil {
		e.t.Fatalf("Enroll: %v", err)
	}
}

func (e *env) token(p *Provisioner) string {
	e.t.Helper()
	tok, err := p.Token(context.Background())
	if err != nil {
		e.t.Fatalf("Token: %v", err)
	}
	return tok.AccessToken
}

func (e *env) tokenFile() tokenFile {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, "state", TokenFile))
	if err != nil {
		e.t.Fatal(err)
	}
	var tf tokenFile
	if err := json.Unmarshal(b, &tf); err != nil {
		e.t.Fatal(err)
	}
	return tf
}

// assertNoSecrets fails if any token value appears in the logs.
func (e *env) assertNoSecrets(secrets ...string) {
	e.t.Helper()
	logs := e.logs.String()
	if logs == "" {
		e.t.Fatal("no logs captured; the scan would prove nothing")
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			e.t.Errorf("a token value appears in the logs")
		}
	}
}

func TestEnrollRefreshVerify(t *testing.T) {
	e := newEnv(t, auth.Options{})
	p := e.provisioner("10000000abcdef01", nil)
	if p.Enrolled() {
		t.Fatal("Enrolled before Enroll")
	}
	if _, err := p.Token(context.Background()); !errors.Is(err, ErrNotEnrolled) {
		t.Fatalf("Token before Enroll: %v, want ErrNotEnrolled", err)
	}
	e.enroll(p)
	if !p.Enrolled() {
		t.Fatal("not Enrolled after Enroll")
	}
	id := p.StationID()
	if !strings.HasPrefix(id, "st-") {
		t.Fatalf("StationID = %q", id)
	}
	if got, _ := e.srv.StationBySerial("10000000abcdef01"); got != id {
		t.Fatalf("server has %q for the serial, station has %q", got, id)
	}
	tok, err := p.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tok.Extra("station_id") != id {
		t.Fatalf("Token.Extra(station_id) = %v, want %q", tok.Extra("station_id"), id)
	}
	at1 := tok.AccessToken
	pr, err := e.srv.Verify(context.Background(), at1)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if pr.Kind != auth.KindStation || pr.StationID != id || pr.Serial != "10000000abcdef01" || pr.UserID != "alice" {
		t.Fatalf("Verify = %+v", pr)
	}
	rt1 := e.tokenFile().RefreshToken
	if rt1 == "" {
		t.Fatal("no refresh token stored")
	}

	// Before the refresh margin the same token is returned.
	e.clock.Advance(50 * time.Minute)
	if at := e.token(p); at != at1 {
		t.Fatal("token refreshed 10 minutes before expiry")
	}
	// Inside the 5-minute margin it is refreshed, with rotation.
	e.clock.Advance(6 * time.Minute)
	at2 := e.token(p)
	if at2 == at1 {
		t.Fatal("token not refreshed 4 minutes before expiry")
	}
	rt2 := e.tokenFile().RefreshToken
	if rt2 == rt1 || rt2 == "" {
		t.Fatal("refresh token not rotated on disk")
	}
	if pr, err := e.srv.Verify(context.Background(), at2); err != nil || pr.StationID != id {
		t.Fatalf("Verify refreshed token: %+v, %v", pr, err)
	}

	// Invalidate forces a refresh even with a fresh token.
	p.Invalidate()
	at3 := e.token(p)
	if at3 == at2 {
		t.Fatal("Invalidate did not force a refresh")
	}
	rt3 := e.tokenFile().RefreshToken
	if p.StationID() != id {
		t.Fatalf("StationID changed to %q", p.StationID())
	}

	// A new Provisioner on the same state directory picks the grant up.
	p2 := e.provisioner("10000000abcdef01", nil)
	if !p2.Enrolled() || p2.StationID() != id || e.token(p2) != at3 {
		t.Fatal("state not reloaded from disk")
	}
	e.assertNoSecrets(at1, at2, at3, rt1, rt2, rt3)
}

func TestSameSerialSameStationID(t *testing.T) {
	e := newEnv(t, auth.Options{})
	p := e.provisioner("00000000feedf00d", nil)
	e.enroll(p)
	first := p.StationID()
	if err := p.Reset(); err != nil {
		t.Fatal(err)
	}
	if p.Enrolled() || p.StationID() != "" {
		t.Fatal("still enrolled after Reset")
	}
	e.enroll(p)
	if got := p.StationID(); got != first {
		t.Fatalf("after reset StationID = %q, want %q", got, first)
	}
	other := e.provisioner("00000000cafebabe", func(c *Config) { c.StateDir = filepath.Join(e.dir, "other") })
	e.enroll(other)
	if other.StationID() == first || other.StationID() == "" {
		t.Fatalf("another serial got station id %q (first %q)", other.StationID(), first)
	}
}

func TestTokenFileModeAndFormat(t *testing.T) {
	e := newEnv(t, auth.Options{})
	p := e.provisioner("s1", nil)
	e.enroll(p)
	dir := filepath.Join(e.dir, "state")
	fi, err := os.Stat(filepath.Join(dir, TokenFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Fatalf("state dir mode %v, want 0700", di.Mode().Perm())
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 {
		t.Fatalf("state dir holds %d entries, want only %s (no temp files left)", len(ents), TokenFile)
	}
	tf := e.tokenFile()
	if tf.Version != fileVersion || tf.StationID != p.StationID() || tf.Serial != "s1" || tf.Expiry == nil || tf.ExpiresIn != 3600 {
		t.Fatalf("token file = %+v", tf)
	}
}

// BenchmarkTokenCached: Token is on the path of every job API call and MQTT
// reconnect; with a fresh token it must not touch disk or network.
func BenchmarkTokenCached(b *testing.B) {
	e := newEnv(b, auth.Options{})
	p := e.provisioner("s", nil)
	e.enroll(p)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Token(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRefresh is a full rotation over loopback HTTP, including the
// atomic, fsynced write of the token file.
func BenchmarkRefresh(b *testing.B) {
	e := newEnv(b, auth.Options{})
	p := e.provisioner("s", nil)
	e.enroll(p)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		p.Invalidate()
		if _, err := p.Token(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
