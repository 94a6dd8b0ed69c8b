package cloud

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"labelstation/devcloud/broker"
	"labelstation/devcloud/jobs"
	"labelstation/devcloud/seed"
	"labelstation/protocol"
)

// restartable is the embedded in-memory broker on a fixed port that a test stops and starts
// again: a restart forgets every session, queued message and retained message.
type restartable struct {
	t    *testing.T
	addr string
	mu   sync.Mutex
	b    *broker.Broker
}

func newRestartable(t *testing.T) *restartable {
	t.Helper()
	r := &restartable{t: t, addr: "127.0.0.1:0"}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *restartable) url() string { return "tcp://" + r.addr }

func (r *restartable) start() {
	r.t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the old listener's port can take a moment to be free again
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatal(err)
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
		r.t.Fatal(err)
	}
	r.mu.Lock()
	r.b, r.addr = b, b.Addr()
	r.mu.Unlock()
}

func (r *restartable) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.b != nil {
		r.b.Close()
		r.b = nil
	}
}

// ownMosquitto starts a private Mosquitto with the given extra config lines on a free port, or
// skips when Mosquitto is not installed.
func ownMosquitto(t *testing.T, extra string) string {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		t.Skip("mosquitto is not installed; to run this test: apt-get install mosquitto")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close()
	dir := t.TempDir()
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n%s\n", addr.Port, extra)
	path := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr.String(), time.Second)
		if err == nil {
			c.Close()
			return "tcp://" + addr.String()
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto did not come up on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond) // polling a port that has no event to wait on
	}
}

// memOutbox is the fake beside Outbox: statuses in memory, acknowledged seqs recorded.
type memOutbox struct {
	mu      sync.Mutex
	st      map[string]protocol.JobStatus
	acked   map[string]int
	changed chan struct{}
}

var _ Outbox = (*memOutbox)(nil)

func newMemOutbox(sts ...protocol.JobStatus) *memOutbox {
	o := &memOutbox{st: map[string]protocol.JobStatus{}, acked: map[string]int{}, changed: make(chan struct{})}
	for _, s := range sts {
		o.st[s.Job] = s
	}
	return o
}

func (o *memOutbox) Unreported() ([]protocol.JobStatus, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []protocol.JobStatus
	for id, s := range o.st {
		if s.Seq > o.acked[id] {
			out = append(out, s)
		}
	}
	return out, nil
}

func (o *memOutbox) MarkReported(job string, seq int) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if seq > o.acked[job] {
		o.acked[job] = seq
	}
	close(o.changed)
	o.changed = make(chan struct{})
	return nil
}

func (o *memOutbox) waitAcked(t *testing.T, job string, seq int) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		o.mu.Lock()
		got, ch := o.acked[job], o.changed
		o.mu.Unlock()
		if got >= seq {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("status %s seq %d never acknowledged (acked %d)", job, seq, got)
		}
	}
}

