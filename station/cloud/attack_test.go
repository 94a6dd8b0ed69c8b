package cloud

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"labelstation/devcloud/broker"
	"labelstation/protocol"
	"labelstation/station/trust"
	"labelstation/station/trust/trusttest"
)

// A compromised broker, or any client that can publish on a station's topics (here the service
// account), sends station B what the cloud never signed. B acts only on what the cloud sealed for
// it, refuses the rest, acknowledges it and reports each refusal on its event leaf.
func TestLinkRefusesForgedMessages(t *testing.T) { forgedMessages(t, embedded(t)) }

// Mosquitto with no ACL at all: anyone may publish anything on any topic.
func TestLinkRefusesForgedMessagesMosquitto(t *testing.T) { forgedMessages(t, mosquitto(t)) }

func forgedMessages(t *testing.T, url string) {
	cl := newFakeCloud(t, url, uniq("cloud"), nil)
	b, a := uniq("st-b"), uniq("st-a")
	key := cloudKey(t)
	mustSealer := func(kid string, now func() time.Time) *protocol.Sealer {
		s, err := protocol.NewSealer(key.priv, kid, now, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	yesterday := mustSealer(key.sealer.KeyID(), func() time.Time { return time.Now().Add(-25 * time.Hour) })
	lastHour := mustSealer(key.sealer.KeyID(), func() time.Time { return time.Now().Add(-time.Hour) })
	impostor, err := newTestKey(key.sealer.KeyID(), nil) // same kid, another key
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := newTestKey("who-knows", nil)
	if err != nil {
		t.Fatal(err)
	}

	jobs := make(chan protocol.Job, 20)
	configs := make(chan protocol.ConfigDesired, 20)
	cmds := make(chan protocol.Command, 20)
	v := verifier(t, b)
	opts := Options{
		Broker: url, StationID: b, Verify: v,
		Password:  func(context.Context) (string, error) { return "token-" + b, nil },
		OnJob:     func(j protocol.Job) error { jobs <- j; return nil },
		OnConfig:  func(d protocol.ConfigDesired) { configs <- d },
		OnCommand: func(c protocol.Command) { cmds <- c },
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, nil)),
	}
	stop := runLink(t, opts)

	seal := func(s *protocol.Sealer, topic string, v any) []byte {
		msg, _ := json.Marshal(v)
		out, err := s.Seal(topic, msg)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	jobB, jobA := protocol.StationTopic(b, protocol.LeafJob), protocol.StationTopic(a, protocol.LeafJob)
	cfgB, cfgA := protocol.StationTopic(b, protocol.LeafConfigDesired), protocol.StationTopic(a, protocol.LeafConfigDesired)
	// A shared broker keeps retained messages across runs: leave none behind.
	t.Cleanup(func() { cl.c.Publish(cfgB, 1, true, []byte{}).WaitTimeout(5 * time.Second) })
	cmdB, cmdA := protocol.StationTopic(b, protocol.LeafCmd), protocol.StationTopic(a, protocol.LeafCmd)
	job := func(id string) protocol.Job {
		return protocol.Job{V: protocol.Version, ID: id, Title: "forged", Format: "csv", Data: []byte("a\n1\n"), Labels: 1}
	}
	cfg := func(version int64) protocol.ConfigDesired {
		return protocol.ConfigDesired{V: protocol.Version, Version: version, Config: json.RawMessage(`{"v":1,"printer":{"dpi":600}}`)}
	}
	cmd := func(id string) protocol.Command { return protocol.Command{V: protocol.Version, ID: id, Name: "reboot"} }
	olderCfg := seal(lastHour, cfgB, cfg(100)) // genuine, but older than version 200

	// The real cloud's messages: acted on.
	goodJob := seal(key.sealer, jobB, job("job-ok"))
	goodCmd := seal(key.sealer, cmdB, cmd("cmd-ok"))
	goodCfg := seal(key.sealer, cfgB, cfg(200))
	cl.publishRaw(t, jobB, false, goodJob)
	cl.publishRaw(t, cfgB, true, goodCfg)
	cl.publishRaw(t, cmdB, false, goodCmd)
	wantOne(t, jobs, func(j protocol.Job) string { return j.ID }, "job-ok")
	wantOne(t, configs, func(d protocol.ConfigDesired) string { return strconv.FormatInt(d.Version, 10) }, "200")
	wantOne(t, cmds, func(c protocol.Command) string { return c.ID }, "cmd-ok")

	unsigned := func(v any) []byte { b, _ := json.Marshal(v); return b }
	attacks := []struct {
		name, topic string
		retained    bool
		payload     []byte
		id, reason  string
	}{
		{"unsigned job", jobB, false, unsigned(job("job-unsigned")), "job-unsigned", "unsigned"},
		{"job signed by another key", jobB, false, seal(impostor.sealer, jobB, job("job-impostor")), "job-impostor", "bad_signature"},
		{"job signed by an unknown key", jobB, false, seal(stranger.sealer, jobB, job("job-stranger")), "job-stranger", "unknown_key"},
		{"replayed job", jobB, false, goodJob, "job-ok", "replayed"},
		{"job addressed to A", jobB, false, seal(key.sealer, jobA, job("job-for-a")), "job-for-a", "misaddressed"},
		{"expired job", jobB, false, seal(yesterday, jobB, job("job-expired")), "job-expired", "expired"},
		{"unsigned config", cfgB, true, unsigned(cfg(300)), "300", "unsigned"},
		{"config signed by another key", cfgB, true, seal(impostor.sealer, cfgB, cfg(301)), "301", "bad_signature"},
		{"config addressed to A", cfgB, true, seal(key.sealer, cfgA, cfg(302)), "302", "misaddressed"},
		{"older config replayed", cfgB, true, olderCfg, "100", "replayed"},
		{"unsigned command", cmdB, false, unsigned(cmd("cmd-unsigned")), "cmd-unsigned", "unsigned"},
		{"command signed by another key", cmdB, false, seal(impostor.sealer, cmdB, cmd("cmd-impostor")), "cmd-impostor", "bad_signature"},
		{"command addressed to A", cmdB, false, seal(key.sealer, cmdA, cmd("cmd-for-a")), "cmd-for-a", "misaddressed"},
		{"expired command", cmdB, false, seal(lastHour, cmdB, cmd("cmd-expired")), "cmd-expired", "expired"},
		{"replayed command", cmdB, false, goodCmd, "cmd-ok", "replayed"},
	}
	for _, at := range attacks {
		cl.publishRaw(t, at.topic, at.retained, at.payload)
	}
	// Every refusal is reported once, naming what the message claimed to be.
	events := cl.waitEvents(t, b, len(attacks))
	for _, at := range attacks {
		if !slices.ContainsFunc(events, func(e protocol.Event) bool {
			return e.Kind == protocol.EventRefused && e.ID == at.id && e.Reason == at.reason
		}) {
			t.Errorf("%s: no refusal event with id %q and reason %q; events: %+v", at.name, at.id, at.reason, events)
		}
	}
	if len(events) != len(attacks) {
		t.Errorf("%d events for %d attacks", len(events), len(attacks))
	}
	// Nothing of it was acted on.
	select {
	case j := <-jobs:
		t.Errorf("forged job %q reached the journal", j.ID)
	case d := <-configs:
		t.Errorf("forged config %d was applied", d.Version)
	case c := <-cmds:
		t.Errorf("forged command %q was executed", c.ID)
	default:
	}
	// Every refused message was acknowledged: after a reconnect none of them comes back (the
	// broker resends unacknowledged messages first, on session resume), at most the retained
	// config the broker holds (the older one, refused again), and the station takes the cloud's
	// next job.
	stop()
	stop = runLink(t, opts)
	defer stop()
	cl.publishRaw(t, jobB, false, seal(key.sealer, jobB, job("job-next")))
	wantOne(t, jobs, func(j protocol.Job) string { return j.ID }, "job-next")
	cl.publishRaw(t, jobB, false, unsigned(job("marker")))
	events = cl.waitEvents(t, b, len(attacks)+1)
	for !slices.ContainsFunc(events, func(e protocol.Event) bool { return e.ID == "marker" }) {
		events = cl.waitEvents(t, b, len(events)+1)
	}
	count := map[string]int{}
	for _, e := range events {
		count[e.ID]++
	}
	for id, n := range count {
		if n > 1 && !(id == "100" && n == 2) {
			t.Errorf("%q refused %d times: it came back after the reconnect", id, n)
		}
	}
	select {
	case d := <-configs:
		t.Errorf("config %d applied after the reconnect", d.Version)
	default:
	}
}

// The link refuses a cleartext broker on another host unless told to allow it; loopback is fine.
func TestLinkTransportRules(t *testing.T) {
	base := Options{StationID: "st-b", Verify: verifier(t, "st-b"), Password: func(context.Context) (string, error) { return "", nil },
		OnJob: func(protocol.Job) error { return nil }}
	for _, tt := range []struct {
		broker string
		allow  bool
		ok     bool
	}{
		{"tcp://127.0.0.2:1883", false, true},
		{"mqtt://localhost:1883", false, true},
		{"mqtts://broker.example:8883", false, true},
		{"tcp://broker.example:1883", false, false},
		{"mqtt://192.168.1.10:1883", false, false},
		{"mqtt://192.168.1.10:1883", true, true},
	} {
		o := base
		o.Broker, o.AllowInsecure = tt.broker, tt.allow
		_, err := New(o)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, trust.ErrCleartext)) {
			t.Errorf("New(%s, allow=%v) = %v", tt.broker, tt.allow, err)
		}
	}
	o := base
	o.Broker, o.Verify = "tcp://127.0.0.1:1883", nil
	if _, err := New(o); err == nil {
		t.Error("a link without a verifier was built")
	}
}

