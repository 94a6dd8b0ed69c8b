package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	jose "github.com/go-jose/go-jose/v4"

	"labelstation/protocol"
)

// The gate lets as many calls in as there are connections, queues a bounded number more and
// refuses the rest at once; a queued call that waits too long is refused too.
func TestGateBoundsAndRefuses(t *testing.T) {
	g := newGate(2, 2, time.Hour)
	queued := make(chan struct{}, 2)
	g.queued = func() { queued <- struct{}{} }
	for range 2 {
		if err := g.enter(); err != nil {
			t.Fatal(err)
		}
	}
	entered := make(chan error, 2)
	for range 2 {
		go func() { entered <- g.enter() }()
	}
	deadline := time.After(10 * time.Second)
	for range 2 {
		select {
		case <-queued:
		case <-deadline:
			t.Fatalf("%d callers queued, want 2", g.waiting.Load())
		}
	}
	if err := g.enter(); !errors.Is(err, ErrBusy) {
		t.Fatalf("a call beyond the queue: %v, want ErrBusy at once", err)
	}
	g.leave()
	if err := <-entered; err != nil {
		t.Fatalf("queued call after a leave: %v", err)
	}
	g.leave()
	if err := <-entered; err != nil {
		t.Fatalf("second queued call: %v", err)
	}

	short := newGate(1, 1, 20*time.Millisecond)
	if err := short.enter(); err != nil {
		t.Fatal(err)
	}
	if err := short.enter(); !errors.Is(err, ErrBusy) {
		t.Fatalf("a call that waited past the limit: %v, want ErrBusy", err)
	}
}

// busyStore is a store with no connection free.
type busyStore struct{ *MemStore }

func (busyStore) List(string, ...string) ([]Job, error) { return nil, ErrBusy }
func (busyStore) Get(string) (Job, error)               { return Job{}, ErrBusy }

// The HTTP API answers 503 with Retry-After when the store is busy, not 500.
func TestHTTPBusyIs503(t *testing.T) {
	s, srv := testService(t, SubmitOptions{})
	s.store = busyStore{NewMemStore()}
	for _, path := range []string{"/v1/jobs", "/v1/jobs/j1"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e struct{ Code string }
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || e.Code != "busy" {
			t.Fatalf("GET %s: %d %q %+v, want 503 busy with Retry-After", path, resp.StatusCode, resp.Header.Get("Retry-After"), e)
		}
	}
}

// burstStation is a station at the MQTT level that repeats a request until it is answered
// without "busy", as stationd does when no usable answer comes.
type burstStation struct {
	id      string
	c       paho.Client
	replies chan protocol.ReleaseReply
	acks    chan protocol.JobStatusAck
	jobs    chan protocol.Job
}

func newBurstStation(t *testing.T, url, id string) *burstStation {
	t.Helper()
	st := &burstStation{id: id, replies: make(chan protocol.ReleaseReply, 64), acks: make(chan protocol.JobStatusAck, 64), jobs: make(chan protocol.Job, 64)}
	st.c = paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(id).SetUsername(id).SetPassword("token-" + id).SetOrderMatters(false))
	if tok := st.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("station %s connect: %v", id, tok.Error())
	}
	t.Cleanup(func() { st.c.Disconnect(0) })
	_, pub := testSealer(t)
	open := func(m paho.Message, v any) {
		_, msg, err := protocol.Open(m.Payload(), m.Topic(), func(string) (*jose.JSONWebKey, error) { return &pub, nil })
		if err == nil {
			err = protocol.Decode(msg, v)
		}
		if err != nil {
			t.Errorf("%s: %v", m.Topic(), err)
		}
	}
	subs := map[string]paho.MessageHandler{
		protocol.LeafReleaseReply: func(_ paho.Client, m paho.Message) {
			var r protocol.ReleaseReply
			open(m, &r)
			st.replies <- r
		},
		protocol.LeafJobStatusAck: func(_ paho.Client, m paho.Message) {
			var a protocol.JobStatusAck
			open(m, &a)
			st.acks <- a
		},
		protocol.LeafJob: func(_ paho.Client, m paho.Message) {
			var j protocol.Job
			open(m, &j)
			st.jobs <- j
		},
	}
	for leaf, h := range subs {
		if tok := st.c.Subscribe(protocol.StationTopic(id, leaf), 1, h); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("station %s subscribe: %v", id, tok.Error())
		}
	}
	return st
}

func (st *burstStation) publish(leaf string, v any) error {
	b, _ := json.Marshal(v)
	if tok := st.c.Publish(protocol.StationTopic(st.id, leaf), 1, false, b); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("station %s publish %s: %v", st.id, leaf, tok.Error())
	}
	return nil
}

