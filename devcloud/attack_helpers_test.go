package devcloud

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"labelstation/devcloud/jobs"
	"labelstation/devcloud/seed"
)

// Helpers for the attack tests: enrolled stations with real tokens, raw MQTT clients that behave
// as an attacker would (a CONNECT with any will, then a dropped TCP connection), and observers.

const waitFor = 20 * time.Second // generous: the test machine is shared and loaded

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

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

type attackEnv struct {
	t     *testing.T
	c     *Cloud
	clock *fakeClock
	logs  *syncBuffer
}

func startAttackCloud(t *testing.T) *attackEnv {
	t.Helper()
	return startCloudOn(t, nil)
}

// startCloudOn starts a cloud on store (nil: in memory); the caller closes the store.
func startCloudOn(t *testing.T, store jobs.Store) *attackEnv {
	t.Helper()
	sd, err := seed.Load(filepath.Join("..", "examples", "devcloud-seed.json"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &attackEnv{t: t, clock: &fakeClock{t: time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)}, logs: &syncBuffer{}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e.c, err = Start(ctx, Options{HTTP: h, MQTT: m, Seed: sd, Now: e.clock.Now, Store: store,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.c.Close() })
	return e
}

// station is an enrolled station's identity as an attacker who stole its tokens would hold it.
type station struct {
	id, access, refresh string
}

func postForm(t *testing.T, u string, v url.Values) map[string]any {
	t.Helper()
	resp, err := http.PostForm(u, v)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %d %v %v", u, resp.StatusCode, m, err)
	}
	return m
}

// enroll runs the device flow for serial, approved by alice, and returns the station's tokens.
func (e *attackEnv) enroll(serial string) station {
	e.t.Helper()
	d := postForm(e.t, e.c.Auth.DeviceAuthURL(), url.Values{"client_id": {"station"}, "scope": {"printing offline_access"}, "serial_number": {serial}})
	if err := e.c.Auth.Approve(d["user_code"].(string), "alice"); err != nil {
		e.t.Fatal(err)
	}
	e.clock.Advance(6 * time.Second)
	tok := postForm(e.t, e.c.Auth.TokenURL(), url.Values{"client_id": {"station"},
		"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {d["device_code"].(string)}})
	return station{id: tok["station_id"].(string), access: tok["access_token"].(string), refresh: tok["refresh_token"].(string)}
}

// refreshed returns the station with a newly issued access token (refresh-token rotation).
func (e *attackEnv) refreshed(s station) station {
	e.t.Helper()
	tok := postForm(e.t, e.c.Auth.TokenURL(), url.Values{"client_id": {"station"}, "grant_type": {"refresh_token"}, "refresh_token": {s.refresh}})
	s.access, s.refresh = tok["access_token"].(string), tok["refresh_token"].(string)
	return s
}

// service logs in with the cloud's own account: it sees everything, as the fleet manager does.
func (e *attackEnv) service(t *testing.T) (user, pass string) {
	return e.c.brokerOpt.ServiceUser, e.c.brokerOpt.ServicePassword
}

// rawConnect is an MQTT 3.1.1 CONNECT an attacker writes by hand.
type rawConnect struct {
	clientID, user, pass string
	willTopic            string
	willPayload          []byte
	willRetain           bool
	willQoS              byte
}

func mqttString(b *bytes.Buffer, s []byte) {
	binary.Write(b, binary.BigEndian, uint16(len(s)))
	b.Write(s)
}

func (r rawConnect) packet() []byte {
	var body bytes.Buffer
	mqttString(&body, []byte("MQTT"))
	body.WriteByte(4)   // protocol level 3.1.1
	flags := byte(0x02) // clean session
	if r.user != "" {
		flags |= 0x80
	}
	if r.pass != "" {
		flags |= 0x40
	}
	if r.willTopic != "" {
		flags |= 0x04 | r.willQoS<<3
		if r.willRetain {
			flags |= 0x20
		}
	}
	body.WriteByte(flags)
	binary.Write(&body, binary.BigEndian, uint16(60)) // keep alive
	mqttString(&body, []byte(r.clientID))
	if r.willTopic != "" {
		mqttString(&body, []byte(r.willTopic))
		mqttString(&body, r.willPayload)
	}
	if r.user != "" {
		mqttString(&body, []byte(r.user))
	}
	if r.pass != "" {
		mqttString(&body, []byte(r.pass))
	}
	var pk bytes.Buffer
	pk.WriteByte(0x10)
	n := body.Len()
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		pk.WriteByte(d)
		if n == 0 {
			break
		}
	}
	pk.Write(body.Bytes())
	return pk.Bytes()
}

// dial sends the CONNECT and returns the CONNACK return code (0 accepted) with the open
// connection; the caller drops it without DISCONNECT, which is what fires a will.
func (r rawConnect) dial(t *testing.T, addr string) (byte, net.Conn) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, waitFor)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(waitFor))
	if _, err := conn.Write(r.packet()); err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, 4)
	if _, err := io.ReadFull(conn, ack); err != nil {
		conn.Close()
		return 0xff, nil // closed without a CONNACK: refused all the same
	}
	if ack[0] != 0x20 {
		t.Fatalf("not a CONNACK: % x", ack)
	}
	conn.SetDeadline(time.Time{})
	return ack[3], conn
}