// Over TLS with a private CA, the link connects only when it trusts that CA.
func TestLinkPrivateCA(t *testing.T) {
	ca := trusttest.NewCA(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.Start(broker.Options{
		Listener: tls.NewListener(ln, ca.ServerTLS(t)), ServiceUser: svcUser, ServicePassword: svcPass,
		Verify: func(_ context.Context, tok string) (string, error) { return strings.TrimPrefix(tok, "token-"), nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	url := "mqtts://" + b.Addr()
	logs := lockedBuffer{wrote: make(chan struct{}, 1)}
	opts := Options{Broker: url, StationID: "st-tls", Verify: verifier(t, "st-tls"),
		Password: func(context.Context) (string, error) { return "token-st-tls", nil },
		OnJob:    func(protocol.Job) error { return nil }, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}

	// System roots only: every attempt fails on the certificate; it never comes online.
	untrusting, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); untrusting.Run(ctx) }()
	deadline := time.After(10 * time.Second)
wait:
	for !strings.Contains(logs.String(), "certificate") {
		select {
		case <-logs.wrote:
		case <-deadline:
			break wait
		}
	}
	cancel()
	<-done
	if !strings.Contains(logs.String(), "certificate signed by unknown authority") || untrusting.Online() {
		t.Fatalf("without the CA: online=%v, log:\n%s", untrusting.Online(), logs.String())
	}

	cfg, err := trust.TLSConfig(ca.File(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	opts.TLS = cfg
	stop := runLink(t, opts)
	stop()
}

// runLink runs a link until the returned stop is called.
func runLink(t *testing.T, opts Options) (stop func()) {
	t.Helper()
	online := make(chan bool, 4)
	opts.OnOnline = func(up bool) { online <- up }
	l, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	select {
	case <-online:
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("link never came online")
	}
	return func() { cancel(); <-done }
}

// wantOne waits for a value on ch and checks its id.
func wantOne[T any](t *testing.T, ch <-chan T, id func(T) string, want string) {
	t.Helper()
	select {
	case v := <-ch:
		if got := id(v); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s never arrived", want)
	}
}

func (f *fakeCloud) eventsOf(station string) []protocol.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []protocol.Event
	for _, b := range f.got[protocol.StationTopic(station, protocol.LeafEvent)] {
		var e protocol.Event
		if protocol.Decode(b, &e) == nil {
			out = append(out, e)
		}
	}
	return out
}

// waitEvents waits until station reported at least n events.
func (f *fakeCloud) waitEvents(t *testing.T, station string, n int) []protocol.Event {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		if ev := f.eventsOf(station); len(ev) >= n {
			return ev
		}
		select {
		case <-f.seen:
		case <-deadline:
			t.Fatalf("%d events from %s, want %d: %+v", len(f.eventsOf(station)), station, n, f.eventsOf(station))
		}
	}
}

// A refused message is logged once, however often the broker delivers it, and a flood of
// distinct ones is capped per minute, so an attacker cannot fill the disk with the log.
func TestRefusalsLoggedOnce(t *testing.T) {
	var logs lockedBuffer
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	l, err := New(Options{
		Broker: "tcp://127.0.0.1:9", StationID: "st-b", Verify: verifier(t, "st-b"),
		Password: func(context.Context) (string, error) { return "", nil },
		OnJob:    func(protocol.Job) error { return nil },
		Now:      func() time.Time { return now },
		Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	topic := protocol.StationTopic("st-b", protocol.LeafJob)
	route := func(id string) {
		m := &fakeMessage{topic: topic, payload: []byte(`{"v":2,"id":"` + id + `"}`)}
		l.route(nil, m)
		if !m.acked {
			t.Fatalf("refused message %s not acknowledged", id)
		}
	}
	refusals := func() int { return strings.Count(logs.String(), `msg="cloud: message refused"`) }
	for range 5 {
		route("same")
	}
	if n := refusals(); n != 1 {
		t.Fatalf("one message delivered 5 times logged %d times", n)
	}
	for i := range 100 {
		route(fmt.Sprint("flood-", i))
	}
	if n := refusals(); n != refusalsPerMinute {
		t.Fatalf("a flood logged %d refusals in a minute, want %d", n, refusalsPerMinute)
	}
	now = now.Add(61 * time.Second)
	route("later")
	if n := refusals(); n != refusalsPerMinute+1 {
		t.Fatalf("a minute later: %d refusals logged, want %d", n, refusalsPerMinute+1)
	}
}

// fakeMessage is a paho message handed to route directly.
type fakeMessage struct {
	topic   string
	payload []byte
	acked   bool
}

func (m *fakeMessage) Duplicate() bool   { return false }
func (m *fakeMessage) Qos() byte         { return 1 }
func (m *fakeMessage) Retained() bool    { return false }
func (m *fakeMessage) Topic() string     { return m.topic }
func (m *fakeMessage) MessageID() uint16 { return 1 }
func (m *fakeMessage) Payload() []byte   { return m.payload }
func (m *fakeMessage) Ack()              { m.acked = true }

// lockedBuffer is a log sink tests read while the link writes; wrote, if set, is signalled on
// every write.
type lockedBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{}
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.wrote != nil {
		select {
		case l.wrote <- struct{}{}:
		default:
		}
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A station with no key set at all (first boot, issuer unreachable) neither refuses nor loses a
// job: it holds it until the keys can be fetched.
func TestLinkWaitsForKeys(t *testing.T) {
	url := embedded(t)
	cl := newFakeCloud(t, url, uniq("cloud"), nil)
	var mu sync.Mutex
	up := false
	asked := make(chan struct{}, 100)
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case asked <- struct{}{}:
		default:
		}
		mu.Lock()
		defer mu.Unlock()
		if !up {
			http.Error(w, "issuer down", http.StatusServiceUnavailable)
			return
		}
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{cloudKey(t).pub}})
	}))
	defer jwks.Close()
	dir := t.TempDir()
	keys, err := trust.OpenKeys(trust.KeysOptions{URL: jwks.URL, File: filepath.Join(dir, trust.KeysFile), MinRefetch: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w, _ := trust.OpenWindow(filepath.Join(dir, trust.WindowFile))
	station := uniq("st-nokeys")
	v, _ := trust.NewVerifier(trust.VerifierOptions{Station: station, Keys: keys, Window: w})
	jobs := make(chan protocol.Job, 4)
	stop := runLink(t, Options{Broker: url, StationID: station, Verify: v, KeyRetry: 20 * time.Millisecond,
		Password: func(context.Context) (string, error) { return "token-" + station, nil },
		OnJob:    func(j protocol.Job) error { jobs <- j; return nil }})
	defer stop()
	cl.publishJob(t, station, protocol.Job{V: protocol.Version, ID: "held", Labels: 1})
	for range 2 { // asked twice: the job is waiting, not refused
		select {
		case <-asked:
		case <-time.After(10 * time.Second):
			t.Fatal("the station never asked for the keys")
		}
	}
	mu.Lock()
	up = true
	mu.Unlock()
	wantOne(t, jobs, func(j protocol.Job) string { return j.ID }, "held")
	if n := len(cl.eventsOf(station)); n != 0 {
		t.Errorf("%d refusals reported while the keys were only unavailable", n)
	}
}

type panickyOpener struct{}

func (panickyOpener) Open(context.Context, string, []byte) ([]byte, func(bool) error, error) {
	panic("verifier bug")
}

// A message that makes verification panic costs that message, acknowledged, not the daemon.
func TestLinkVerificationPanicIsARefusal(t *testing.T) {
	jobs := 0
	l, err := New(Options{
		Broker: "tcp://127.0.0.1:9", StationID: "st-b", Verify: panickyOpener{},
		Password: func(context.Context) (string, error) { return "", nil },
		OnJob:    func(protocol.Job) error { jobs++; return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	m := &fakeMessage{topic: protocol.StationTopic("st-b", protocol.LeafJob), payload: []byte(`{}`)}
	l.route(nil, m)
	if !m.acked || jobs != 0 {
		t.Fatalf("acked=%v, jobs=%d", m.acked, jobs)
	}
}
