package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// benchFleet measures devcloud's memory per connected station: it enrolls n stations through
// the device flow, then a child process (so the clients' own memory is not counted) connects
// each with the station's real cloud link (persistent session, will, subscriptions, presence,
// keep-alive pings). devcloud's heap and the process RSS are read before, once all are online,
// and after idle.
func benchFleet(n int, idle time.Duration, seedPath, profile string) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fmt.Printf("bench-e2e fleet: %s, GOMAXPROCS %d, %d stations, load %s\n", runtime.Version(), runtime.GOMAXPROCS(0), n, loadavg())
	sd, err := seed.Load(seedPath)
	if err != nil {
		return err
	}
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mqttLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	// The device flow wants the poll interval respected; the clock jumps it instead of waiting.
	var skew atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	c, err := devcloud.Start(ctx, devcloud.Options{HTTP: httpLn, MQTT: mqttLn, Seed: sd, Now: now, AccessTTL: time.Hour, PollEvery: time.Second})
	if err != nil {
		return err
	}
	defer c.Close()

	t0 := time.Now()
	stations, err := enrollFleet(c, n, func() { skew.Add(int64(6 * time.Second)) })
	if err != nil {
		return err
	}
	fmt.Printf("  enrolled %d stations in %v\n", n, time.Since(t0).Round(time.Millisecond))
	before := measure("before connecting")

	dir, err := os.MkdirTemp("", "bench-fleet-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	creds := filepath.Join(dir, "stations.json")
	b, _ := json.Marshal(stations)
	if err := os.WriteFile(creds, b, 0o600); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	child := exec.CommandContext(ctx, self, "-fleet-child", creds, "-fleet-broker", c.BrokerURL, "-fleet-keys", c.Auth.KeysURL())
	child.Stderr = os.Stderr
	stdin, _ := child.StdinPipe()
	out, _ := child.StdoutPipe()
	if err := child.Start(); err != nil {
		return err
	}
	defer func() { stdin.Close(); child.Wait() }()
	t0 = time.Now()
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "online ") {
			if k, _ := strconv.Atoi(strings.TrimPrefix(sc.Text(), "online ")); k == n {
				break
			}
		}
	}
	if sc.Err() != nil {
		return sc.Err()
	}
	go func() {
		for sc.Scan() {
		}
	}()
	fmt.Printf("  %d stations online in %v\n", n, time.Since(t0).Round(time.Millisecond))
	online := measure("all online")
	// Idle means the stations only keep their sessions alive (a ping every 4 s each).
	time.Sleep(idle)
	after := measure(fmt.Sprintf("after %v idle", idle))
	per := func(a, b memSample) string {
		return fmt.Sprintf("heap %.1f KB/station, stacks %.1f KB/station, RSS %.1f KB/station, %.1f goroutines/station",
			(float64(b.heap)-float64(a.heap))/1024/float64(n), (float64(b.stack)-float64(a.stack))/1024/float64(n),
			(float64(b.rss)-float64(a.rss))/float64(n), float64(b.goroutines-a.goroutines)/float64(n))
	}
	fmt.Printf("  connected: %s\n", per(before, online))
	fmt.Printf("  growth while idle: %s\n", per(online, after))
	fmt.Printf("  load after: %s\n", loadavg())
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			return err
		}
		fmt.Printf("  heap profile with %d stations online: %s (go tool pprof -sample_index inuse_space %s)\n", n, profile, profile)
	}
	return nil
}

type memSample struct {
	heap       uint64 // bytes in use by live heap objects plus their spans
	rss        int64  // KiB
	stack      uint64 // goroutine stacks, which RSS holds and the heap does not
	goroutines int
}

// measure collects garbage and returns the memory still held. Several collections: each may
// halve a goroutine stack that is mostly unused, as an idle devcloud's runtime does over minutes
// (it forces a collection every 2 minutes).
func measure(what string) memSample {
	for range 5 {
		runtime.GC()
	}
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, _ := procStatus("/proc/self/status")
	s := memSample{heap: ms.HeapInuse, rss: rss, stack: ms.StackInuse, goroutines: runtime.NumGoroutine()}
	fmt.Printf("  %-20s heap in use %6.1f MB, stacks %5.1f MB, RSS %6.1f MB, goroutines %d\n", what, float64(s.heap)/(1<<20), float64(s.stack)/(1<<20), mb(s.rss), s.goroutines)
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