// client is a paho client with its received messages and connection losses.
type client struct {
	paho.Client
	msgs chan paho.Message
	lost chan error
}

// connect logs in to addr; err is the CONNECT's outcome.
func connect(t *testing.T, addr, clientID, user, pass string) (*client, error) {
	t.Helper()
	c := &client{msgs: make(chan paho.Message, 100), lost: make(chan error, 10)}
	o := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(clientID).SetUsername(user).SetPassword(pass).
		SetProtocolVersion(4).SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).SetOrderMatters(true).
		SetConnectTimeout(waitFor).SetWriteTimeout(waitFor).SetKeepAlive(30 * time.Second).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { c.msgs <- m }).
		SetConnectionLostHandler(func(_ paho.Client, err error) { c.lost <- err })
	// Ordered delivery: a marker that arrives proves everything before it arrived too. The
	// handler only fills a buffered channel, so ordering cannot deadlock paho.
	c.Client = paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(waitFor) {
		t.Fatalf("connect %s: timed out", clientID)
	}
	if tok.Error() != nil {
		return nil, tok.Error()
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c, nil
}

func mustConnect(t *testing.T, addr, clientID, user, pass string) *client {
	t.Helper()
	c, err := connect(t, addr, clientID, user, pass)
	if err != nil {
		t.Fatalf("connect %s: %v", clientID, err)
	}
	return c
}

// subscribe returns the SUBACK code per filter (0x80 = refused). mochi answers 0x91 "packet
// identifier in use" when the SUBSCRIBE's id equals one of its own unacknowledged deliveries
// to this client (it keeps both directions' ids in one table); a client then subscribes again.
func (c *client) subscribe(t *testing.T, filters ...string) []byte {
	t.Helper()
	codes := map[string]byte{}
	todo := filters
	for attempt := 0; len(todo) > 0; attempt++ {
		if attempt == 5 {
			t.Fatalf("subscribe %v: packet identifier in use 5 times", todo)
		}
		m := map[string]byte{}
		for _, f := range todo {
			m[f] = 1
		}
		tok := c.SubscribeMultiple(m, nil)
		if !tok.WaitTimeout(waitFor) {
			t.Fatalf("subscribe %v: timed out", todo)
		}
		if err := tok.Error(); err != nil {
			t.Fatalf("subscribe %v: %v", todo, err)
		}
		res := tok.(*paho.SubscribeToken).Result()
		var again []string
		for _, f := range todo {
			if res[f] == 0x91 {
				again = append(again, f)
			} else {
				codes[f] = res[f]
			}
		}
		todo = again
	}
	out := make([]byte, len(filters))
	for i, f := range filters {
		out[i] = codes[f]
	}
	return out
}

func (c *client) publish(t *testing.T, topic string, retain bool, payload string) {
	t.Helper()
	tok := c.Publish(topic, 1, retain, payload)
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// until collects messages until one on topic with payload arrives (a marker sent after the
// attack through the same subscription), and returns everything that came before it.
func (c *client) until(t *testing.T, topic, payload string) []paho.Message {
	t.Helper()
	var before []paho.Message
	deadline := time.After(waitFor)
	for {
		select {
		case m := <-c.msgs:
			if m.Topic() == topic && string(m.Payload()) == payload {
				return before
			}
			before = append(before, m)
		case <-deadline:
			t.Fatalf("marker %s %q never arrived; got %s", topic, payload, describe(before))
			return nil
		}
	}
}

// attemptForbiddenPublish publishes at QoS 1 and reports whether the broker let it through:
// a broker refusing it disconnects a 3.1.1 client (or never acknowledges).
func (c *client) attemptForbiddenPublish(t *testing.T, topic string, retain bool, payload string) {
	t.Helper()
	tok := c.Publish(topic, 1, retain, payload)
	select {
	case <-c.lost:
		return
	case <-tok.Done():
		if tok.Error() != nil {
			return
		}
		// Acknowledged: the caller's observers decide whether anything got through.
	case <-time.After(waitFor):
	}
}

func describe(ms []paho.Message) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "[%s retained=%v %.80q] ", m.Topic(), m.Retained(), m.Payload())
	}
	if b.Len() == 0 {
		return "nothing"
	}
	return b.String()
}

// jobPayload is a print job as an attacker would forge it.
func jobPayload(station string) string {
	b, _ := json.Marshal(map[string]any{"v": 1, "id": "job_INJECTED", "title": "injected", "user": map[string]string{"id": "mallory", "name": "Mallory"},
		"layout": json.RawMessage(`{}`), "format": "csv", "data": []byte("^XA^FDINJECTED for " + station + "^FS^XZ"), "labels": 1})
	return string(b)
}

func configPayload() string {
	return `{"v":1,"version":"cfg_INJECTED","config":{"v":1,"badge":{"hash_key":"00000000000000000000000000000000"}}}`
}
