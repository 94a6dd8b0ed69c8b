package trust

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"labelstation/protocol"
	"labelstation/station/trust/trusttest"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// clock is an injected clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type signer struct {
	s   *protocol.Sealer
	pub jose.JSONWebKey
}

func newSigner(t *testing.T, kid string, now func() time.Time) signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := protocol.NewSealer(k, kid, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	return signer{s, s.PublicJWK(k)}
}

func (s signer) seal(t *testing.T, topic, msg string) []byte {
	t.Helper()
	b, err := s.s.Seal(topic, []byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jwksServer serves a key set that tests replace, over real HTTP, and counts requests.
type jwksServer struct {
	*httptest.Server
	mu   sync.Mutex
	keys []jose.JSONWebKey
	hits int
}

func newJWKS(t *testing.T, keys ...jose.JSONWebKey) *jwksServer {
	j := &jwksServer{keys: keys}
	j.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.mu.Lock()
		defer j.mu.Unlock()
		j.hits++
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: j.keys})
	}))
	t.Cleanup(j.Close)
	return j
}

func (j *jwksServer) set(keys ...jose.JSONWebKey) {
	j.mu.Lock()
	j.keys = keys
	j.mu.Unlock()
}

func newVerifier(t *testing.T, dir string, keys KeySource, now func() time.Time, groups ...string) *Verifier {
	t.Helper()
	w, err := OpenWindow(filepath.Join(dir, WindowFile))
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(VerifierOptions{Station: "st-b", Keys: keys, Window: w, Now: now, Groups: func() []string { return groups }})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// accept opens and commits, as the link does for a message it acted on.
func accept(v *Verifier, topic string, payload []byte) error {
	_, settle, err := v.Open(context.Background(), topic, payload)
	if err != nil {
		return err
	}
	return settle(true)
}

func TestKeyRotationAndOffline(t *testing.T) {
	clk := &clock{t: t0}
	dir := t.TempDir()
	k1, k2, k3 := newSigner(t, "k1", clk.Now), newSigner(t, "k2", clk.Now), newSigner(t, "k3", clk.Now)
	srv := newJWKS(t, k1.pub)
	keys, err := OpenKeys(KeysOptions{URL: srv.URL, File: filepath.Join(dir, KeysFile), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t, dir, keys, clk.Now)
	job := protocol.StationTopic("st-b", protocol.LeafJob)

	// First message: the set is fetched.
	if err := accept(v, job, k1.seal(t, job, `{"id":"1"}`)); err != nil {
		t.Fatal(err)
	}
	// The cloud adds k2 and signs with it: the unknown kid makes the station fetch again.
	srv.set(k1.pub, k2.pub)
	clk.Add(2 * time.Minute)
	if err := accept(v, job, k2.seal(t, job, `{"id":"2"}`)); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	if keys.Fetches() != 2 {
		t.Fatalf("fetches = %d, want 2", keys.Fetches())
	}
	// A stranger's kid right after: refused without a fetch (rate limit).
	stranger := newSigner(t, "k-evil", clk.Now)
	for range 5 {
		if err := accept(v, job, stranger.seal(t, job, `{}`)); !errors.Is(err, protocol.ErrUnknownKey) {
			t.Fatalf("stranger: %v, want ErrUnknownKey", err)
		}
	}
	if keys.Fetches() != 2 {
		t.Fatalf("fetches = %d after a flood of unknown kids, want 2", keys.Fetches())
	}
	// The issuer is gone: a restarted station verifies with the set it kept on disk.
	srv.Close()
	keys2, err := OpenKeys(KeysOptions{URL: srv.URL, File: filepath.Join(dir, KeysFile), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	v2 := newVerifier(t, dir, keys2, clk.Now)
	if err := accept(v2, job, k2.seal(t, job, `{"id":"3"}`)); err != nil {
		t.Fatalf("offline after restart: %v", err)
	}
	// Rotation finished elsewhere (k1 retired, k3 in): once the issuer answers again and a k3
	// message arrives, k1 is no longer trusted.
	srv2 := newJWKS(t, k2.pub, k3.pub)
	keys3, _ := OpenKeys(KeysOptions{URL: srv2.URL, File: filepath.Join(dir, KeysFile), Now: clk.Now})
	v3 := newVerifier(t, dir, keys3, clk.Now)
	if err := accept(v3, job, k3.seal(t, job, `{"id":"4"}`)); err != nil {
		t.Fatalf("k3: %v", err)
	}
	if err := accept(v3, job, k1.seal(t, job, `{"id":"5"}`)); !errors.Is(err, protocol.ErrUnknownKey) {
		t.Fatalf("retired k1: %v, want ErrUnknownKey", err)
	}
	// The file holds the set of the last fetch.
	b, _ := os.ReadFile(filepath.Join(dir, KeysFile))
	if !strings.Contains(string(b), `"k3"`) || strings.Contains(string(b), `"k1"`) {
		t.Errorf("stored set: %s", b)
	}
	if fi, _ := os.Stat(filepath.Join(dir, KeysFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v", fi.Mode().Perm())
	}
}

func TestKeysUnavailableIsNotARefusal(t *testing.T) {
	clk := &clock{t: t0}
	srv := newJWKS(t)
	srv.Close()
	keys, _ := OpenKeys(KeysOptions{URL: srv.URL, File: filepath.Join(t.TempDir(), KeysFile), Now: clk.Now})
	k1 := newSigner(t, "k1", clk.Now)
	v := newVerifier(t, t.TempDir(), keys, clk.Now)
	job := protocol.StationTopic("st-b", protocol.LeafJob)
	if err := accept(v, job, k1.seal(t, job, `{}`)); !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("no keys at all: %v, want ErrKeysUnavailable", err)
	}
}

func TestKeySetFiltersUnusableKeys(t *testing.T) {
	k := newSigner(t, "good", nil)
	enc := k.pub
	enc.KeyID, enc.Use = "enc", "enc"
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.pub, enc, {Key: priv, KeyID: "private", Algorithm: "ES256"}}})
	set, err := parseSet(b)
	if err != nil || len(set) != 1 || set[0].KeyID != "good" {
		t.Fatalf("parseSet = %v, %v", set, err)
	}
	if _, err := parseSet([]byte(`{"keys":[]}`)); err == nil {
		t.Error("an empty set was accepted")
	}
}

func TestReplayWindowSurvivesRestart(t *testing.T) {
	clk := &clock{t: t0}
	dir := t.TempDir()
	k := newSigner(t, "k1", clk.Now)
	keys := StaticKeys{k.pub}
	cmd := protocol.StationTopic("st-b", protocol.LeafCmd)
	reboot := k.seal(t, cmd, `{"v":2,"id":"c1","name":"reboot"}`)
	v := newVerifier(t, dir, keys, clk.Now)
	if err := accept(v, cmd, reboot); err != nil {
		t.Fatal(err)
	}
	if err := accept(v, cmd, reboot); !errors.Is(err, protocol.ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
	// The station rebooted: the same command captured and replayed is still refused.
	clk.Add(time.Minute)
	v = newVerifier(t, dir, keys, clk.Now)
	if err := accept(v, cmd, reboot); !errors.Is(err, protocol.ErrReplay) {
		t.Fatalf("replay after restart: %v", err)
	}
	// Long after, it is expired, and the window no longer needs the id.
	clk.Add(time.Hour)
	if err := accept(v, cmd, reboot); !errors.Is(err, protocol.ErrExpired) {
		t.Fatalf("old command: %v", err)
	}
	fresh := k.seal(t, cmd, `{}`)
	if err := accept(v, cmd, fresh); err != nil {
		t.Fatal(err)
	}
	if n := v.opt.Window.Len(); n != 1 {
		t.Errorf("window holds %d ids, want 1 (the expired one pruned)", n)
	}
}

func TestOpenWithoutCommitIsNotAReplay(t *testing.T) {
	// A job the journal could not take stays with the broker; its redelivery must be accepted.
	k := newSigner(t, "k1", nil)
	v := newVerifier(t, t.TempDir(), StaticKeys{k.pub}, nil)
	job := protocol.StationTopic("st-b", protocol.LeafJob)
	b := k.seal(t, job, `{}`)
	_, settle, err := v.Open(context.Background(), job, b)
	if err != nil {
		t.Fatal(err)
	}
	// While the first copy is being handled, a second one is a replay.
	if err := accept(v, job, b); !errors.Is(err, protocol.ErrReplay) {
		t.Fatalf("duplicate in flight: %v", err)
	}
	settle(false)
	if err := accept(v, job, b); err != nil {
		t.Fatalf("redelivery after a failure: %v", err)
	}
}

func TestConfigOrdering(t *testing.T) {
	clk := &clock{t: t0}
	dir := t.TempDir()
	k := newSigner(t, "k1", clk.Now)
	topic := protocol.StationTopic("st-b", protocol.LeafConfigDesired)
	old := k.seal(t, topic, `{"version":"old"}`)
	clk.Add(time.Hour)
	cur := k.seal(t, topic, `{"version":"cur"}`)
	v := newVerifier(t, dir, StaticKeys{k.pub}, clk.Now)
	if err := accept(v, topic, cur); err != nil {
		t.Fatal(err)
	}
	// Retained: the broker hands it again on every connect, and after a restart.
	if err := accept(v, topic, cur); err != nil {
		t.Fatalf("redelivered retained config: %v", err)
	}
	v = newVerifier(t, dir, StaticKeys{k.pub}, clk.Now)
	if err := accept(v, topic, cur); err != nil {
		t.Fatalf("retained config after restart: %v", err)
	}
	// An older signed config replayed by a broker: refused, even a year later (no expiry).
	clk.Add(365 * 24 * time.Hour)
	if err := accept(v, topic, old); !errors.Is(err, protocol.ErrReplay) {
		t.Fatalf("rollback: %v, want ErrReplay", err)
	}
	clk.Add(time.Second)
	if err := accept(v, topic, k.seal(t, topic, `{"version":"new"}`)); err != nil {
		t.Fatalf("newer config: %v", err)
	}
}

func TestClockNotSetSkipsTimeButNotReplay(t *testing.T) {
	issued := &clock{t: t0}
	k := newSigner(t, "k1", issued.Now)
	cmd := protocol.StationTopic("st-b", protocol.LeafCmd)
	b := k.seal(t, cmd, `{}`)
	boot := &clock{t: time.Unix(42, 0)} // a Pi before NTP
	v := newVerifier(t, t.TempDir(), StaticKeys{k.pub}, boot.Now)
	if err := accept(v, cmd, b); err != nil {
		t.Fatalf("clock at 1970: %v", err)
	}
	if err := accept(v, cmd, b); !errors.Is(err, protocol.ErrReplay) {
		t.Fatalf("replay at 1970: %v", err)
	}
	other := newSigner(t, "k1", issued.Now)
	if err := accept(v, cmd, other.seal(t, cmd, `{}`)); !errors.Is(err, protocol.ErrSignature) {
		t.Fatalf("forged at 1970: %v", err)
	}
}

func TestGroupAudience(t *testing.T) {
	k := newSigner(t, "k1", nil)
	v := newVerifier(t, t.TempDir(), StaticKeys{k.pub}, nil, "floor2")
	mine := protocol.GroupTopic("floor2", protocol.LeafCmd)
	if err := accept(v, mine, k.seal(t, mine, `{}`)); err != nil {
		t.Fatalf("own group: %v", err)
	}
	other := protocol.GroupTopic("floor3", protocol.LeafCmd)
	if err := accept(v, other, k.seal(t, other, `{}`)); !errors.Is(err, protocol.ErrAddress) {
		t.Fatalf("other group: %v", err)
	}
	a := protocol.StationTopic("st-a", protocol.LeafJob)
	if err := accept(v, a, k.seal(t, a, `{}`)); !errors.Is(err, protocol.ErrAddress) {
		t.Fatalf("station A's topic: %v", err)
	}
}

func TestLoopbackAndCleartext(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1:8780": true, "127.0.0.2": true, "[::1]:1883": true, "localhost:80": true, "LOCALHOST.": true,
		"10.0.0.5:1883": false, "cloud.example:443": false, "localhost.example": false, "127.0.0.1.nip.io": false, "": false,
	} {
		if got := Loopback(host); got != want {
			t.Errorf("Loopback(%q) = %v", host, got)
		}
	}
	for _, tt := range []struct {
		url   string
		allow bool
		ok    bool
	}{
		{"http://127.0.0.1:8780", false, true},
		{"mqtt://127.0.0.2:1883", false, true},
		{"tcp://localhost:1883", false, true},
		{"https://cloud.example", false, true},
		{"mqtts://broker.example:8883", false, true},
		{"http://cloud.example", false, false},
		{"mqtt://10.0.0.5:1883", false, false},
		{"tcp://broker.example:1883", false, false},
		{"tcp://broker.example:1883", true, true},
	} {
		err := CheckTransport(tt.url, tt.allow)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrCleartext)) {
			t.Errorf("CheckTransport(%s, %v) = %v", tt.url, tt.allow, err)
		}
	}
}

