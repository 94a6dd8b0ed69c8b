package jobs

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"labelstation/protocol"
)

// The replica test runs the job service as separate processes (this test binary, re-executed
// into TestReplicaProcess) so that one can be killed for real, on a Mosquitto of its own.

const replicaEnv = "LRS_JOBS_REPLICA"

// TestReplicaProcess is a job-service replica when started by startReplica; run directly it
// has nothing to do.
func TestReplicaProcess(t *testing.T) {
	cfg := os.Getenv(replicaEnv)
	if cfg == "" {
		t.Skip("runs only as a replica process started by TestReplicasShareRequests")
	}
	var c struct{ Broker, Store, Client, User, Pass string }
	if err := json.Unmarshal([]byte(cfg), &c); err != nil {
		t.Fatal(err)
	}
	store, err := OpenPostgres(context.Background(), c.Store)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	startServiceOn(t, c.Broker, Options{Store: store, ClientID: c.Client, ShareGroup: "jobs", Username: c.User, Password: c.Pass})
	fmt.Println("replica ready")
	select {} // until killed
}

type replica struct {
	cmd    *exec.Cmd
	exited chan error
	once   sync.Once
	killed atomic.Bool
}

func startReplica(t testing.TB, broker, store, client, user, pass string) *replica {
	t.Helper()
	cfg, _ := json.Marshal(map[string]string{"Broker": broker, "Store": store, "Client": client, "User": user, "Pass": pass})
	cmd := exec.Command(os.Args[0], "-test.run=^TestReplicaProcess$", "-test.v")
	cmd.Env = append(os.Environ(), replicaEnv+"="+string(cfg))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &replica{cmd: cmd, exited: make(chan error, 1)}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		found := false
		for sc.Scan() {
			if !found && strings.Contains(sc.Text(), "replica ready") {
				found = true
				ready <- true
			}
		}
		if !found {
			ready <- false
		}
		r.exited <- cmd.Wait()
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("replica %s exited before it was ready:\n%s", client, stderr.String())
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("replica %s not ready:\n%s", client, stderr.String())
	}
	t.Cleanup(r.kill)
	return r
}

// kill sends SIGKILL and waits for the process to end.
func (r *replica) kill() {
	r.once.Do(func() {
		r.cmd.Process.Kill()
		<-r.exited
		r.killed.Store(true)
	})
}

// startMosquitto runs Mosquitto 2 on a free loopback port with users from creds (name →
// password) and the repository's station ACL; it returns the broker URL.
func startMosquitto(t testing.TB, creds map[string]string) string {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		t.Skip("mosquitto not installed: apt-get install -y mosquitto (the test starts its own instance)")
	}
	dir := t.TempDir()
	var pw bytes.Buffer
	for u, p := range creds {
		fmt.Fprintf(&pw, "%s:%s\n", u, p)
	}
	pwFile := filepath.Join(dir, "passwd")
	if err := os.WriteFile(pwFile, pw.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	// mosquitto_passwd -U hashes the plain passwords in place.
	if out, err := exec.Command("mosquitto_passwd", "-U", pwFile).CombinedOutput(); err != nil {
		t.Skipf("mosquitto_passwd -U: %v: %s (apt-get install -y mosquitto)", err, out)
	}
	acl, err := os.ReadFile(filepath.Join("..", "..", "deploy", "mosquitto", "lrs.acl"))
	if err != nil {
		t.Fatal(err)
	}
	aclFile := filepath.Join(dir, "acl")
	if err := os.WriteFile(aclFile, acl, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	conf := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous false\npassword_file %s\nacl_file %s\npersistence false\nmax_queued_messages 10000\n", port, pwFile, aclFile)
	if u, err := user.Current(); err == nil && u.Uid == "0" {
		conf += "user root\n" // as root Mosquitto would switch to user mosquitto, who cannot read the test's files
	}
	confFile := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	cmd := exec.Command(bin, "-c", confFile)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", log.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return "tcp://" + addr
		}
		select {
		case err := <-exited:
			t.Fatalf("mosquitto exited: %v\n%s", err, log.String())
		case <-time.After(50 * time.Millisecond): // polling a port that is not open yet
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto did not listen on %s", addr)
		}
	}
}