// Jobs the station refuses — undecodable, or not journaled — are acknowledged to the broker
// and handed to OnReject; with Mosquitto's in-flight window of 20 an unacknowledged 21st would
// block every later message, so the good job after 25 poison ones proves nothing clogs.
func TestLinkPoisonJobsDoNotClogTheSession(t *testing.T) {
	for _, b := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"embedded", embedded},
		{"mosquitto-max-inflight-20", func(t *testing.T) string { return ownMosquitto(t, "max_inflight_messages 20") }},
	} {
		t.Run(b.name, func(t *testing.T) {
			url := b.url(t)
			station := uniq("st-poison")
			cl := newFakeCloud(t, url, uniq("cloud"), nil)
			var mu sync.Mutex
			rejected := map[string]string{}
			nrej := make(chan struct{}, 100)
			good := make(chan protocol.Job, 1)
			l, err := New(Options{
				Broker: url, StationID: station,
				Password: func(context.Context) (string, error) { return "token-" + station, nil },
				OnJob: func(j protocol.Job) error {
					if strings.HasPrefix(j.ID, "poison") {
						return errors.New("journal: storage full")
					}
					good <- j
					return nil
				},
				OnReject: func(id string, reason error) {
					mu.Lock()
					rejected[id] = reason.Error()
					mu.Unlock()
					nrej <- struct{}{}
				},
				Logger: slog.New(slog.DiscardHandler),
			})
			if err != nil {
				t.Fatal(err)
			}
			r := &linkRun{link: l, online: make(chan bool, 10), done: make(chan struct{})}
			l.opt.OnOnline = func(up bool) { r.online <- up }
			ctx, cancel := context.WithCancel(context.Background())
			r.cancel = cancel
			go func() { defer close(r.done); l.Run(ctx) }()
			t.Cleanup(r.stop)
			r.waitOnline(t, true)

			topic := protocol.StationTopic(station, protocol.LeafJob)
			raw := []string{`{"v":1,"id":"undecodable-1","labels":"three"}`, `{"v":2,"id":"undecodable-2"}`, `not json at all`, `{"v":1,"id":"undecodable-4","data":"%%%"}`}
			for _, p := range raw {
				if tok := cl.c.Publish(topic, 1, false, []byte(p)); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
					t.Fatal(tok.Error())
				}
			}
			for i := range 21 {
				cl.publishJob(t, station, protocol.Job{V: 1, ID: fmt.Sprintf("poison-%02d", i), Labels: 1})
			}
			cl.publishJob(t, station, protocol.Job{V: 1, ID: "good", Labels: 1})
			select {
			case j := <-good:
				if j.ID != "good" {
					t.Fatalf("got %q", j.ID)
				}
			case <-time.After(30 * time.Second):
				mu.Lock()
				t.Fatalf("the good job never arrived after the poison ones (%d rejected)", len(rejected))
			}
			for range 25 {
				select {
				case <-nrej:
				case <-time.After(30 * time.Second):
					t.Fatalf("only %d of 25 poison jobs reported", len(rejected))
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range []string{"undecodable-1", "undecodable-2", "undecodable-4", "poison-00", "poison-20", ""} {
				if _, ok := rejected[id]; !ok {
					t.Errorf("no rejection recorded for %q: %v", id, rejected)
				}
			}
			if !strings.Contains(rejected["undecodable-2"], "version") || !strings.Contains(rejected["poison-07"], "storage full") {
				t.Errorf("reasons: %v", rejected)
			}
		})
	}
}

func loadSeed(t *testing.T) *seed.Seed {
	t.Helper()
	sd, err := seed.Load(filepath.Join("..", "..", "examples", "devcloud-seed.json"))
	if err != nil {
		t.Fatal(err)
	}
	return sd
}

// A status counts as delivered only when the job service acknowledges it. The broker here takes
// the status (PUBACK) while the job service is not there, then restarts and forgets it; the
// link reconnects, resends from its outbox and the cloud ends with the right final state.
func TestLinkStatusResentUntilAcknowledged(t *testing.T) {
	rb := newRestartable(t)
	station := uniq("st-ack")
	svc, err := jobs.New(jobs.Options{
		Seed: loadSeed(t), Broker: rb.url(), Username: svcUser, Password: svcPass, BadgeKey: []byte("0123456789abcdef"),
		VerifyUser: func(context.Context, string) (string, error) { return "", errors.New("unused") },
	})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	svc.Store().Add(jobs.Job{ID: "j1", User: "alice", Labels: 2, State: jobs.StateHeld, Created: now})
	svc.Store().Release("alice", station, []string{"j1"}, now)

	watcher := newFakeCloud(t, rb.url(), uniq("watcher"), nil) // sees statuses, never acknowledges
	out := newMemOutbox(protocol.JobStatus{V: 1, Job: "j1", State: protocol.JobPrinted, Printed: 2, Total: 2, Seq: 4})
	online := make(chan bool, 10)
	l, err := New(Options{
		Broker: rb.url(), StationID: station, Outbox: out,
		Password:  func(context.Context) (string, error) { return "token-" + station, nil },
		OnJob:     func(protocol.Job) error { return nil },
		OnOnline:  func(up bool) { online <- up },
		ResendMin: 200 * time.Millisecond, ResendMax: time.Second,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	defer func() { cancel(); <-done }()

	watcher.waitTopic(t, protocol.StationTopic(station, protocol.LeafJobStatus))
	if u, _ := out.Unreported(); len(u) != 1 {
		t.Fatalf("a status the broker took counts as delivered: outbox %+v", u)
	}

	rb.stop()
	waitBool(t, online, false)
	rb.start()
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	if err := svc.Start(sctx); err != nil {
		t.Fatal(err)
	}
	defer svc.Close()

	out.waitAcked(t, "j1", 4)
	j, err := svc.Store().WaitFor(sctx, "j1", func(j jobs.Job) bool { return j.State == jobs.StatePrinted })
	if err != nil {
		t.Fatal(err)
	}
	if j.Printed != 2 {
		t.Fatalf("cloud job %+v", j)
	}
}

func waitBool(t *testing.T, ch <-chan bool, want bool) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case v := <-ch:
			if v == want {
				return
			}
		case <-deadline:
			t.Fatalf("never saw %v", want)
		}
	}
}