func TestPrivateCA(t *testing.T) {
	ca := trusttest.NewCA(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	srv.TLS = ca.ServerTLS(t)
	srv.StartTLS()
	defer srv.Close()

	plain, err := TLSConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := HTTPClient(plain, 5*time.Second).Get(srv.URL); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without ca_file: %v, want a certificate error", err)
	}
	dir := t.TempDir()
	withCA, err := TLSConfig(ca.File(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := HTTPClient(withCA, 5*time.Second).Get(srv.URL)
	if err != nil {
		t.Fatalf("with ca_file: %v", err)
	}
	resp.Body.Close()

	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o644)
	if _, err := TLSConfig(bad); err == nil || !strings.Contains(err.Error(), "cloud.ca_file") {
		t.Errorf("garbage ca_file: %v", err)
	}
	if _, err := TLSConfig(filepath.Join(dir, "missing.pem")); err == nil || !strings.Contains(err.Error(), "cloud.ca_file") {
		t.Errorf("missing ca_file: %v", err)
	}
}

func TestSecureDirNarrowsAnExistingDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755) // whatever the umask
	if err := SecureDir(dir); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Fatalf("mode %v, want 0700", fi.Mode().Perm())
	}
	fresh := filepath.Join(t.TempDir(), "a", "b")
	if err := SecureDir(fresh); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(fresh); fi.Mode().Perm() != 0o700 {
		t.Fatalf("new dir mode %v", fi.Mode().Perm())
	}
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o600)
	if err := SecureDir(file); err == nil {
		t.Fatal("a file was accepted as the state dir")
	}
}
