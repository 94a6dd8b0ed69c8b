package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"labelstation/devcloud"
	"labelstation/devcloud/seed"
	"labelstation/protocol"
	"labelstation/station/cloud"
)

// fleetStation is an enrolled station's broker login.
type fleetStation struct {
	ID     string `json:"id"`
	Access string `json:"access"`
}

// fleetOptions sets up the -fleet benchmark.
type fleetOptions struct {
	N       int
	Idle    time.Duration
	Seed    string
	Profile string // devcloud's heap profile with the fleet online, if set
	// Broker is "embedded" (devcloud's own mochi broker) or "mosquitto": devcloud's services as
	// clients of a Mosquitto started here with the configuration in Deploy, as in production.
	Broker string
	Deploy string
}

// fleetResult is what one connected station costs, in KiB.
type fleetResult struct {
	Devcloud, Mosquitto         float64 // RSS once all are online, per station
	DevcloudIdle, MosquittoIdle float64 // RSS change over the idle period, per station
}

// benchFleet measures the cloud's memory per connected station: it enrolls o.N stations
// through the device flow, then a child process (so the clients' own memory is not counted)
// connects each with the station's real cloud link (persistent session, will, subscriptions,
// presence, keep-alive pings). devcloud's heap and the process RSS, and with an external
// broker that broker's RSS, are read before, once the fleet registry has every station online,
// and after idle.
func benchFleet(o fleetOptions) (fleetResult, error) {
	var res fleetResult
	n := o.N
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fmt.Printf("bench-e2e fleet: %s, GOMAXPROCS %d, %d stations, broker %s, load %s\n", runtime.Version(), runtime.GOMAXPROCS(0), n, o.Broker, loadavg())
	sd, err := seed.Load(o.Seed)
	if err != nil {
		return res, err
	}
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	// The device flow wants the poll interval respected; the clock jumps it instead of waiting.
	var skew atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	opts := devcloud.Options{HTTP: httpLn, Seed: sd, Now: now, AccessTTL: time.Hour, PollEvery: time.Second}
	var mq *mosquitto
	switch o.Broker {
	case "embedded":
		if opts.MQTT, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return res, err
		}
	case "mosquitto":
		pass := randomSecret()
		if mq, err = startMosquitto(o.Deploy, map[string]string{"devcloud": pass}); err != nil {
			httpLn.Close()
			return res, err
		}
		defer mq.Close()
		// The service account of the deployed ACL; its client id is its user name there.
		opts.Broker, opts.BrokerUser, opts.BrokerPass, opts.ServiceClientID = mq.URL, "devcloud", pass, "devcloud"
	default:
		httpLn.Close()
		return res, fmt.Errorf("-fleet-broker %q: want embedded or mosquitto", o.Broker)
	}
	c, err := devcloud.Start(ctx, opts)
	if err != nil {
		return res, err
	}
	defer c.Close()

	t0 := time.Now()
	stations, err := enrollFleet(c, n, func() { skew.Add(int64(6 * time.Second)) })
	if err != nil {
		return res, err
	}
	fmt.Printf("  enrolled %d stations in %v\n", n, time.Since(t0).Round(time.Millisecond))
	if mq != nil {
		fmt.Printf("  mosquitto RSS with the service login only %.1f MB\n", mb(mq.RSS()))
		// Stations log in with their station id and access token, checked by the password file.
		logins := make(map[string]string, n)
		for _, s := range stations {
			logins[s.ID] = s.Access
		}
		if err := mq.AddLogins(logins); err != nil {
			return res, err
		}
	}
	before := measure("before connecting", mq)

	dir, err := os.MkdirTemp("", "bench-fleet-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	creds := filepath.Join(dir, "stations.json")
	b, _ := json.Marshal(stations)
	if err := os.WriteFile(creds, b, 0o600); err != nil {
		return res, err
	}
	self, err := os.Executable()
	if err != nil {
		return res, err
	}
	child := exec.CommandContext(ctx, self, "-fleet-child", creds, "-fleet-child-broker", c.BrokerURL, "-fleet-keys", c.Auth.KeysURL())
	child.Stderr = os.Stderr
	stdin, _ := child.StdinPipe()
	out, _ := child.StdoutPipe()
	if err := child.Start(); err != nil {
		return res, err
	}
	defer func() { stdin.Close(); child.Wait() }()
	t0 = time.Now()
	if err := waitFleetOnline(c, out, n, 5*time.Minute); err != nil {
		return res, err
	}
	fmt.Printf("  %d stations online in the fleet registry in %v\n", n, time.Since(t0).Round(time.Millisecond))
	online := measure("all online", mq)
	// Idle means the stations only keep their sessions alive (a ping every 4 s each).
	time.Sleep(o.Idle)
	after := measure(fmt.Sprintf("after %v idle", o.Idle), mq)
	if k := onlineInRegistry(c); k != n {
		return res, fmt.Errorf("%d of %d stations online in the fleet registry after the idle period", k, n)
	}
	perKB := func(a, b int64) float64 { return float64(b-a) / float64(n) }
	per := func(a, b memSample) string {
		return fmt.Sprintf("heap %.1f KB/station, stacks %.1f KB/station, RSS %.1f KB/station, %.1f goroutines/station",
			(float64(b.heap)-float64(a.heap))/1024/float64(n), (float64(b.stack)-float64(a.stack))/1024/float64(n),
			perKB(a.rss, b.rss), float64(b.goroutines-a.goroutines)/float64(n))
	}
	res = fleetResult{Devcloud: perKB(before.rss, online.rss), DevcloudIdle: perKB(online.rss, after.rss)}
	fmt.Printf("  connected: devcloud %s\n", per(before, online))
	fmt.Printf("  growth while idle: devcloud %s\n", per(online, after))
	if mq != nil {
		res.Mosquitto, res.MosquittoIdle = perKB(before.broker, online.broker), perKB(online.broker, after.broker)
		fmt.Printf("  connected: mosquitto RSS %.1f KB/station\n", res.Mosquitto)
		fmt.Printf("  growth while idle: mosquitto RSS %.1f KB/station\n", res.MosquittoIdle)
	}
	if mq != nil {
		fmt.Printf("  per connected station: devcloud %.1f KB + mosquitto %.1f KB = %.1f KB RSS (idle change %+.1f KB)\n",
			res.Devcloud, res.Mosquitto, res.Devcloud+res.Mosquitto, res.DevcloudIdle+res.MosquittoIdle)
	} else {
		fmt.Printf("  per connected station: devcloud with its embedded broker %.1f KB RSS (idle change %+.1f KB)\n", res.Devcloud, res.DevcloudIdle)
	}
	fmt.Printf("  load after: %s\n", loadavg())
	if o.Profile != "" {
		f, err := os.Create(o.Profile)
		if err != nil {
			return res, err
		}
		defer f.Close()
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			return res, err
		}
		fmt.Printf("  heap profile with %d stations online: %s (go tool pprof -sample_index inuse_space %s)\n", n, o.Profile, o.Profile)
	}
	return res, nil
}

