package cloud

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	jose "github.com/go-jose/go-jose/v4"

	"labelstation/devcloud/broker"
	"labelstation/protocol"
	"labelstation/station/trust"
)

// The link is tested against real brokers over TCP: the embedded mochi broker always, and
// Mosquitto on 127.0.0.1:1883 when it runs. Only token checking is simplified here: the broker
// accepts "token-<station>" (the real authorization server is in the end-to-end tests).

const svcUser, svcPass = "svc", "svc-secret"

func embedded(t *testing.T) (url string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.Start(broker.Options{
		Listener: ln, ServiceUser: svcUser, ServicePassword: svcPass,
		Verify: func(_ context.Context, tok string) (string, error) {
			sid, ok := strings.CutPrefix(tok, "token-")
			if !ok {
				return "", errors.New("bad token")
			}
			return sid, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return "tcp://" + b.Addr()
}

// mosquitto returns the local Mosquitto's URL or skips the test.
func mosquitto(t *testing.T) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", "127.0.0.1:1883", 500*time.Millisecond)
	if err != nil {
		t.Skip("Mosquitto is not running on 127.0.0.1:1883; to run this test: apt-get install mosquitto && mosquitto -d")
	}
	c.Close()
	return "tcp://127.0.0.1:1883"
}

// fakeCloud is the cloud's side of the protocol on a service account: it answers lookups with
// the given jobs and records everything stations publish.
type fakeCloud struct {
	c    paho.Client
	seal *protocol.Sealer
	mu   sync.Mutex
	got  map[string][][]byte // topic → payloads
	seen chan string
}

func newFakeCloud(t *testing.T, url, id string, jobs []protocol.JobSummary) *fakeCloud {
	t.Helper()
	f := &fakeCloud{got: map[string][][]byte{}, seen: make(chan string, 100), seal: cloudKey(t).sealer}
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetUsername(svcUser).SetPassword(svcPass).
		SetOrderMatters(true) // record in arrival order; the handler never waits on a token
	f.c = paho.NewClient(o)
	if tok := f.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("fake cloud connect: %v", tok.Error())
	}
	t.Cleanup(func() { f.c.Disconnect(0) })
	sub := f.c.Subscribe(protocol.Root+"/st/#", 1, func(c paho.Client, m paho.Message) {
		f.mu.Lock()
		f.got[m.Topic()] = append(f.got[m.Topic()], m.Payload())
		f.mu.Unlock()
		station, leaf, err := protocol.ParseStationTopic(m.Topic())
		if err == nil && leaf == protocol.LeafLookup {
			var req protocol.LookupRequest
			if protocol.Decode(m.Payload(), &req) == nil {
				b, _ := json.Marshal(protocol.LookupReply{V: protocol.Version, Req: req.Req, User: &protocol.User{ID: "u", Name: "U " + req.Badge}, Jobs: jobs})
				topic := protocol.StationTopic(station, protocol.LeafLookupReply)
				sealed, _ := f.seal.Seal(topic, b)
				c.Publish(topic, 1, false, sealed)
			}
		}
		select {
		case f.seen <- m.Topic():
		default:
		}
	})
	if !sub.WaitTimeout(10*time.Second) || sub.Error() != nil {
		t.Fatalf("fake cloud subscribe: %v", sub.Error())
	}
	return f
}

func (f *fakeCloud) waitTopic(t *testing.T, topic string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		f.mu.Lock()
		n := len(f.got[topic])
		f.mu.Unlock()
		if n > 0 {
			return
		}
		select {
		case <-f.seen:
		case <-deadline:
			t.Fatalf("nothing on %s", topic)
		}
	}
}

// sync returns once the broker has routed everything this client published before it: a
// broker may acknowledge a QoS 1 publish before it has queued it for the subscribers (mochi
// does), so a station connecting right after could race the queueing. The marker goes to a
// topic no station reads and comes back to this client after the earlier publishes.
func (f *fakeCloud) sync(t *testing.T) {
	t.Helper()
	topic := protocol.StationTopic(uniq("sync"), protocol.LeafJob)
	f.publishRaw(t, topic, false, []byte("marker"))
	f.waitTopic(t, topic)
}

// waitOffline waits until station's latest presence, among at least n, says offline.
func (f *fakeCloud) waitOffline(t *testing.T, station string, n int) {
	t.Helper()
	topic := protocol.StationTopic(station, protocol.LeafPresence)
	deadline := time.After(10 * time.Second)
	for {
		var p protocol.Presence
		f.mu.Lock()
		all := f.got[topic]
		f.mu.Unlock()
		if len(all) >= n && protocol.Decode(all[len(all)-1], &p) == nil && !p.Online {
			return
		}
		select {
		case <-f.seen:
		case <-deadline:
			t.Fatalf("%s: %d presence messages, the last %+v; want offline", station, len(all), p)
		}
	}
}