// Two replicas share the stations' requests through a shared subscription; one is killed
// during a stream of lookups and releases. Stations repeat a request they got no reply to, as
// the station does. Every request is answered and no job goes to two stations.
func TestReplicasShareRequests(t *testing.T) {
	if os.Getenv(replicaEnv) != "" {
		t.Skip("inside a replica")
	}
	pgURL := testPostgres(t)
	const nStations, rounds, nJobs = 10, 50, 300 // 1,000 requests: a lookup and a release per round
	creds := map[string]string{"devcloud": randomSecret()}
	for i := range nStations {
		creds[fmt.Sprintf("st-%02d", i)] = randomSecret()
	}
	url := startMosquitto(t, creds)

	store, err := OpenPostgres(context.Background(), pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Now()
	users := []struct{ id, badge string }{{"alice", "04A1B2C3D4E580"}, {"bob", "0E5F1C2A"}}
	for i := range nJobs {
		u := users[i%2].id
		mustAdd(t, store, Job{ID: fmt.Sprintf("j%03d", i), User: u, Labels: 1, State: StateHeld, Created: now.Add(time.Duration(i) * time.Millisecond), Updated: now})
	}
	a := startReplica(t, url, pgURL, "jobs-a", "devcloud", creds["devcloud"])
	startReplica(t, url, pgURL, "jobs-b", "devcloud", creds["devcloud"])

	var (
		answered atomic.Int64
		repeats  atomic.Int64
		mu       sync.Mutex
		owner    = map[string]string{} // job → the station it was released to
		errs     []error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	count := func() {
		if answered.Add(1) == 300 {
			a.kill() // mid-stream, while other stations wait on it
		}
	}
	for i := range nStations {
		id := fmt.Sprintf("st-%02d", i)
		st := dialStation(t, url, id, creds[id])
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				badge := protocol.BadgeHash(testBadgeKey, users[(i+r)%2].badge)
				var look protocol.LookupReply
				n, err := st.request(protocol.LeafLookup, protocol.LookupRequest{V: protocol.Version, Req: fmt.Sprintf("%s-l%d", id, r), Badge: badge}, protocol.LeafLookupReply, &look)
				repeats.Add(int64(n))
				if err != nil || look.Error != nil {
					fail(fmt.Errorf("%s lookup %d: %v %+v", id, r, err, look.Error))
					return
				}
				count()
				var ask []string
				for k, j := range look.Jobs {
					if k%nStations == (i+r)%nStations || k < 2 { // overlapping picks: stations race for the first jobs
						ask = append(ask, j.ID)
					}
				}
				var rel protocol.ReleaseReply
				n, err = st.request(protocol.LeafRelease, protocol.ReleaseRequest{V: protocol.Version, Req: fmt.Sprintf("%s-r%d", id, r), Badge: badge, Jobs: ask}, protocol.LeafReleaseReply, &rel)
				repeats.Add(int64(n))
				if err != nil || rel.Error != nil {
					fail(fmt.Errorf("%s release %d: %v %+v", id, r, err, rel.Error))
					return
				}
				count()
				mu.Lock()
				for _, j := range rel.Released {
					if prev, ok := owner[j]; ok && prev != id {
						errs = append(errs, fmt.Errorf("job %s released to %s and %s", j, prev, id))
					}
					owner[j] = id
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if !a.killed.Load() {
		t.Fatal("replica a was never killed")
	}
	if got := answered.Load(); got != nStations*rounds*2 {
		t.Fatalf("%d of %d requests answered", got, nStations*rounds*2)
	}
	for j, st := range owner {
		if got, err := store.Get(j); err != nil || got.State != StateReleased || got.Station != st {
			t.Fatalf("job %s: stored %+v (%v), released to %s", j, got, err, st)
		}
	}
	t.Logf("%d requests answered, %d repeated after no reply, %d jobs released", answered.Load(), repeats.Load(), len(owner))
}

func randomSecret() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// mqttStation sends requests and matches replies by their req id.
type mqttStation struct {
	id      string
	c       paho.Client
	mu      sync.Mutex
	waiting map[string]chan []byte // req → reply
}

func dialStation(t testing.TB, url, id, pass string) *mqttStation {
	t.Helper()
	st := &mqttStation{id: id, waiting: map[string]chan []byte{}}
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetUsername(id).SetPassword(pass).SetOrderMatters(false)
	st.c = paho.NewClient(o)
	if tok := st.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("station %s connect: %v", id, tok.Error())
	}
	t.Cleanup(func() { st.c.Disconnect(0) })
	for _, leaf := range []string{protocol.LeafLookupReply, protocol.LeafReleaseReply} {
		sub := st.c.Subscribe(protocol.StationTopic(id, leaf), 1, func(_ paho.Client, m paho.Message) {
			var r struct{ Req string }
			if json.Unmarshal(m.Payload(), &r) != nil {
				return
			}
			st.mu.Lock()
			ch := st.waiting[r.Req]
			delete(st.waiting, r.Req) // a second reply to one request finds no one waiting
			st.mu.Unlock()
			if ch != nil {
				ch <- m.Payload()
			}
		})
		if !sub.WaitTimeout(10*time.Second) || sub.Error() != nil {
			t.Fatalf("station %s subscribe: %v", id, sub.Error())
		}
	}
	return st
}

// request publishes req and decodes its reply into v, repeating the request every few seconds
// without one; it returns how many times it repeated.
func (st *mqttStation) request(leaf string, req any, replyLeaf string, v any) (int, error) {
	b, _ := json.Marshal(req)
	var r struct{ Req string }
	json.Unmarshal(b, &r)
	ch := make(chan []byte, 1)
	st.mu.Lock()
	st.waiting[r.Req] = ch
	st.mu.Unlock()
	for n := 0; n < 10; n++ {
		tok := st.c.Publish(protocol.StationTopic(st.id, leaf), 1, false, b)
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			return n, fmt.Errorf("publish: %v", tok.Error())
		}
		jitter, _ := rand.Int(rand.Reader, big.NewInt(1000))
		select {
		case p := <-ch:
			return n, json.Unmarshal(p, v)
		case <-time.After(3*time.Second + time.Duration(jitter.Int64())*time.Millisecond):
		}
	}
	return 10, fmt.Errorf("no %s for %s", replyLeaf, r.Req)
}

// BenchmarkReplicas: lookups plus releases per second through Mosquitto with 1 and 2 job-service
// replicas on one PostgreSQL, 1,000 stations connected of which 50 tap at any moment; each op is
// a submission (straight into the store), a lookup and a release of one job. Run with
// -benchtime=2000x.
func BenchmarkReplicas(b *testing.B) {
	if os.Getenv(replicaEnv) != "" {
		b.Skip("inside a replica")
	}
	const nStations, tapping = 1000, 50
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			pgURL := testPostgres(b)
			creds := map[string]string{"devcloud": randomSecret()}
			for i := range nStations {
				creds[fmt.Sprintf("st-%04d", i)] = randomSecret()
			}
			url := startMosquitto(b, creds)
			store, err := OpenPostgres(context.Background(), pgURL)
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			for r := range n {
				startReplica(b, url, pgURL, fmt.Sprintf("jobs-%d", r), "devcloud", creds["devcloud"])
			}
			stations := make([]*mqttStation, nStations)
			for i := range stations {
				id := fmt.Sprintf("st-%04d", i)
				stations[i] = dialStation(b, url, id, creds[id])
			}
			users := []struct{ id, badge string }{{"alice", "04A1B2C3D4E580"}, {"bob", "0E5F1C2A"}}
			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, tapping)
			b.ResetTimer()
			for range tapping {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						op := next.Add(1) - 1
						if op >= int64(b.N) {
							return
						}
						i := int(op % nStations)
						st := stations[i]
						u := users[op%2]
						if err := store.Add(Job{ID: fmt.Sprintf("b%08d", op), User: u.id, Labels: 1, State: StateHeld, Created: time.Now(), Updated: time.Now()}); err != nil {
							errs <- err
							return
						}
						badge := protocol.BadgeHash(testBadgeKey, u.badge)
						var look protocol.LookupReply
						if _, err := st.request(protocol.LeafLookup, protocol.LookupRequest{V: protocol.Version, Req: fmt.Sprintf("l%d", op), Badge: badge}, protocol.LeafLookupReply, &look); err != nil || look.Error != nil {
							errs <- fmt.Errorf("station %d lookup: %v %+v", i, err, look.Error)
							return
						}
						if len(look.Jobs) == 0 {
							continue // the other stations took them all
						}
						var rel protocol.ReleaseReply
						if _, err := st.request(protocol.LeafRelease, protocol.ReleaseRequest{V: protocol.Version, Req: fmt.Sprintf("r%d", op), Badge: badge, Jobs: []string{look.Jobs[0].ID}}, protocol.LeafReleaseReply, &rel); err != nil || rel.Error != nil {
							errs <- fmt.Errorf("station %d release: %v %+v", i, err, rel.Error)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "taps/s")
		})
	}
}
