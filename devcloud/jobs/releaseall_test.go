package jobs

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	jose "github.com/go-jose/go-jose/v4"

	"labelstation/protocol"
)

// allStation is a station on the broker that sends one-round-trip releases and records what
// reaches its subtree, opened with the service's key, in arrival order.
type allStation struct {
	id  string
	c   paho.Client
	got chan received
}

type received struct {
	leaf string
	msg  []byte
}

func dialAllStation(t *testing.T, url, id string) *allStation {
	t.Helper()
	st := &allStation{id: id, got: make(chan received, 256)}
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetUsername(id).SetPassword("token-" + id).
		SetOrderMatters(true) // arrival order is part of what is tested; the handler never waits
	st.c = paho.NewClient(o)
	if tok := st.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("station %s connect: %v", id, tok.Error())
	}
	t.Cleanup(func() { st.c.Disconnect(0) })
	_, pub := testSealer(t)
	sub := st.c.Subscribe(protocol.StationFilter(id), 1, func(_ paho.Client, m paho.Message) {
		_, leaf, _ := protocol.ParseStationTopic(m.Topic())
		if protocol.FromStation(leaf) {
			return // our own request
		}
		_, msg, err := protocol.Open(m.Payload(), m.Topic(), func(string) (*jose.JSONWebKey, error) { return &pub, nil })
		if err != nil {
			t.Errorf("station %s: %s not sealed by the service: %v", id, leaf, err)
			return
		}
		st.got <- received{leaf, msg}
	})
	if !sub.WaitTimeout(10*time.Second) || sub.Error() != nil {
		t.Fatalf("station %s subscribe: %v", id, sub.Error())
	}
	return st
}

// send publishes req; it may run on any goroutine, so it reports failure with t.Errorf.
func (st *allStation) send(t *testing.T, req protocol.ReleaseRequest) {
	t.Helper()
	req.V = protocol.Version
	b, _ := json.Marshal(req)
	if tok := st.c.Publish(protocol.StationTopic(st.id, protocol.LeafRelease), 1, false, b); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Errorf("station %s: publish %s: %v", st.id, req.Req, tok.Error())
	}
}

// reply waits for the release reply to req; the job messages that arrived before it are
// returned too (there must be none: the reply comes first).
func (st *allStation) reply(t *testing.T, req string) (protocol.ReleaseReply, []string) {
	t.Helper()
	var before []string
	deadline := time.After(20 * time.Second)
	for {
		select {
		case r := <-st.got:
			switch r.leaf {
			case protocol.LeafJob:
				var j protocol.Job
				if err := protocol.Decode(r.msg, &j); err != nil {
					t.Fatalf("job: %v", err)
				}
				before = append(before, j.ID)
			case protocol.LeafReleaseReply:
				var rep protocol.ReleaseReply
				if err := protocol.Decode(r.msg, &rep); err != nil {
					t.Fatalf("release reply: %v", err)
				}
				if rep.Req == req {
					return rep, before
				}
			}
		case <-deadline:
			t.Fatalf("station %s: no release reply to %s", st.id, req)
		}
	}
}

// jobs collects n job messages.
func (st *allStation) jobs(t *testing.T, n int) []protocol.Job {
	t.Helper()
	var out []protocol.Job
	deadline := time.After(20 * time.Second)
	for len(out) < n {
		select {
		case r := <-st.got:
			if r.leaf != protocol.LeafJob {
				continue
			}
			var j protocol.Job
			if err := protocol.Decode(r.msg, &j); err != nil {
				t.Fatalf("job: %v", err)
			}
			out = append(out, j)
		case <-deadline:
			t.Fatalf("station %s: %d of %d jobs arrived", st.id, len(out), n)
		}
	}
	return out
}

var (
	aliceHash = protocol.BadgeHash(testBadgeKey, "04A1B2C3D4E580") // examples/devcloud-seed.json
	bobHash   = protocol.BadgeHash(testBadgeKey, "0E5F1C2A")
)