func (f *fakeCloud) publishJob(t *testing.T, station string, j protocol.Job) {
	t.Helper()
	b, _ := json.Marshal(j)
	topic := protocol.StationTopic(station, protocol.LeafJob)
	sealed, err := f.seal.Seal(topic, b)
	if err != nil {
		t.Fatal(err)
	}
	f.publishRaw(t, topic, false, sealed)
}

// publishSealed seals msg as the cloud does and publishes it.
func (f *fakeCloud) publishSealed(t *testing.T, topic string, msg []byte) {
	t.Helper()
	sealed, err := f.seal.Seal(topic, msg)
	if err != nil {
		t.Fatal(err)
	}
	f.publishRaw(t, topic, false, sealed)
}

// publishRaw publishes payload as is: what a compromised broker or a lying peer can do.
func (f *fakeCloud) publishRaw(t *testing.T, topic string, retained bool, payload []byte) {
	t.Helper()
	tok := f.c.Publish(topic, 1, retained, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// testKey is the cloud's message-signing key in these tests, generated once per run.
type testKey struct {
	sealer *protocol.Sealer
	pub    jose.JSONWebKey
	priv   *ecdsa.PrivateKey
}

var cloudKeyOnce = sync.OnceValues(func() (testKey, error) { return newTestKey("cloud-1", nil) })

func newTestKey(kid string, now func() time.Time) (testKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return testKey{}, err
	}
	s, err := protocol.NewSealer(k, kid, now, nil)
	if err != nil {
		return testKey{}, err
	}
	return testKey{s, s.PublicJWK(k), k}, nil
}

func cloudKey(t *testing.T) testKey {
	t.Helper()
	k, err := cloudKeyOnce()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// verifier trusts cloudKey, with its replay window in a fresh directory.
func verifier(t *testing.T, station string) *trust.Verifier {
	t.Helper()
	w, err := trust.OpenWindow(filepath.Join(t.TempDir(), trust.WindowFile))
	if err != nil {
		t.Fatal(err)
	}
	v, err := trust.NewVerifier(trust.VerifierOptions{Station: station, Keys: trust.StaticKeys{cloudKey(t).pub}, Window: w})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

type linkRun struct {
	link   *Link
	online chan bool
	jobs   chan protocol.Job
	cancel context.CancelFunc
	done   chan struct{}
}

func startLink(t *testing.T, url, station string, onJob func(protocol.Job) error) *linkRun {
	t.Helper()
	r := &linkRun{online: make(chan bool, 10), jobs: make(chan protocol.Job, 10), done: make(chan struct{})}
	if onJob == nil {
		onJob = func(j protocol.Job) error { r.jobs <- j; return nil }
	}
	l, err := New(Options{
		Broker: url, StationID: station, Verify: verifier(t, station),
		Password:   func(context.Context) (string, error) { return "token-" + station, nil },
		OnJob:      onJob,
		OnOnline:   func(up bool) { r.online <- up },
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	r.link = l
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { defer close(r.done); l.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

func (r *linkRun) stop() {
	r.cancel()
	<-r.done
}

func (r *linkRun) waitOnline(t *testing.T, want bool) {
	t.Helper()
	for {
		select {
		case up := <-r.online:
			if up == want {
				return
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("link never became online=%v", want)
		}
	}
}

func uniq(prefix string) string { return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()) }

// exercise runs the protocol round trips against one broker.
func exercise(t *testing.T, url string) {
	station := uniq("st-test")
	jobs := []protocol.JobSummary{{ID: "j1", Title: "Labels", Labels: 3}}
	cl := newFakeCloud(t, url, uniq("cloud"), jobs)

	r := startLink(t, url, station, nil)
	r.waitOnline(t, true)
	cl.waitTopic(t, protocol.StationTopic(station, protocol.LeafPresence))

	rep, err := r.link.Lookup(context.Background(), "hash1")
	if err != nil {
		t.Fatal(err)
	}
	if rep.User == nil || rep.User.Name != "U hash1" || len(rep.Jobs) != 1 || rep.Jobs[0].ID != "j1" {
		t.Fatalf("lookup reply = %+v", rep)
	}

	cl.publishJob(t, station, protocol.Job{V: protocol.Version, ID: "j1", Title: "Labels", Format: "csv", Data: []byte("a\n1\n"), Labels: 1})
	select {
	case j := <-r.jobs:
		if j.ID != "j1" || string(j.Data) != "a\n1\n" {
			t.Fatalf("job = %+v", j)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("job not delivered")
	}
	if err := r.link.Report(protocol.JobStatus{Job: "j1", State: protocol.JobPrinted, Printed: 1, Total: 1, Seq: 3}); err != nil {
		t.Fatal(err)
	}
	cl.waitTopic(t, protocol.StationTopic(station, protocol.LeafJobStatus))

	// Persistent session: a job published while the station is away arrives when it is back.
	r.stop()
	cl.publishJob(t, station, protocol.Job{V: protocol.Version, ID: "j2", Title: "While away", Labels: 1})
	cl.sync(t)
	r2 := startLink(t, url, station, nil)
	select {
	case j := <-r2.jobs:
		if j.ID != "j2" {
			t.Fatalf("after reconnect got %q, want j2", j.ID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("job published while offline was not delivered after reconnect")
	}
	r2.stop()

	// Goodbye: the retained presence says offline.
	cl.waitOffline(t, station, 1)
}

func TestLinkEmbeddedBroker(t *testing.T) { exercise(t, embedded(t)) }

func TestLinkMosquitto(t *testing.T) { exercise(t, mosquitto(t)) }

func TestLinkOfflineAndNotAuthorized(t *testing.T) {
	// Nothing listens here: requests fail at once with ErrOffline.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "tcp://" + ln.Addr().String()
	ln.Close()
	r := startLink(t, dead, "st-x", nil)
	if _, err := r.link.Lookup(context.Background(), "h"); !errors.Is(err, ErrOffline) {
		t.Fatalf("lookup with no broker: %v, want ErrOffline", err)
	}

	url := embedded(t)
	refreshed := make(chan struct{}, 10)
	l, err := New(Options{
		Broker: url, StationID: "st-a", Verify: verifier(t, "st-a"),
		Password:        func(context.Context) (string, error) { return "token-st-b", nil }, // another station's token
		OnNotAuthorized: func() { refreshed <- struct{}{} },
		OnJob:           func(protocol.Job) error { return nil },
		MinBackoff:      10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-refreshed:
	case <-time.After(10 * time.Second):
		t.Fatal("a refused login did not ask for a fresh token")
	}
}

// The broker keeps each station in its own subtree.
func TestBrokerACLSeparatesStations(t *testing.T) {
	url := embedded(t)
	cl := newFakeCloud(t, url, uniq("cloud"), nil)
	a := startLink(t, url, "st-a", nil)
	a.waitOnline(t, true)
	// st-a tries to impersonate st-b, then sends one legitimate request.
	fake, _ := json.Marshal(protocol.LookupRequest{V: protocol.Version, Req: "evil", Badge: "x"})
	// QoS 0: with QoS 1 the broker would drop the connection (MQTT 3.1.1 has no negative PUBACK).
	a.link.client.Publish(protocol.StationTopic("st-b", protocol.LeafLookup), 0, false, fake).WaitTimeout(5 * time.Second)
	if _, err := a.link.Lookup(context.Background(), "ok"); err != nil {
		t.Fatal(err)
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if n := len(cl.got[protocol.StationTopic("st-b", protocol.LeafLookup)]); n != 0 {
		t.Fatalf("st-a published %d messages into st-b's tree", n)
	}
	tok := a.link.client.Subscribe(protocol.StationFilter("st-b"), 1, nil)
	tok.WaitTimeout(5 * time.Second)
	if st := tok.(*paho.SubscribeToken).Result()[protocol.StationFilter("st-b")]; st != 0x80 {
		t.Fatalf("subscription to another station's tree granted (code %#x)", st)
	}
}

// natsMQTT starts a private nats-server with its MQTT gateway (JetStream backs MQTT sessions)
// or skips when nats-server is not installed.
func natsMQTT(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Skip("nats-server is not installed; to run this test: apt-get install nats-server")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	// ack_wait: a QoS 1 message that went to a connection just closing is redelivered after
	// this long (NATS' default is 30 s, longer than the test waits).
	conf := fmt.Sprintf("server_name: lrs_test\nlisten: 127.0.0.1:-1\njetstream { store_dir: %q }\nmqtt { listen: %q, ack_wait: \"1s\" }\n", filepath.Join(dir, "js"), addr)
	if err := os.WriteFile(filepath.Join(dir, "nats.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", filepath.Join(dir, "nats.conf"))
	logs, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// nats-server says when its MQTT listener is up; wait for that line (or its exit).
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(logs)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Listening for MQTT clients") {
				ready <- true
				io.Copy(io.Discard, logs)
				return
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("nats-server exited before its MQTT gateway came up")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("nats-server MQTT gateway did not come up")
	}
	return "tcp://" + addr
}

func TestLinkNATS(t *testing.T) { exercise(t, natsMQTT(t)) }

// proxy forwards TCP to a broker and can cut every connection at once, as a pulled network
// cable would: the broker sees the station vanish without a DISCONNECT.
type proxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", strings.TrimPrefix(target, "tcp://"))
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, b)
			p.mu.Unlock()
			go func() { io.Copy(b, c); b.Close() }()
			go func() { io.Copy(c, b); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) url() string { return "tcp://" + p.ln.Addr().String() }

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// A station that vanishes without a goodbye is announced offline by the broker's last will.
func TestLinkLastWill(t *testing.T) {
	url := embedded(t)
	cl := newFakeCloud(t, url, uniq("cloud"), nil)
	px := newProxy(t, url)
	station := uniq("st-will")
	r := startLink(t, px.url(), station, nil)
	r.waitOnline(t, true)
	px.ln.Close() // no way back: the link keeps retrying while we look
	px.cut()
	cl.waitOffline(t, station, 2) // after the online announcement
}
