package jobs

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"labelstation/protocol"
)

// testStation is a station at the MQTT level: it sends requests and collects what the cloud
// sends back on its own topics.
type testStation struct {
	t       *testing.T
	id      string
	c       paho.Client
	msgs    chan paho.Message
	pending []paho.Message // received, not yet expected
}

func newTestStation(t *testing.T, url, id string) *testStation {
	t.Helper()
	st := &testStation{t: t, id: id, msgs: make(chan paho.Message, 1024)}
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetUsername(id).SetPassword("token-" + id).
		SetCleanSession(false).SetOrderMatters(false)
	st.c = paho.NewClient(o)
	if tok := st.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("station %s connect: %v", id, tok.Error())
	}
	t.Cleanup(func() { st.c.Disconnect(0) })
	for _, leaf := range []string{protocol.LeafLookupReply, protocol.LeafReleaseReply, protocol.LeafJob, protocol.LeafJobStatusAck} {
		sub := st.c.Subscribe(protocol.StationTopic(id, leaf), 1, func(_ paho.Client, m paho.Message) { st.msgs <- m })
		if !sub.WaitTimeout(10*time.Second) || sub.Error() != nil {
			t.Fatalf("station %s subscribe %s: %v", id, leaf, sub.Error())
		}
	}
	return st
}

func (st *testStation) send(leaf string, v any) {
	st.t.Helper()
	b, _ := json.Marshal(v)
	if tok := st.c.Publish(protocol.StationTopic(st.id, leaf), 1, false, b); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		st.t.Fatalf("station %s publish %s: %v", st.id, leaf, tok.Error())
	}
}

// expect returns the next message on leaf, decoded into v; messages on other leaves wait for
// their own expect (handlers run concurrently, so arrival order is not sending order).
func (st *testStation) expect(leaf string, v any) {
	st.t.Helper()
	want := protocol.StationTopic(st.id, leaf)
	deadline := time.After(30 * time.Second)
	for {
		for i, m := range st.pending {
			if m.Topic() == want {
				st.pending = append(st.pending[:i], st.pending[i+1:]...)
				if err := json.Unmarshal(m.Payload(), v); err != nil {
					st.t.Fatalf("%s: %v", want, err)
				}
				return
			}
		}
		select {
		case m := <-st.msgs:
			st.pending = append(st.pending, m)
		case <-deadline:
			st.t.Fatalf("station %s: nothing on %s", st.id, leaf)
		}
	}
}

func aliceBadge() string { return protocol.BadgeHash(testBadgeKey, "04A1B2C3D4E580") }

// devcloud's job service stops right after releasing a job, before the station reports on it,
// and starts again on the same store: the held job is still held, the released one still the
// station's, and the station's later status applies.
func TestRestartMidReleaseLosesNothing(t *testing.T) {
	forEachStore(t, func(t *testing.T, k storeKind) {
		if !k.durable {
			t.Skip("memory store: a restart starts empty by design")
		}
		url := startBroker(t)
		store, reopen := k.open(t)
		now := time.Now()
		mustAdd(t, store,
			Job{ID: "j1", User: "alice", Title: "first", Data: []byte("a\n1\n"), Labels: 1, State: StateHeld, Created: now, Updated: now},
			Job{ID: "j2", User: "alice", Title: "second", Labels: 1, State: StateHeld, Created: now.Add(time.Second), Updated: now})
		svc := startServiceOn(t, url, Options{Store: store, ClientID: "jobs-a"})
		st := newTestStation(t, url, "st-1")

		st.send(protocol.LeafRelease, protocol.ReleaseRequest{V: protocol.Version, Req: "r1", Badge: aliceBadge(), Jobs: []string{"j1"}})
		var job protocol.Job
		st.expect(protocol.LeafJob, &job)
		var rep protocol.ReleaseReply
		st.expect(protocol.LeafReleaseReply, &rep)
		if job.ID != "j1" || string(job.Data) != "a\n1\n" || rep.Error != nil || strings.Join(rep.Released, ",") != "j1" {
			t.Fatalf("release: job %+v reply %+v", job, rep)
		}

		svc.Close()
		store = reopen(store)
		startServiceOn(t, url, Options{Store: store, ClientID: "jobs-a"})

		for seq, state := range []string{protocol.JobClaimed, protocol.JobPrinted} {
			st.send(protocol.LeafJobStatus, protocol.JobStatus{V: protocol.Version, Job: "j1", State: state, Printed: seq, Total: 1, Seq: seq + 1})
			var ack protocol.JobStatusAck
			st.expect(protocol.LeafJobStatusAck, &ack)
			if ack.Error != "" || ack.Seq != seq+1 {
				t.Fatalf("ack after restart: %+v", ack)
			}
		}
		if j, err := store.Get("j1"); err != nil || j.State != StatePrinted || j.Station != "st-1" || j.Printed != 1 {
			t.Fatalf("j1 after restart: %+v, %v", j, err)
		}
		st.send(protocol.LeafLookup, protocol.LookupRequest{V: protocol.Version, Req: "l1", Badge: aliceBadge()})
		var look protocol.LookupReply
		st.expect(protocol.LeafLookupReply, &look)
		if look.Error != nil || len(look.Jobs) != 1 || look.Jobs[0].ID != "j2" {
			t.Fatalf("lookup after restart: %s", fmt.Sprint(look))
		}
	})
}
