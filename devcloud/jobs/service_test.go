package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"labelstation/devcloud/broker"
	"labelstation/devcloud/seed"
	"labelstation/protocol"
)

// The service is tested over the embedded broker on loopback; a station is a plain MQTT client
// logging in with "token-<station>".

func startService(t *testing.T) (*Service, string) {
	t.Helper()
	url := startBroker(t)
	return startServiceOn(t, url, Options{}), url
}

// startBroker starts the embedded broker on loopback and returns its URL.
func startBroker(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.Start(broker.Options{
		Listener: ln, ServiceUser: "svc", ServicePassword: "svc-secret",
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

// testBadgeKey is the badge hash key of test services.
var testBadgeKey = []byte("0123456789abcdef")

// startServiceOn starts a job service on the broker at url, with opt's store and client id, and
// waits until it is subscribed.
func startServiceOn(t *testing.T, url string, opt Options) *Service {
	t.Helper()
	sd, err := seed.Load(filepath.Join("..", "..", "examples", "devcloud-seed.json"))
	if err != nil {
		t.Fatal(err)
	}
	if opt.Username == "" {
		opt.Username, opt.Password = "svc", "svc-secret"
	}
	opt.Seed, opt.Broker, opt.BadgeKey = sd, url, testBadgeKey
	opt.VerifyUser = func(context.Context, string) (string, error) { return "", errors.New("unused") }
	s, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitOnline(ctx); err != nil { // subscribed
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// stationClient connects as station id and delivers the acks it receives on acks.
func stationClient(t *testing.T, url, id string) (paho.Client, <-chan protocol.JobStatusAck) {
	t.Helper()
	acks := make(chan protocol.JobStatusAck, 16)
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetUsername(id).SetPassword("token-" + id)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("station connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	sub := c.Subscribe(protocol.StationTopic(id, protocol.LeafJobStatusAck), 1, func(_ paho.Client, m paho.Message) {
		var a protocol.JobStatusAck
		if err := protocol.Decode(m.Payload(), &a); err != nil {
			t.Errorf("ack: %v", err)
			return
		}
		acks <- a
	})
	if !sub.WaitTimeout(10*time.Second) || sub.Error() != nil {
		t.Fatalf("subscribe: %v", sub.Error())
	}
	return c, acks
}

func sendStatus(t *testing.T, c paho.Client, station string, st protocol.JobStatus) {
	t.Helper()
	st.V = protocol.Version
	b, _ := json.Marshal(st)
	if tok := c.Publish(protocol.StationTopic(station, protocol.LeafJobStatus), 1, false, b); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
}

func nextAck(t *testing.T, acks <-chan protocol.JobStatusAck) protocol.JobStatusAck {
	t.Helper()
	select {
	case a := <-acks:
		return a
	case <-time.After(20 * time.Second):
		t.Fatal("no job/status/ack from the job service")
		return protocol.JobStatusAck{}
	}
}

func TestStatusIsAcknowledgedAfterStoring(t *testing.T) {
	s, url := startService(t)
	now := time.Now()
	s.Store().Add(Job{ID: "j1", User: "alice", Labels: 2, State: StateHeld, Created: now})
	s.Store().Release("alice", "st-1", []string{"j1"}, now)
	c, acks := stationClient(t, url, "st-1")

	sendStatus(t, c, "st-1", protocol.JobStatus{Job: "j1", State: protocol.JobPrinted, Printed: 2, Total: 2, Seq: 3})
	a := nextAck(t, acks)
	if a != (protocol.JobStatusAck{V: 1, Job: "j1", State: protocol.JobPrinted, Seq: 3}) {
		t.Fatalf("ack = %+v", a)
	}
	// The ack follows the store: the job is printed by the time the station hears it.
	if j, _ := s.Store().Get("j1"); j.State != StatePrinted || j.Printed != 2 {
		t.Fatalf("job after ack: %+v", j)
	}
	// A resend (the station did not hear the first ack) is acknowledged again and changes nothing.
	sendStatus(t, c, "st-1", protocol.JobStatus{Job: "j1", State: protocol.JobPrinted, Printed: 2, Total: 2, Seq: 3})
	if a := nextAck(t, acks); a.Seq != 3 || a.Error != "" {
		t.Fatalf("repeat ack = %+v", a)
	}
	// An older status arriving late is acknowledged but does not move the job back.
	sendStatus(t, c, "st-1", protocol.JobStatus{Job: "j1", State: protocol.JobPrinting, Printed: 1, Total: 2, Seq: 2})
	if a := nextAck(t, acks); a.Seq != 2 || a.Error != "" {
		t.Fatalf("late ack = %+v", a)
	}
	if j, _ := s.Store().Get("j1"); j.State != StatePrinted {
		t.Fatalf("a late status moved the job to %s", j.State)
	}
	// A status the cloud refuses for good is acknowledged with the reason, so the station stops.
	sendStatus(t, c, "st-1", protocol.JobStatus{Job: "nope", State: protocol.JobFailed, Seq: 1, Error: "undecodable job"})
	if a := nextAck(t, acks); a.Job != "nope" || !strings.Contains(a.Error, "not found") {
		t.Fatalf("refusal ack = %+v", a)
	}
}
