package cloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"labelstation/protocol"
)

// LookupRelease over a real broker: one request with all set and no jobs; a cloud that knows it
// answers with the owner and the released jobs, or with unknown_badge; one that predates it
// (an empty release without an owner) or calls it a bad request is ErrNoReleaseAll, so the
// station asks in two steps.
func TestLookupRelease(t *testing.T) {
	url := embedded(t)
	station := uniq("st-all")
	cl := newFakeCloud(t, url, uniq("cloud"), nil)
	var mode atomic.Value // "new", "old", "bad", "unknown"
	mode.Store("new")
	requests := make(chan protocol.ReleaseRequest, 8)
	sub := cl.c.Subscribe(protocol.AllStations(protocol.LeafRelease), 1, func(c paho.Client, m paho.Message) {
		st, _, _ := protocol.ParseStationTopic(m.Topic())
		var req protocol.ReleaseRequest
		if protocol.Decode(m.Payload(), &req) != nil {
			return
		}
		requests <- req
		rep := protocol.ReleaseReply{V: protocol.Version, Req: req.Req, Released: []string{}}
		switch mode.Load() {
		case "new":
			rep.User = &protocol.User{ID: "alice", Name: "Alice"}
			rep.Released = []string{"j1"}
			rep.Jobs = []protocol.JobSummary{{ID: "j1", Title: "Labels", Labels: 3}}
		case "bad":
			rep.Error = &protocol.Error{Code: protocol.CodeBadRequest, Message: "unknown request"}
		case "unknown":
			rep.Error = &protocol.Error{Code: protocol.CodeUnknownBadge, Message: "this badge is not registered"}
		}
		// "old": what a cloud that ignores all answers, an empty release.
		b, _ := json.Marshal(rep)
		topic := protocol.StationTopic(st, protocol.LeafReleaseReply)
		sealed, _ := cl.seal.Seal(topic, b)
		c.Publish(topic, 1, false, sealed) // not waited on: this handler runs in paho's order
	})
	if !sub.WaitTimeout(10*time.Second) || sub.Error() != nil {
		t.Fatal(sub.Error())
	}
	r := startLink(t, url, station, nil)
	r.waitOnline(t, true)

	rep, err := r.link.LookupRelease(context.Background(), "5f0e1a2b")
	if err != nil || rep.User == nil || rep.User.Name != "Alice" || fmt.Sprint(rep.Released) != "[j1]" || len(rep.Jobs) != 1 || rep.Jobs[0].Labels != 3 {
		t.Fatalf("LookupRelease = %+v, %v", rep, err)
	}
	req := <-requests
	if !req.All || req.Jobs == nil || len(req.Jobs) != 0 || req.Badge != "5f0e1a2b" {
		t.Fatalf("request %+v, want all with an empty job list and the badge hash", req)
	}

	mode.Store("unknown")
	rep, err = r.link.LookupRelease(context.Background(), "5f0e1a2b")
	if err != nil || rep.Error == nil || rep.Error.Code != protocol.CodeUnknownBadge {
		t.Fatalf("unknown badge: %+v, %v", rep, err)
	}
	for _, m := range []string{"old", "bad"} {
		mode.Store(m)
		if rep, err := r.link.LookupRelease(context.Background(), "5f0e1a2b"); !errors.Is(err, ErrNoReleaseAll) {
			t.Fatalf("%s cloud: %+v, %v; want ErrNoReleaseAll", m, rep, err)
		}
	}
	// The two-step release is unchanged: no all on the wire.
	mode.Store("old")
	if _, err := r.link.Release(context.Background(), "5f0e1a2b", []string{"j1"}); err != nil {
		t.Fatal(err)
	}
	// The fake recorded it before it replied.
	var raw map[string]any
	cl.mu.Lock()
	sent := cl.got[protocol.StationTopic(station, protocol.LeafRelease)]
	cl.mu.Unlock()
	json.Unmarshal(sent[len(sent)-1], &raw)
	if _, ok := raw["all"]; ok {
		t.Fatalf("a two-step release carried all: %v", raw)
	}
}