// After a broker outage long enough for the reconnect backoff to grow, the link is back soon
// after the broker returns: the TCP probe ends the wait. The time is logged, not asserted.
func TestLinkBackOnlineAfterBrokerRestart(t *testing.T) {
	rb := newRestartable(t)
	station := uniq("st-back")
	online := make(chan bool, 10)
	var logs strings.Builder
	var lmu sync.Mutex
	l, err := New(Options{
		Broker: rb.url(), StationID: station,
		Password: func(context.Context) (string, error) { return "token-" + station, nil },
		OnJob:    func(protocol.Job) error { return nil },
		OnOnline: func(up bool) { online <- up },
		Logger:   slog.New(slog.NewTextHandler(lockedWriter{&lmu, &logs}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitBool(t, online, true)

	rb.stop()
	waitBool(t, online, false)
	// Wait until the link has failed often enough that its backoff is past 2 s.
	deadline := time.Now().Add(60 * time.Second)
	for {
		lmu.Lock()
		n := strings.Count(logs.String(), "connect failed")
		lmu.Unlock()
		if n >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the link never retried")
		}
		time.Sleep(100 * time.Millisecond) // the log has no event to wait on
	}
	back := time.Now()
	rb.start()
	waitBool(t, online, true)
	t.Logf("online %v after the broker came back (backoff had grown past 2 s)", time.Since(back).Round(time.Millisecond))
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// stallProxy forwards TCP but can go silent without closing anything, as a dead NAT entry or
// an unplugged switch would: only keep-alive notices.
type stallProxy struct {
	ln      net.Listener
	mu      sync.Mutex
	stalled bool
	conns   []net.Conn
}

func newStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln}
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 4096)
		for {
			n, err := src.Read(buf)
			if err != nil {
				dst.Close()
				return
			}
			p.mu.Lock()
			stalled := p.stalled
			p.mu.Unlock()
			if stalled {
				continue // swallowed
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				src.Close()
				return
			}
		}
	}
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
			go pipe(b, c)
			go pipe(c, b)
		}
	}()
	return p
}

func (p *stallProxy) stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stalled = true
}