// waitFleetOnline reads the child's "online K" lines until K is n, then waits until devcloud's
// fleet registry (fed by the job service's subscription) has n stations online: the
// measurement is of a working fleet, not of open sockets.
func waitFleetOnline(c *devcloud.Cloud, out io.Reader, n int, within time.Duration) error {
	deadline := time.After(within)
	counts := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if k, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "online ")); err == nil {
				select {
				case <-counts:
				default:
				}
				counts <- k
			}
		}
		close(counts)
	}()
	for k := 0; k != n; {
		select {
		case got, ok := <-counts:
			if !ok {
				return fmt.Errorf("the fleet child ended with %d of %d stations online", k, n)
			}
			k = got
		case <-deadline:
			return fmt.Errorf("%d of %d stations online after %v", k, n, within)
		}
	}
	ev, cancel := c.Fleet.Subscribe()
	defer cancel()
	for {
		k := onlineInRegistry(c)
		if k == n {
			return nil
		}
		select {
		case <-ev:
		case <-time.After(100 * time.Millisecond): // events may be dropped for a slow subscriber
		case <-deadline:
			return fmt.Errorf("the fleet registry has %d of %d stations online after %v", k, n, within)
		}
	}
}

// onlineInRegistry counts the stations devcloud's fleet registry has online.
func onlineInRegistry(c *devcloud.Cloud) int {
	k := 0
	for _, st := range c.Fleet.Stations() {
		if st.Online {
			k++
		}
	}
	return k
}

func randomSecret() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

type memSample struct {
	heap       uint64 // bytes in use by live heap objects plus their spans
	rss        int64  // KiB
	broker     int64  // the external broker's RSS in KiB; 0 without one
	stack      uint64 // goroutine stacks, which RSS holds and the heap does not
	goroutines int
}