// One request looks the badge up and releases every held job of its owner that has not
// expired: the reply names the owner and the jobs (as a lookup reply does) and comes before
// the job messages; another user's jobs and expired ones stay where they are.
func TestReleaseAllReleasesEveryHeldJob(t *testing.T) {
	s, url := startService(t)
	now := time.Now()
	mustAdd(t, s.Store(),
		Job{ID: "a1", Title: "Parcels", Layout: "shipping", User: "alice", DataFormat: "csv", Data: []byte("name\nAda\n"), Labels: 1, State: StateHeld, Created: now, Updated: now},
		Job{ID: "a2", Title: "Bins", Layout: "shipping", User: "alice", DataFormat: "csv", Data: []byte("name\nBo\nCy\n"), Labels: 2, State: StateHeld, Created: now.Add(time.Millisecond), Updated: now},
		Job{ID: "a3", Title: "Old", User: "alice", Labels: 1, State: StateHeld, Created: now, Updated: now, Expires: now.Add(-time.Second)},
		Job{ID: "b1", Title: "Bob's", User: "bob", Labels: 1, State: StateHeld, Created: now, Updated: now})
	st := dialAllStation(t, url, "st-all")

	st.send(t, protocol.ReleaseRequest{Req: "r1", Badge: aliceHash, All: true})
	rep, early := st.reply(t, "r1")
	if len(early) > 0 {
		t.Fatalf("jobs %v arrived before the reply", early)
	}
	if rep.Error != nil || rep.User == nil || rep.User.ID != "alice" || !rep.ReleasedAll() {
		t.Fatalf("reply %+v (error %+v)", rep, rep.Error)
	}
	if fmt.Sprint(rep.Released) != "[a1 a2]" || len(rep.Jobs) != 2 || rep.Jobs[0] != (protocol.JobSummary{ID: "a1", Title: "Parcels", Labels: 1, Submitted: rep.Jobs[0].Submitted}) ||
		rep.Jobs[1].ID != "a2" || rep.Jobs[1].Labels != 2 || rep.Jobs[1].Submitted.IsZero() {
		t.Fatalf("released %v, jobs %+v; want a1 and a2 with their titles and label counts", rep.Released, rep.Jobs)
	}
	got := st.jobs(t, 2)
	if got[0].ID != "a1" || got[1].ID != "a2" || string(got[1].Data) != "name\nBo\nCy\n" || got[0].User.ID != "alice" || len(got[0].Layout) == 0 {
		t.Fatalf("job messages %+v", got)
	}
	for id, want := range map[string]string{"a1": StateReleased, "a2": StateReleased, "b1": StateHeld} {
		if j, err := s.Store().Get(id); err != nil || j.State != want || (want == StateReleased && j.Station != "st-all") {
			t.Fatalf("job %s: %+v, %v; want %s", id, j, err, want)
		}
	}
	// The expired job stays where it was, or the sweeper has marked it.
	if j, err := s.Store().Get("a3"); err != nil || j.State != StateHeld && j.State != StateExpired || j.Station != "" {
		t.Fatalf("expired job a3: %+v, %v; want held or expired, released to no one", j, err)
	}

	// Nothing left: the owner, no jobs.
	st.send(t, protocol.ReleaseRequest{Req: "r2", Badge: aliceHash, All: true})
	if rep, _ := st.reply(t, "r2"); rep.Error != nil || rep.User == nil || len(rep.Released) != 0 || len(rep.Jobs) != 0 {
		t.Fatalf("second reply %+v", rep)
	}
	// An unknown badge is answered as a lookup would be, so the badge-link flow starts.
	st.send(t, protocol.ReleaseRequest{Req: "r3", Badge: strings.Repeat("0", 64), All: true})
	if rep, _ := st.reply(t, "r3"); rep.Error == nil || rep.Error.Code != protocol.CodeUnknownBadge || rep.User != nil || !rep.ReleasedAll() {
		t.Fatalf("unknown badge: %+v", rep)
	}
	// All with a list of jobs is refused, and releases nothing.
	st.send(t, protocol.ReleaseRequest{Req: "r4", Badge: bobHash, All: true, Jobs: []string{"b1"}})
	if rep, _ := st.reply(t, "r4"); rep.Error == nil || rep.Error.Code != protocol.CodeBadRequest || len(rep.Released) != 0 {
		t.Fatalf("all with jobs: %+v", rep)
	}
	if j, _ := s.Store().Get("b1"); j.State != StateHeld {
		t.Fatalf("b1 is %s after a refused request", j.State)
	}
	// The two-step release is unchanged.
	st.send(t, protocol.ReleaseRequest{Req: "r5", Badge: bobHash, Jobs: []string{"b1"}})
	if rep, _ := st.reply(t, "r5"); rep.Error != nil || fmt.Sprint(rep.Released) != "[b1]" || rep.User != nil || rep.Jobs != nil {
		t.Fatalf("two-step release: %+v", rep)
	}
}

