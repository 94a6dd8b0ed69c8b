package cloud

import (
	"bytes"
	"encoding/json"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"labelstation/protocol"
)

// refuseFirstSubscribe lets everyone in and refuses the first subscription to each filter
// once, as a broker does that answers a SUBSCRIBE with a failure code (mochi's 0x91 when the
// packet id collides with one of its own queued deliveries, or 0x80).
type refuseFirstSubscribe struct {
	mqtt.HookBase
	refused atomic.Int32
}

func (h *refuseFirstSubscribe) ID() string { return "refuse-first-subscribe" }

func (h *refuseFirstSubscribe) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck}, []byte{b})
}

func (h *refuseFirstSubscribe) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }

func (h *refuseFirstSubscribe) OnACLCheck(_ *mqtt.Client, topic string, write bool) bool {
	if !write && strings.HasSuffix(topic, "/#") && h.refused.CompareAndSwap(0, 1) {
		return false
	}
	return true
}

// A refused subscription is tried again on the same connection: the station comes online and
// receives its jobs, instead of staying connected and deaf.
func TestLinkRetriesARefusedSubscription(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := mqtt.New(&mqtt.Options{InlineClient: true})
	h := &refuseFirstSubscribe{}
	if err := srv.AddHook(h, nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddListener(listeners.NewNet("tcp", ln)); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })

	station := uniq("st-resub")
	r := startLink(t, "tcp://"+ln.Addr().String(), station, nil)
	r.waitOnline(t, true)
	if h.refused.Load() != 1 {
		t.Fatal("the broker never refused a subscription: the test proves nothing")
	}
	job := protocol.Job{V: protocol.Version, ID: uniq("job"), Title: "after a refused subscribe", Format: "csv", Data: []byte("a\n1\n"), Labels: 1}
	raw, _ := json.Marshal(job)
	topic := protocol.StationTopic(station, protocol.LeafJob)
	b, err := cloudKey(t).sealer.Seal(topic, raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Publish(topic, b, false, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case j := <-r.jobs:
		if j.ID != job.ID {
			t.Fatalf("got job %q, want %q", j.ID, job.ID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no job: the link is online but not subscribed")
	}
}