// release repeats a release until it is answered without an error, and returns the released ids.
func (st *burstStation) release(ctx context.Context, ids []string, busy *atomic.Int64) ([]string, error) {
	for attempt := 0; ; attempt++ {
		req := fmt.Sprintf("%s-%d", st.id, attempt)
		if err := st.publish(protocol.LeafRelease, protocol.ReleaseRequest{V: protocol.Version, Req: req, Badge: aliceBadge(), Jobs: ids}); err != nil {
			return nil, err
		}
		timeout := time.NewTimer(5 * time.Second)
	wait:
		for {
			select {
			case r := <-st.replies:
				if r.Req != req {
					continue // the answer to an earlier attempt
				}
				timeout.Stop()
				if r.Error == nil {
					return r.Released, nil
				}
				if r.Error.Message != busyError.Message {
					return nil, fmt.Errorf("station %s: release refused: %+v", st.id, r.Error)
				}
				busy.Add(1)
				break wait
			case <-timeout.C:
				break wait
			case <-ctx.Done():
				return nil, fmt.Errorf("station %s: no release reply: %w", st.id, ctx.Err())
			}
		}
	}
}

// report sends a final status until it is acknowledged.
func (st *burstStation) report(ctx context.Context, job string) error {
	for {
		if err := st.publish(protocol.LeafJobStatus, protocol.JobStatus{V: protocol.Version, Job: job, State: protocol.JobPrinted, Printed: 1, Total: 1, Seq: 1}); err != nil {
			return err
		}
		timeout := time.NewTimer(3 * time.Second)
		for {
			select {
			case a := <-st.acks:
				if a.Job != job {
					continue
				}
				timeout.Stop()
				if a.Error != "" {
					return fmt.Errorf("station %s: status of %s refused: %s", st.id, job, a.Error)
				}
				return nil
			case <-timeout.C:
			case <-ctx.Done():
				return fmt.Errorf("station %s: no ack for %s: %w", st.id, job, ctx.Err())
			}
			break
		}
	}
}

// A burst of releases from many stations at once against PostgreSQL with a pool of two
// connections: the store never has more calls in flight than connections, callers beyond the
// bounded queue hear "busy" and repeat, and every release and status completes: each station
// gets exactly its own jobs, the job they all race for goes to one of them, all end printed.
func TestSmallPoolBurstOfReleases(t *testing.T) {
	url := testPostgres(t)
	wait, queue := BusyWait, BusyQueue
	BusyWait, BusyQueue = 300*time.Millisecond, 2
	t.Cleanup(func() { BusyWait, BusyQueue = wait, queue })
	if !strings.Contains(url, "?") {
		t.Fatalf("test database URL %q has no query to add pool_max_conns to", url)
	}
	store, err := OpenPostgres(context.Background(), url+"&pool_max_conns=2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if n := store.pool.Config().MaxConns; n != 2 {
		t.Fatalf("pool of %d connections, want 2", n)
	}
	const stations = 30
	now := time.Now()
	mustAdd(t, store, Job{ID: "shared", User: "alice", Labels: 1, State: StateHeld, Created: now, Updated: now})
	for i := range stations {
		for k := range 2 {
			id := fmt.Sprintf("j%02d-%d", i, k)
			mustAdd(t, store, Job{ID: id, User: "alice", Labels: 1, State: StateHeld, Created: now, Updated: now})
		}
	}
	brokerURL := startBroker(t)
	startServiceOn(t, brokerURL, Options{Store: store, ClientID: "jobs-burst"})
	var sts []*burstStation
	for i := range stations {
		sts = append(sts, newBurstStation(t, brokerURL, fmt.Sprintf("st-%02d", i)))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var busy atomic.Int64
	got := make([][]string, stations)
	errs := make(chan error, stations)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, st := range sts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ids := []string{fmt.Sprintf("j%02d-0", i), fmt.Sprintf("j%02d-1", i), "shared"}
			released, err := st.release(ctx, ids, &busy)
			if err == nil {
				got[i] = released
				for _, id := range released {
					if err = st.report(ctx, id); err != nil {
						break
					}
				}
			}
			errs <- err
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	sharedTo := ""
	for i, ids := range got {
		own := 0
		for _, id := range ids {
			switch {
			case id == "shared":
				if sharedTo != "" {
					t.Fatalf("shared job released to %s and %s", sharedTo, sts[i].id)
				}
				sharedTo = sts[i].id
			case strings.HasPrefix(id, fmt.Sprintf("j%02d-", i)):
				own++
			default:
				t.Fatalf("station %s got %s", sts[i].id, id)
			}
		}
		if own != 2 {
			t.Fatalf("station %s released %v, want its 2 jobs", sts[i].id, ids)
		}
	}
	all, err := store.List("alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range all {
		if j.State != StatePrinted {
			t.Fatalf("job %s is %s, want printed", j.ID, j.State)
		}
	}
	if sharedTo == "" || len(all) != 2*stations+1 {
		t.Fatalf("shared job to %q, %d jobs", sharedTo, len(all))
	}
	t.Logf("%d stations, pool of 2: %d releases answered busy and repeated", stations, busy.Load())
}
