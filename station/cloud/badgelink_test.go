package cloud

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"labelstation/protocol"
)

// LinkBadge over a real broker: the request carries only the hash, the sealed reply is opened
// and checked, and the notice of a confirmation arrives; an unsigned reply is refused (the
// request times out), and a sealed reply the station could not show is an error naming the field.
func TestLinkBadge(t *testing.T) {
	url := embedded(t)
	station := uniq("st-link")
	cl := newFakeCloud(t, url, uniq("cloud"), nil)
	var mode atomic.Value // "good", "unsigned", "bad"
	mode.Store("good")
	badges := make(chan string, 4)
	sub := cl.c.Subscribe(protocol.AllStations(protocol.LeafBadgeLink), 1, func(c paho.Client, m paho.Message) {
		st, _, _ := protocol.ParseStationTopic(m.Topic())
		var req protocol.BadgeLinkRequest
		if protocol.Decode(m.Payload(), &req) != nil {
			return
		}
		badges <- string(m.Payload())
		rep := protocol.BadgeLinkReply{V: protocol.Version, Req: req.Req, Code: "BDFG-HJKL", URI: "https://c.example/device/badge",
			URIComplete: "https://c.example/device/badge?code=BDFG-HJKL", ExpiresIn: 300}
		if mode.Load() == "bad" {
			rep.URIComplete = "javascript:alert(1)"
		}
		b, _ := json.Marshal(rep)
		topic := protocol.StationTopic(st, protocol.LeafBadgeLinkReply)
		if mode.Load() != "unsigned" {
			b, _ = cl.seal.Seal(topic, b)
		}
		c.Publish(topic, 1, false, b) // not waited on: this handler runs in paho's order
	})
	if !sub.WaitTimeout(10*time.Second) || sub.Error() != nil {
		t.Fatal(sub.Error())
	}
	online := make(chan struct{})
	linked := make(chan protocol.BadgeLinked, 1)
	var once sync.Once
	l, err := New(Options{Broker: url, StationID: station, Verify: verifier(t, station),
		Password: func(context.Context) (string, error) { return "token-" + station, nil },
		OnJob:    func(protocol.Job) error { return nil }, RequestTimeout: 2 * time.Second,
		OnBadgeLinked: func(b protocol.BadgeLinked) { linked <- b },
		OnOnline: func(up bool) {
			if up {
				once.Do(func() { close(online) })
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-online:
	case <-time.After(10 * time.Second):
		t.Fatal("link never online")
	}

	rep, err := l.LinkBadge(context.Background(), "5f0e1a2b")
	if err != nil || rep.Code != "BDFG-HJKL" || rep.ExpiresIn != 300 {
		t.Fatalf("LinkBadge = %+v, %v", rep, err)
	}
	var sent map[string]any
	json.Unmarshal([]byte(<-badges), &sent)
	if sent["badge"] != "5f0e1a2b" || len(sent) != 3 {
		t.Fatalf("the request carried %v, want v, req and the badge hash only", sent)
	}

	// Someone confirmed the code: the station hears it, sealed.
	b, _ := json.Marshal(protocol.BadgeLinked{V: protocol.Version, Code: "BDFG-HJKL", User: protocol.User{ID: "alice", Name: "Alice"}})
	cl.publishSealed(t, protocol.StationTopic(station, protocol.LeafBadgeLinked), b)
	select {
	case got := <-linked:
		if got.Code != "BDFG-HJKL" || got.User.Name != "Alice" {
			t.Fatalf("badge linked notice = %+v", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("badge linked notice not delivered")
	}

	mode.Store("bad")
	if _, err := l.LinkBadge(context.Background(), "5f0e1a2b"); !errors.Is(err, protocol.ErrBadgeLinkReply) {
		t.Fatalf("a reply with a javascript: URL: %v, want ErrBadgeLinkReply", err)
	}
	mode.Store("unsigned")
	if _, err := l.LinkBadge(context.Background(), "5f0e1a2b"); !errors.Is(err, ErrTimeout) {
		t.Fatalf("an unsigned reply: %v, want no answer (ErrTimeout)", err)
	}
}