// A connection that goes silent is declared lost by the keep-alive (about 9 s with the
// defaults); the time is logged, not asserted.
func TestLinkDetectsSilentDeadLink(t *testing.T) {
	url := embedded(t)
	px := newStallProxy(t, url)
	station := uniq("st-stall")
	online := make(chan bool, 10)
	l, err := New(Options{
		Broker: "tcp://" + px.ln.Addr().String(), StationID: station,
		Password: func(context.Context) (string, error) { return "token-" + station, nil },
		OnJob:    func(protocol.Job) error { return nil },
		OnOnline: func(up bool) { online <- up },
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitBool(t, online, true)
	start := time.Now()
	px.stall()
	waitBool(t, online, false)
	t.Logf("silent link declared lost after %v", time.Since(start).Round(time.Millisecond))
}

// An undecodable config or command is answered with the reason, not dropped in silence.
func TestLinkReportsUndecodableConfigAndCommand(t *testing.T) {
	url := embedded(t)
	station := uniq("st-bad")
	cl := newFakeCloud(t, url, uniq("cloud"), nil)
	r := startLink(t, url, station, nil)
	r.waitOnline(t, true)
	for leaf, p := range map[string]string{
		protocol.LeafConfigDesired: `{"v":1,"version":"cfg_7","config":42,"extra":`,
		protocol.LeafCmd:           `{"v":1,"id":"cmd-3","name":7}`,
	} {
		if tok := cl.c.Publish(protocol.StationTopic(station, leaf), 1, false, []byte(p)); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	cl.waitTopic(t, protocol.StationTopic(station, protocol.LeafConfigReported))
	cl.waitTopic(t, protocol.StationTopic(station, protocol.LeafCmdResult))
	cl.mu.Lock()
	defer cl.mu.Unlock()
	var cr protocol.ConfigReported
	if err := protocol.Decode(cl.got[protocol.StationTopic(station, protocol.LeafConfigReported)][0], &cr); err != nil || cr.Applied || !strings.Contains(cr.Error, "undecodable config") {
		t.Fatalf("config reported %+v, %v", cr, err)
	}
	var res protocol.CommandResult
	if err := protocol.Decode(cl.got[protocol.StationTopic(station, protocol.LeafCmdResult)][0], &res); err != nil || res.OK || res.ID != "cmd-3" || !strings.Contains(res.Error, "undecodable command") {
		t.Fatalf("command result %+v, %v", res, err)
	}
}

// A handler that panics costs that message (reported as a refused job), not the link.
func TestLinkRecoversHandlerPanic(t *testing.T) {
	url := embedded(t)
	station := uniq("st-panic")
	cl := newFakeCloud(t, url, uniq("cloud"), nil)
	rejected := make(chan string, 4)
	good := make(chan string, 4)
	l, err := New(Options{
		Broker: url, StationID: station,
		Password: func(context.Context) (string, error) { return "token-" + station, nil },
		OnJob: func(j protocol.Job) error {
			if j.ID == "bomb" {
				var m map[string]int
				m["x"]++
			}
			good <- j.ID
			return nil
		},
		OnReject: func(id string, reason error) { rejected <- id + ": " + reason.Error() },
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	online := make(chan bool, 10)
	l.opt.OnOnline = func(up bool) { online <- up }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitBool(t, online, true)
	cl.publishJob(t, station, protocol.Job{V: 1, ID: "bomb", Labels: 1})
	select {
	case r := <-rejected:
		if !strings.HasPrefix(r, "bomb: ") || !strings.Contains(r, "panic") {
			t.Fatalf("rejection %q", r)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the panicking job was not reported")
	}
	cl.publishJob(t, station, protocol.Job{V: 1, ID: "after", Labels: 1})
	select {
	case id := <-good:
		if id != "after" {
			t.Fatalf("got %q", id)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the link stopped delivering after a handler panic")
	}
}

// A burst of state changes ends with the newest state in the retained presence.
func TestLinkPresenceNewestStateWins(t *testing.T) {
	url := embedded(t)
	station := uniq("st-presence")
	cl := newFakeCloud(t, url, uniq("cloud"), nil)
	r := startLink(t, url, station, nil)
	r.waitOnline(t, true)
	for _, st := range []string{"lookup", "list", "printing", "done", "idle", "lookup", "printing"} {
		r.link.SetState(st)
	}
	topic := protocol.StationTopic(station, protocol.LeafPresence)
	deadline := time.After(20 * time.Second)
	for {
		cl.mu.Lock()
		all := cl.got[topic]
		var p protocol.Presence
		if len(all) > 0 {
			protocol.Decode(all[len(all)-1], &p)
		}
		cl.mu.Unlock()
		if p.State == "printing" && len(all) <= 1+7 {
			break
		}
		select {
		case <-cl.seen:
		case <-deadline:
			t.Fatalf("last presence %+v after %d messages", p, len(all))
		}
	}
	// Nothing older follows: ask for a round trip, then look again.
	if _, err := r.link.Lookup(context.Background(), "h"); err != nil {
		t.Fatal(err)
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	all := cl.got[topic]
	var p protocol.Presence
	protocol.Decode(all[len(all)-1], &p)
	if p.State != "printing" {
		t.Fatalf("the retained presence says %q, want the newest state", p.State)
	}
	t.Logf("%d presence messages for 7 state changes", len(all)-1)
}
