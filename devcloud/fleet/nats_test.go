package fleet_test

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"labelstation/internal/fleettest"
)

// What the NATS server's MQTT gateway (2.9) does differently from Mosquitto and the embedded
// broker, found by trying; docs/deploy-broker.md lists it. The fleet leg avoids each: QoS 1
// only, no shared subscriptions, station ids and group names without '.'.
func TestNATSMQTTLimits(t *testing.T) {
	b := fleettest.NATS(t)
	addr := strings.TrimPrefix(b.URL, "tcp://")
	type msg struct {
		topic, payload string
		retained       bool
	}
	got := make(chan msg, 100)
	handler := func(_ paho.Client, m paho.Message) {
		got <- msg{m.Topic(), string(m.Payload()), m.Retained()}
	}
	var mu sync.Mutex
	raws := map[string]net.Conn{}
	raw := func(id string) net.Conn { mu.Lock(); defer mu.Unlock(); return raws[id] }
	connect := func(id string, will bool) paho.Client {
		t.Helper()
		o := paho.NewClientOptions().AddBroker(b.URL).SetClientID(id).SetUsername(id).SetPassword("any").
			SetAutoReconnect(false).SetCleanSession(true).SetOrderMatters(false).SetDefaultPublishHandler(handler)
		if will {
			o.SetWill("w/"+id, "gone", 1, true)
		}
		o.SetCustomOpenConnectionFn(func(*url.URL, paho.ClientOptions) (net.Conn, error) {
			c, err := net.Dial("tcp", addr)
			mu.Lock()
			raws[id] = c
			mu.Unlock()
			return c, err
		})
		c := paho.NewClient(o)
		if tk := c.Connect(); !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
			t.Fatalf("connect %s: %v", id, tk.Error())
		}
		t.Cleanup(func() { c.Disconnect(0) })
		return c
	}
	subscribe := func(c paho.Client, filter string, qos byte) byte {
		t.Helper()
		tk := c.Subscribe(filter, qos, handler)
		if !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
			t.Fatalf("subscribe %s: %v", filter, tk.Error())
		}
		for _, granted := range tk.(*paho.SubscribeToken).Result() {
			return granted
		}
		t.Fatalf("subscribe %s: no result", filter)
		return 0
	}
	publish := func(c paho.Client, topic string, qos byte, retained bool, payload string) error {
		t.Helper()
		tk := c.Publish(topic, qos, retained, payload)
		if !tk.WaitTimeout(10 * time.Second) {
			return fmt.Errorf("publish %s: no answer", topic)
		}
		return tk.Error()
	}
	// next returns the next message, or ok false after d (used where nothing must come).
	next := func(d time.Duration) (msg, bool) {
		select {
		case m := <-got:
			return m, true
		case <-time.After(d):
			return msg{}, false
		}
	}

	sub := connect("watcher", false)
	pub := connect("publisher", false)

	t.Run("QoS 2 subscription granted as 1", func(t *testing.T) {
		if q := subscribe(sub, "q2/x", 2); q != 1 {
			t.Fatalf("granted QoS %d", q)
		}
	})
	t.Run("'.' in a topic refused", func(t *testing.T) {
		if q := subscribe(sub, "grp/lab.1/cmd", 1); q != 0x80 {
			t.Fatalf("SUBACK %#x, want 0x80", q)
		}
	})
	t.Run("shared subscriptions deliver nothing", func(t *testing.T) {
		a, b := connect("share-a", false), connect("share-b", false)
		subscribe(a, "$share/g/sh/x", 1)
		subscribe(b, "$share/g/sh/x", 1)
		if err := publish(pub, "sh/x", 1, false, "for one of them"); err != nil {
			t.Fatal(err)
		}
		if m, ok := next(2 * time.Second); ok {
			t.Fatalf("delivered %+v", m)
		}
	})
	t.Run("will on a cut connection, retained; none on takeover", func(t *testing.T) {
		subscribe(sub, "w/#", 1)
		connect("cut", true)
		raw("cut").Close()
		m, ok := next(10 * time.Second)
		if !ok || m.topic != "w/cut" {
			t.Fatalf("will of a cut connection: %+v %v", m, ok)
		}
		late := connect("late", false)
		subscribe(late, "w/cut", 1)
		if m, ok := next(10 * time.Second); !ok || !m.retained {
			t.Fatalf("retained will: %+v %v", m, ok)
		}
		connect("taken", true)
		connect("taken", false) // the same client id again: the first connection is replaced
		if m, ok := next(2 * time.Second); ok {
			t.Fatalf("will published on takeover: %+v", m)
		}
	})
	t.Run("an empty retained message clears the topic", func(t *testing.T) {
		if err := publish(pub, "ret/y", 1, true, "keep"); err != nil {
			t.Fatal(err)
		}
		if err := publish(pub, "ret/y", 1, true, ""); err != nil {
			t.Fatal(err)
		}
		subscribe(connect("reader", false), "ret/y", 1)
		if m, ok := next(2 * time.Second); ok {
			t.Fatalf("delivered %+v", m)
		}
	})
	// Last: it costs the connection.
	t.Run("QoS 2 publish closes the connection", func(t *testing.T) {
		err := publish(pub, "q2/x", 2, false, "exactly once")
		if err == nil || pub.IsConnectionOpen() {
			t.Fatalf("QoS 2 publish: err %v, connected %v", err, pub.IsConnectionOpen())
		}
	})
}