// Two stations send the one-round-trip release for one user at the same moment, many times
// over, against every store: every job goes to exactly one of them, and each station's reply
// names exactly the jobs it then receives.
func TestReleaseAllRacingStationsNeverShareAJob(t *testing.T) {
	forEachStore(t, func(t *testing.T, k storeKind) {
		store, _ := k.open(t)
		url := startBroker(t)
		s := startServiceOn(t, url, Options{Store: store})
		stations := []*allStation{dialAllStation(t, url, "st-a"), dialAllStation(t, url, "st-b")}
		const rounds, perRound = 15, 4
		owner := map[string]string{}
		for r := range rounds {
			now := time.Now()
			var want []string
			for i := range perRound {
				id := fmt.Sprintf("r%02d-%d", r, i)
				want = append(want, id)
				mustAdd(t, s.Store(), Job{ID: id, User: "alice", Layout: "shipping", DataFormat: "csv", Data: []byte("name\nAda\n"), Labels: 1, State: StateHeld, Created: now.Add(time.Duration(i) * time.Millisecond), Updated: now})
			}
			var wg sync.WaitGroup
			replies := make([]protocol.ReleaseReply, len(stations))
			for _, st := range stations {
				wg.Add(1)
				go func() {
					defer wg.Done()
					st.send(t, protocol.ReleaseRequest{Req: fmt.Sprintf("%s-%d", st.id, r), Badge: aliceHash, All: true})
				}()
			}
			wg.Wait()
			if t.Failed() {
				t.FailNow()
			}
			var all []string
			for i, st := range stations {
				rep, _ := st.reply(t, fmt.Sprintf("%s-%d", st.id, r))
				if rep.Error != nil {
					t.Fatalf("round %d %s: %+v", r, st.id, rep.Error)
				}
				replies[i] = rep
				for _, j := range st.jobs(t, len(rep.Released)) {
					if !slices.Contains(rep.Released, j.ID) {
						t.Fatalf("round %d: %s received %s, not in its reply %v", r, st.id, j.ID, rep.Released)
					}
				}
				for _, id := range rep.Released {
					if prev, ok := owner[id]; ok {
						t.Fatalf("job %s released to %s and %s", id, prev, st.id)
					}
					owner[id] = st.id
					all = append(all, id)
				}
			}
			slices.Sort(all)
			if fmt.Sprint(all) != fmt.Sprint(want) {
				t.Fatalf("round %d: released %v (st-a %v, st-b %v), want each of %v once", r, all, replies[0].Released, replies[1].Released, want)
			}
		}
		for id, st := range owner {
			if j, err := s.Store().Get(id); err != nil || j.State != StateReleased || j.Station != st {
				t.Fatalf("job %s: stored %+v (%v), released to %s", id, j, err, st)
			}
		}
	})
}