// measure collects garbage and returns the memory still held. Several collections: each may
// halve a goroutine stack that is mostly unused, as an idle devcloud's runtime does over minutes
// (it forces a collection every 2 minutes).
func measure(what string, mq *mosquitto) memSample {
	for range 5 {
		runtime.GC()
	}
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, _ := procStatus("/proc/self/status")
	s := memSample{heap: ms.HeapInuse, rss: rss, stack: ms.StackInuse, goroutines: runtime.NumGoroutine()}
	fmt.Printf("  %-20s heap in use %6.1f MB, stacks %5.1f MB, RSS %6.1f MB, goroutines %d\n", what, float64(s.heap)/(1<<20), float64(s.stack)/(1<<20), mb(s.rss), s.goroutines)
	if mq != nil {
		s.broker = mq.RSS()
		fmt.Printf("  %-20s mosquitto RSS %6.1f MB\n", "", mb(s.broker))
	}
	return s
}

// enrollFleet runs the device flow for n stations, approved by alice: all device requests,
// then one clock jump past the poll interval, then all token requests.
func enrollFleet(c *devcloud.Cloud, n int, jump func()) ([]fleetStation, error) {
	hc := &http.Client{Timeout: 30 * time.Second}
	post := func(u string, v url.Values) (map[string]any, error) {
		resp, err := hc.PostForm(u, v)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("POST %s: %s %v %v", u, resp.Status, m, err)
		}
		return m, nil
	}
	codes := make([]string, n)
	for i := range n {
		d, err := post(c.Auth.DeviceAuthURL(), url.Values{"client_id": {"station"}, "scope": {"printing offline_access"}, "serial_number": {fmt.Sprintf("FLEET-%05d", i)}})
		if err != nil {
			return nil, err
		}
		if err := c.Auth.Approve(d["user_code"].(string), "alice"); err != nil {
			return nil, err
		}
		codes[i] = d["device_code"].(string)
	}
	jump()
	out := make([]fleetStation, n)
	for i, code := range codes {
		tok, err := post(c.Auth.TokenURL(), url.Values{"client_id": {"station"}, "grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {code}})
		if err != nil {
			return nil, err
		}
		id, _ := tok["station_id"].(string)
		access, _ := tok["access_token"].(string)
		if id == "" || access == "" {
			return nil, fmt.Errorf("token response %d has no station_id or access_token", i)
		}
		out[i] = fleetStation{ID: id, Access: access}
	}
	return out, nil
}

// fleetChild connects every station in the credentials file with its cloud link and prints
// "online N" as the count changes; it ends when its stdin closes.
func fleetChild(creds, broker, keysURL string) error {
	b, err := os.ReadFile(creds)
	if err != nil {
		return err
	}
	var stations []fleetStation
	if err := json.Unmarshal(b, &stations); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	var online atomic.Int64
	var mu sync.Mutex
	report := func() {
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf("online %d\n", online.Load())
	}
	dir, err := os.MkdirTemp("", "bench-fleet-")
	if err != nil {
		cancel()
		return err
	}
	defer os.RemoveAll(dir)
	verifier, err := benchVerifier(keysURL, dir)
	if err != nil {
		cancel()
		return err
	}
	var wg sync.WaitGroup
	for _, s := range stations {
		v, err := verifier(s.ID)
		if err != nil {
			cancel()
			return err
		}
		l, err := cloud.New(cloud.Options{
			Broker: broker, StationID: s.ID, Version: "bench", Verify: v,
			Password: func(context.Context) (string, error) { return s.Access, nil },
			OnJob:    func(protocol.Job) error { return errors.New("bench: no printer") },
			Outbox:   emptyOutbox{},
			OnOnline: func(up bool) {
				if up {
					online.Add(1)
				} else {
					online.Add(-1)
				}
				report()
			},
		})
		if err != nil {
			cancel()
			return err
		}
		wg.Add(1)
		go func() { defer wg.Done(); l.Run(ctx) }()
	}
	bufio.NewReader(os.Stdin).ReadString('\n') // until the parent closes it
	cancel()
	wg.Wait()
	return nil
}

type emptyOutbox struct{}

func (emptyOutbox) Unreported() ([]protocol.JobStatus, error) { return nil, nil }
func (emptyOutbox) MarkReported(string, int) error            { return nil }

var _ cloud.Outbox = emptyOutbox{}
