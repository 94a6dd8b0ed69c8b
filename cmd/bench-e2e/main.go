// Command bench-e2e measures a station end to end in one process: devcloud (authorization
// server, embedded broker, job API) and a real station core with simulated hardware, over
// loopback. A TCP printer listener timestamps the bytes it receives, so "tap → first byte" is
// what a person at the printer would see. `make bench-e2e` runs it.
//
// It reports tap → first/last byte percentiles for one-label jobs, the throughput of one long
// native-ZPL job (first vs last 1,000 labels), the process's RSS throughout, and where the time
// of a tap goes (lookup and release round trips, the journal commit, the print worker's render,
// printer status checks and writes). -sync-delay adds a slower storage's fsync cost to every
// journal commit, to show what an SD card does to the same numbers.
package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"labelstation/devcloud"
	"labelstation/devcloud/jobs"
	"labelstation/devcloud/seed"
	"labelstation/display"
	"labelstation/drivers/badge"
	"labelstation/drivers/printer"
	"labelstation/protocol"
	"labelstation/provisioning"
	"labelstation/station"
	"labelstation/station/cloud"
	"labelstation/station/config"
	"labelstation/station/journal"
	"labelstation/station/trust"
)

const aliceBadge = "04A1B2C3D4E580" // examples/devcloud-seed.json

// cpuProfile is -cpuprofile.
var cpuProfile string

// withCounter is -counter.
var withCounter = true

// twoStep is -two-step.
var twoStep bool

// tapGap is -gap.
var tapGap time.Duration

func main() {
	taps := flag.Int("taps", 200, "one-label jobs released by a tap each")
	labels := flag.Int("labels", 10000, "labels in the long job (0 skips it)")
	syncDelay := flag.Duration("sync-delay", 0, "extra time per fsync (a bbolt commit does 2): 5ms approximates an SD card")
	stateDir := flag.String("state", "", "station state directory (journal, tokens); default a new temporary directory. Point it at the disk you want measured")
	flag.BoolVar(&withCounter, "counter", true, "the printer reports a label counter (a Link-OS Zebra); false: labels are confirmed by status queries")
	flag.DurationVar(&tapGap, "gap", 0, "pause between a tap's job printed and the next tap (a person walking up); 0: tap at once")
	flag.BoolVar(&twoStep, "two-step", false, "tap in two round trips (lookup, then release), as with a cloud that cannot release on a lookup")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the long job here")
	seedPath := flag.String("seed", "examples/devcloud-seed.json", "devcloud seed")
	fleet := flag.Int("fleet", 0, "instead: devcloud's memory with this many stations connected (1000 in docs/performance.md)")
	idle := flag.Duration("fleet-idle", 10*time.Second, "with -fleet: how long the connected fleet idles before the last reading")
	profile := flag.String("fleet-profile", "", "with -fleet: write devcloud's heap profile here with the fleet online")
	stationd := flag.String("stationd", "", "instead: run this stationd binary as its own process and report its memory alone (make bench-e2e-stationd)")
	fleetBroker := flag.String("fleet-broker", "embedded", "with -fleet: embedded (devcloud's own broker) or mosquitto (devcloud against a Mosquitto the benchmark starts with -mosquitto-deploy's configuration)")
	mosquittoDeploy := flag.String("mosquitto-deploy", "deploy/mosquitto", "with -fleet-broker mosquitto: the directory with the deployed mosquitto.conf and lrs.acl")
	child := flag.String("fleet-child", "", "internal: connect the stations in this file (the -fleet child process)")
	childBroker := flag.String("fleet-child-broker", "", "internal: the -fleet child's broker")
	childKeys := flag.String("fleet-keys", "", "internal: the JWKS the -fleet child's stations verify messages with")
	flag.Parse()
	var err error
	switch {
	case *child != "":
		err = fleetChild(*child, *childBroker, *childKeys)
	case *stationd != "":
		err = runStationd(*stationd, *taps, *labels, *seedPath)
	case *fleet > 0:
		_, err = benchFleet(fleetOptions{N: *fleet, Idle: *idle, Seed: *seedPath, Profile: *profile, Broker: *fleetBroker, Deploy: *mosquittoDeploy})
	default:
		err = run(*taps, *labels, *syncDelay, *stateDir, *seedPath)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-e2e:", err)
		os.Exit(1)
	}
}

func run(taps, labels int, syncDelay time.Duration, stateDir, seedPath string) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rss := startRSS(ctx)
	if stateDir == "" {
		d, err := os.MkdirTemp("", "bench-e2e-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		stateDir = d
	} else if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return err
	}
	fmt.Printf("bench-e2e: %s, GOMAXPROCS %d, state in %s, sync delay %v per fsync, two-step taps %v, gap between taps %v\n", runtime.Version(), runtime.GOMAXPROCS(0), stateDir, syncDelay, twoStep, tapGap)
	fmt.Printf("load before: %s\n", loadavg())

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
	c, err := devcloud.Start(ctx, devcloud.Options{HTTP: httpLn, MQTT: mqttLn, Seed: sd, PollEvery: time.Second})
	if err != nil {
		return err
	}
	defer c.Close()

	pl, err := listenPrinter()
	if err != nil {
		return err
	}
	defer pl.Close()

	st, err := startStation(ctx, c, pl, stateDir, syncDelay)
	if err != nil {
		return err
	}
	defer st.stop()
	if err := st.enroll(ctx, c); err != nil {
		return err
	}
	tok, err := c.UserToken(ctx, "alice")
	if err != nil {
		return err
	}
	rss.mark("enrolled")

	if taps > 0 {
		if err := benchTaps(ctx, c, st, pl, tok, taps); err != nil {
			return err
		}
		rss.mark("after taps")
	}
	if labels > 0 {
		if err := benchLongJob(ctx, c, st, pl, tok, labels); err != nil {
			return err
		}
		rss.mark("after long job")
	}
	fmt.Printf("load after: %s\n", loadavg())
	rss.report("memory of the whole process (devcloud + station + this harness)")
	return nil
}

// ---- the station ----

type benchStation struct {
	st     *station.Station
	reader *badge.Sim
	trace  *tracer
	models *models
	stop   func()
}

func startStation(ctx context.Context, c *devcloud.Cloud, pl *printerListener, dir string, syncDelay time.Duration) (*benchStation, error) {
	cfg, err := config.Parse(fmt.Appendf(nil, `{"v":1,"station":{"state_dir":%q},
	  "cloud":{"issuer":%q,"broker":%q},
	  "board":{"kind":"sim","serial":"BENCH-E2E-%d"},
	  "printer":{"url":"tcp://%s","lang":"zpl","dpi":203},
	  "display":{"kind":"sim"},
	  "badge":{"reader":"sim","repeat_ms":1},
	  "release":{"mode":"all","screen_seconds":1}}`, dir, c.URL, c.BrokerURL, time.Now().UnixNano(), pl.ln.Addr()))
	if err != nil {
		return nil, err
	}
	tr := &tracer{}
	committed := func() {
		if syncDelay > 0 {
			// bbolt syncs twice per commit (data pages, then the meta page).
			time.Sleep(2 * syncDelay)
		}
		now := time.Now()
		tr.add(span{kind: "commit", start: now, end: now, what: commitOp()})
	}
	j, err := journal.Open(filepath.Join(dir, "journal.db"), journal.Options{Committed: committed})
	if err != nil {
		return nil, err
	}
	t, err := printer.Dial(ctx, "tcp://"+pl.ln.Addr().String(), printer.DialOptions{})
	if err != nil {
		j.Close()
		return nil, err
	}
	pr := &timedPrinter{p: printer.New(t, printer.ZPL), tr: tr}
	var sp station.Printer = pr
	if !withCounter {
		sp = statusOnlyPrinter{pr}
	}
	var st *station.Station
	prov, err := provisioning.New(provisioning.Config{
		ClientID: cfg.Cloud.ClientID, DeviceAuthURL: c.Auth.DeviceAuthURL(), TokenURL: c.Auth.TokenURL(),
		StationClaim: cfg.Cloud.StationClaim, Scopes: cfg.Cloud.Scopes, Serial: cfg.Board.Serial, StateDir: dir,
		HTTPClient: &http.Client{Timeout: 15 * time.Second},
		OnEvent: func(e provisioning.Event) {
			if st != nil {
				st.EnrollEvent(e)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	reader := badge.NewSim("bench")
	badges := make(chan badge.Badge, 4)
	go badge.Pump(ctx, reader, badges, badge.PumpOptions{Repeat: time.Millisecond})
	ms := newModels()
	verifier, err := benchVerifier(c.Auth.KeysURL(), dir)
	if err != nil {
		return nil, err
	}
	st, err = station.New(station.Options{
		Config: cfg, Panel: &framebuffer{size: image.Pt(cfg.Display.Width, cfg.Display.Height)}, Printer: sp, Journal: j, Enroller: prov,
		DialCloud: func(o cloud.Options) (station.Cloud, error) {
			v, err := verifier(o.StationID)
			if err != nil {
				return nil, err
			}
			o.Verify = v
			onJob := o.OnJob
			o.OnJob = func(job protocol.Job) error {
				t0 := time.Now()
				err := onJob(job)
				tr.add(span{kind: "journal", start: t0, end: time.Now()})
				return err
			}
			l, err := cloud.New(o)
			if err != nil {
				return nil, err
			}
			if twoStep {
				return twoStepCloud{&timedCloud{Link: l, tr: tr}}, nil
			}
			return &timedCloud{Link: l, tr: tr}, nil
		},
		Badges: badges, Observe: ms.observe, Serial: cfg.Board.Serial,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return nil, err
	}
	sctx, scancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); st.Run(sctx) }()
	return &benchStation{st: st, reader: reader, trace: tr, models: ms, stop: sync.OnceFunc(func() {
		scancel()
		<-done
		reader.Halt()
		pr.p.Close()
		j.Close()
	})}, nil
}

func (b *benchStation) enroll(ctx context.Context, c *devcloud.Cloud) error {
	m, err := b.models.waitFor(ctx, time.Minute, func(m station.Model) bool { return m.Phase == station.Enrolling && m.Code.UserCode != "" })
	if err != nil {
		return fmt.Errorf("pairing code: %w", err)
	}
	if err := c.Auth.Approve(m.Code.UserCode, "alice"); err != nil {
		return err
	}
	_, err = b.models.waitFor(ctx, time.Minute, func(m station.Model) bool { return m.Phase == station.Idle && m.Configured && m.Online })
	if err != nil {
		return fmt.Errorf("idle after enrollment: %w", err)
	}
	return c.Jobs.WaitOnline(ctx)
}

func (b *benchStation) tap(ctx context.Context, uidHex string) (time.Time, error) {
	uid, err := hex.DecodeString(uidHex)
	if err != nil {
		return time.Time{}, err
	}
	t0 := time.Now()
	return t0, b.reader.Tap(ctx, uid)
}

// ---- the two benchmarks ----

func benchTaps(ctx context.Context, c *devcloud.Cloud, st *benchStation, pl *printerListener, tok string, n int) error {
	one := "name,street,zip,city,tracking\nAda Lovelace,12 Square,4JH,London,TRK0000000001\n"
	var first, last []time.Duration
	var commits []int
	stages := map[string][]time.Duration{}
	for i := range n {
		j, err := submit(ctx, c, tok, fmt.Sprintf("tap %d", i), one)
		if err != nil {
			return err
		}
		if tapGap > 0 {
			time.Sleep(tapGap) // pacing, as a person's taps are: the station's background writes settle
		}
		st.trace.reset()
		pl.reset()
		st.models.reset()
		t0, err := st.tap(ctx, aliceBadge)
		if err != nil {
			return err
		}
		// Models from before the tap (the last tap's result screen, redrawn every tick) must
		// not count as this tap's result: wait for this tap's lookup first.
		if _, err := st.models.waitFor(ctx, time.Minute, func(m station.Model) bool { return m.Phase == station.Lookup }); err != nil {
			return fmt.Errorf("tap %d: lookup screen: %w; the station is at %s", i, err, st.models.last())
		}
		lab, err := pl.wait(ctx, time.Minute, 1)
		if err != nil {
			return fmt.Errorf("tap %d: %w; the station is at %s", i, err, st.models.last())
		}
		if err := waitPrinted(ctx, c, j.ID); err != nil {
			return fmt.Errorf("tap %d: %w; the station is at %s", i, err, st.models.last())
		}
		// The next tap must find the station idle (a tap while printing only says "busy").
		if _, err := st.models.waitFor(ctx, time.Minute, func(m station.Model) bool { return !m.Busy && m.Phase == station.Done }); err != nil {
			return fmt.Errorf("tap %d: done screen: %w; the station is at %s", i, err, st.models.last())
		}
		first = append(first, lab[0].first.Sub(t0))
		last = append(last, lab[0].last.Sub(t0))
		commits = append(commits, st.trace.commitsBefore(t0, lab[0].first))
		for k, d := range st.trace.breakdown(t0, lab[0].first) {
			stages[k] = append(stages[k], d)
		}
	}
	fmt.Printf("\n%d taps, one label each (native ZPL):\n", n)
	fmt.Printf("  tap → first byte  %s\n", pcts(first))
	fmt.Printf("  tap → last byte   %s\n", pcts(last))
	slices.Sort(commits)
	fmt.Printf("  journal commits between tap and first byte: median %d, max %d; by journal method over all taps: %s\n", commits[len(commits)/2], commits[len(commits)-1], st.trace.commitOps())
	fmt.Printf("  stages (each tap; they overlap where the protocol lets them):\n")
	for _, k := range stageOrder {
		if v := stages[k]; len(v) > 0 {
			fmt.Printf("    %-34s %s\n", k, pcts(v))
		}
	}
	return nil
}

func benchLongJob(ctx context.Context, c *devcloud.Cloud, st *benchStation, pl *printerListener, tok string, n int) error {
	var csv strings.Builder
	csv.WriteString("name,street,zip,city,tracking\n")
	for i := range n {
		fmt.Fprintf(&csv, "Customer %d,%d Long Street,%05d,Springfield,TRK%010d\n", i, i%997, i%99999, i)
	}
	j, err := submit(ctx, c, tok, "long job", csv.String())
	if err != nil {
		return err
	}
	if j.Labels != n {
		return fmt.Errorf("long job has %d labels, want %d", j.Labels, n)
	}
	st.trace.reset()
	pl.reset()
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	t0, err := st.tap(ctx, aliceBadge)
	if err != nil {
		return err
	}
	lab, err := pl.wait(ctx, 10*time.Minute, n)
	if err != nil {
		return fmt.Errorf("long job: %w; the station is at %s", err, st.models.last())
	}
	pprof.StopCPUProfile()
	end := lab[n-1].last
	total := end.Sub(lab[0].first)
	fmt.Printf("\none job of %d labels (native ZPL, 4×6 shipping layout) to a printer that accepts bytes at once:\n", n)
	fmt.Printf("  tap → first byte %v, tap → last byte %v\n", ms(lab[0].first.Sub(t0)), ms(end.Sub(t0)))
	fmt.Printf("  first byte → last byte: %.0f labels/s\n", float64(n-1)/total.Seconds())
	if n >= 2000 {
		k := 1000
		a := float64(k-1) / lab[k-1].last.Sub(lab[0].last).Seconds()
		b := float64(k-1) / lab[n-1].last.Sub(lab[n-k].last).Seconds()
		fmt.Printf("  first %d labels %.0f labels/s, last %d labels %.0f labels/s (last/first %.2f)\n", k, a, k, b, b/a)
	}
	tr := st.trace
	fmt.Printf("  during the job: %d label writes, %d printer status checks, %d label counter reads, %d journal commits\n",
		tr.count("send"), tr.count("printer status"), tr.count("printer counter"), tr.count("commit"))
	per := func(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/1e6/float64(n)) }
	rest := total - tr.total("send") - tr.total("printer status") - tr.total("printer counter")
	fmt.Printf("  per label: printer status %s, counter %s, write %s, the rest (journal, render, record reading, screen) %s\n",
		per(tr.total("printer status")), per(tr.total("printer counter")), per(tr.total("send")), per(rest))
	if err := waitPrinted(ctx, c, j.ID); err != nil {
		return fmt.Errorf("long job: %w; the station is at %s", err, st.models.last())
	}
	return nil
}

// waitPrinted waits for the cloud to record the job as printed.
func waitPrinted(ctx context.Context, c *devcloud.Cloud, id string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_, err := c.Jobs.Store().WaitFor(ctx, id, func(j jobs.Job) bool { return j.State == jobs.StatePrinted })
	if err != nil {
		got, _ := c.Jobs.Store().Get(id)
		return fmt.Errorf("job %s not recorded as printed (state %s): %w", id, got.State, err)
	}
	return nil
}

// ---- tracing through the station's interfaces ----

type span struct {
	kind       string
	start, end time.Time
	what       string // a commit: the journal method that made it
}

// commitOp names the journal method whose commit is running, from the hook's call stack.
func commitOp() string {
	pc := make([]uintptr, 32)
	frames := runtime.CallersFrames(pc[:runtime.Callers(2, pc)])
	op := "?"
	for {
		f, more := frames.Next()
		if name, ok := strings.CutPrefix(f.Function, "labelstation/station/journal.(*Journal)."); ok && name != "write" && name != "update" {
			op = name // the outermost journal method wins
		}
		if !more {
			return op
		}
	}
}

type tracer struct {
	mu    sync.Mutex
	spans []span
	n     map[string]int
	sum   map[string]time.Duration
	// ops counts, over every tap, the commits between the tap and its first byte by journal
	// method; reset keeps it.
	ops map[string]int
}

func (t *tracer) add(s span) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n == nil {
		t.n, t.sum = map[string]int{}, map[string]time.Duration{}
	}
	t.n[s.kind]++
	t.sum[s.kind] += s.end.Sub(s.start)
	if len(t.spans) < 1000 { // a long job has one send per label; the first ones suffice
		t.spans = append(t.spans, s)
	}
}

func (t *tracer) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.spans, t.n, t.sum = nil, nil, nil
}

func (t *tracer) total(kind string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sum[kind]
}

func (t *tracer) count(kind string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n[kind]
}

var stageOrder = []string{"tap → lookup request", "lookup round trip", "list → release request", "printer status (release)", "release round trip",
	"lookup+release round trip", "tap → job message at the station",
	"job message → journaled", "journaled → first write (worker)", "  of which printer status", "  of which printer counter", "first write (printer I/O)"}

// commitsBefore counts the journal commits between the tap and the printer's first byte.
func (t *tracer) commitsBefore(tap, firstByte time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, s := range t.spans {
		if s.kind == "commit" && s.end.After(tap) && s.end.Before(firstByte) {
			n++
			if t.ops == nil {
				t.ops = map[string]int{}
			}
			t.ops[s.what]++
		}
	}
	return n
}

// breakdown names where the time between the tap and the printer's first byte went.
func (t *tracer) breakdown(tap, firstByte time.Time) map[string]time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	get := func(kind string) (span, bool) {
		for _, s := range t.spans {
			if s.kind == kind {
				return s, true
			}
		}
		return span{}, false
	}
	out := map[string]time.Duration{}
	lk, ok1 := get("lookup")
	rl, ok2 := get("release")
	jr, ok3 := get("journal")
	sd, ok4 := get("send")
	if ok1 {
		out["tap → lookup request"] = lk.start.Sub(tap)
		out["lookup round trip"] = lk.end.Sub(lk.start)
	}
	if ok1 && ok2 {
		out["list → release request"] = rl.start.Sub(lk.end)
		out["release round trip"] = rl.end.Sub(rl.start)
	}
	var relStatus, workStatus, workCounter time.Duration
	// release.mode all in one round trip: the printer check comes before the one request, and
	// is not counted in "tap → lookup request".
	if la, ok := get("lookup+release"); ok {
		for _, s := range t.spans {
			if s.kind == "printer status" && s.start.After(tap) && !s.end.After(la.start) {
				relStatus += s.end.Sub(s.start)
			}
		}
		out["tap → lookup request"] = la.start.Sub(tap) - relStatus
		out["lookup+release round trip"] = la.end.Sub(la.start)
	}
	for _, s := range t.spans {
		if s.kind == "printer counter" && ok3 && ok4 && s.start.After(jr.end) && s.end.Before(sd.start) {
			workCounter += s.end.Sub(s.start)
		}
		if s.kind != "printer status" {
			continue
		}
		switch {
		case ok1 && s.start.After(lk.end) && (!ok2 || s.end.Before(rl.start) || s.end.Equal(rl.start)):
			relStatus += s.end.Sub(s.start)
		case ok3 && ok4 && s.start.After(jr.end) && s.end.Before(sd.start):
			workStatus += s.end.Sub(s.start)
		}
	}
	out["printer status (release)"] = relStatus
	if ok3 {
		out["tap → job message at the station"] = jr.start.Sub(tap)
		out["job message → journaled"] = jr.end.Sub(jr.start)
	}
	if ok3 && ok4 {
		out["journaled → first write (worker)"] = sd.start.Sub(jr.end)
		out["  of which printer status"] = workStatus
		out["  of which printer counter"] = workCounter
	}
	if ok4 {
		out["first write (printer I/O)"] = firstByte.Sub(sd.start)
	}
	return out
}

// twoStepCloud hides LookupRelease: the station then looks up and releases in two requests.
type twoStepCloud struct{ station.Cloud }

type timedCloud struct {
	*cloud.Link
	tr *tracer
}

func (c *timedCloud) Lookup(ctx context.Context, b string) (protocol.LookupReply, error) {
	t0 := time.Now()
	r, err := c.Link.Lookup(ctx, b)
	c.tr.add(span{kind: "lookup", start: t0, end: time.Now()})
	return r, err
}

// LookupRelease is release.mode all's one request: lookup and release in one round trip.
func (c *timedCloud) LookupRelease(ctx context.Context, b string) (protocol.ReleaseReply, error) {
	t0 := time.Now()
	r, err := c.Link.LookupRelease(ctx, b)
	c.tr.add(span{kind: "lookup+release", start: t0, end: time.Now()})
	return r, err
}

func (c *timedCloud) Release(ctx context.Context, b string, ids []string) (protocol.ReleaseReply, error) {
	t0 := time.Now()
	r, err := c.Link.Release(ctx, b, ids)
	c.tr.add(span{kind: "release", start: t0, end: time.Now()})
	return r, err
}

type timedPrinter struct {
	p  *printer.Printer
	tr *tracer
}

func (p *timedPrinter) Send(ctx context.Context, data []byte) error {
	t0 := time.Now()
	err := p.p.Send(ctx, data)
	p.tr.add(span{kind: "send", start: t0, end: time.Now()})
	return err
}

func (p *timedPrinter) Status(ctx context.Context) (printer.Status, error) {
	t0 := time.Now()
	s, err := p.p.Status(ctx)
	p.tr.add(span{kind: "printer status", start: t0, end: time.Now()})
	return s, err
}

// Counter reads the printer's label counter (the worker confirms labels by it in windows).
func (p *timedPrinter) Counter(ctx context.Context) (int64, error) {
	t0 := time.Now()
	n, err := p.p.Counter(ctx)
	p.tr.add(span{kind: "printer counter", start: t0, end: time.Now()})
	return n, err
}

// statusOnlyPrinter hides the label counter, as a printer without one (TSPL, ESC/POS, an old
// Zebra) would: the worker then confirms every label by a status query.
type statusOnlyPrinter struct{ p *timedPrinter }

func (p statusOnlyPrinter) Send(ctx context.Context, data []byte) error { return p.p.Send(ctx, data) }
func (p statusOnlyPrinter) Status(ctx context.Context) (printer.Status, error) {
	return p.p.Status(ctx)
}

// framebuffer is a panel that keeps the last frame, as an SPI panel's driver would.
type framebuffer struct {
	size image.Point
	last image.Image
}

func (f *framebuffer) Bounds() image.Rectangle    { return image.Rectangle{Max: f.size} }
func (f *framebuffer) Show(img image.Image) error { f.last = img; return nil }
func (f *framebuffer) Halt() error                { return nil }
func (f *framebuffer) String() string             { return "framebuffer" }

var _ display.Panel = (*framebuffer)(nil)

// ---- the printer listener ----

type labelTimes struct{ first, last time.Time }

// printerListener is a ZPL printer that accepts bytes at once and prints them at once: it
// answers ~HS with "ready" and the Link-OS label counter (SGD getvar
// odometer.total_label_count) with the labels received, and notes when each label's first
// and last bytes arrived.
type printerListener struct {
	ln      net.Listener
	mu      sync.Mutex
	labels  []labelTimes
	printed int64 // the label counter: every label printed at once, all connections
	changed chan struct{}
}

func listenPrinter() (*printerListener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &printerListener{ln: ln, changed: make(chan struct{})}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p, nil
}

func (p *printerListener) Close() error { return p.ln.Close() }

func (p *printerListener) serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 64<<10)
	var acc []byte // bytes not yet parsed: a command split across reads waits for the rest
	open := false
	var start time.Time
	ready := printer.FormatZPLHostStatus(printer.Status{})
	for {
		n, err := c.Read(buf)
		now := time.Now()
		if n > 0 {
			acc = append(acc, buf[:n]...)
			pos := 0
		scan:
			for pos < len(acc) {
				i := bytes.IndexAny(acc[pos:], "^~!")
				if i < 0 {
					pos = len(acc)
					break
				}
				i += pos
				if i+3 > len(acc) {
					pos = i
					break
				}
				cmd := string(acc[i : i+3])
				pos = i + 3
				switch cmd {
				case "~HS":
					if _, err := c.Write(ready); err != nil {
						return
					}
				case "^XA":
					open, start = true, now
				case "^XZ":
					if open {
						p.mu.Lock()
						p.labels = append(p.labels, labelTimes{first: start, last: now})
						p.printed++
						close(p.changed)
						p.changed = make(chan struct{})
						p.mu.Unlock()
						open = false
					}
				case "! U":
					// A Set-Get-Do line: the label counter is the one variable asked.
					end := bytes.IndexByte(acc[i:], '\n')
					if end < 0 {
						pos = i
						break scan
					}
					pos = i + end + 1
					if bytes.Contains(acc[i:pos], []byte("odometer.total_label_count")) {
						p.mu.Lock()
						reply := fmt.Appendf(nil, "\"%d\"\r\n", p.printed)
						p.mu.Unlock()
						if _, err := c.Write(reply); err != nil {
							return
						}
					}
				default:
					pos = i + 1
				}
			}
			acc = append(acc[:0], acc[pos:]...)
		}
		if err != nil {
			return
		}
	}
}

func (p *printerListener) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.labels = nil
}

func (p *printerListener) wait(ctx context.Context, d time.Duration, n int) ([]labelTimes, error) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		if len(p.labels) >= n {
			out := slices.Clone(p.labels)
			p.mu.Unlock()
			return out, nil
		}
		ch, have := p.changed, len(p.labels)
		p.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			return nil, fmt.Errorf("printer has %d of %d labels after %v", have, n, d)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// ---- models, submission, statistics ----

type models struct {
	mu      sync.Mutex
	all     []station.Model
	newest  station.Model
	changed chan struct{}
}

// reset forgets the models seen so far.
func (w *models) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all = w.all[:0]
}

// last describes the newest model, for errors.
func (w *models) last() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.newest
	return fmt.Sprintf("%s (busy %v, online %v, %d/%d labels, %q)", m.Phase, m.Busy, m.Online, m.Done, m.Total, m.Message)
}

func newModels() *models { return &models{changed: make(chan struct{})} }

func (w *models) observe(m station.Model) {
	w.mu.Lock()
	w.all = append(w.all, m)
	w.newest = m
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
}

// waitFor waits for a model that satisfies pred, starting with the newest one, and forgets
// those before it.
func (w *models) waitFor(ctx context.Context, d time.Duration, pred func(station.Model) bool) (station.Model, error) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		for i, m := range w.all {
			if pred(m) {
				w.all = w.all[i+1:]
				w.mu.Unlock()
				return m, nil
			}
		}
		w.all = w.all[:0]
		ch := w.changed
		w.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			return station.Model{}, errors.New("timed out")
		case <-ctx.Done():
			return station.Model{}, ctx.Err()
		}
	}
}

// submit posts a job through the job API as a web app would.
func submit(ctx context.Context, c *devcloud.Cloud, token, title, csv string) (jobs.Job, error) {
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	w.WriteField("title", title)
	w.WriteField("format", "shipping")
	fw, _ := w.CreateFormFile("data", "records.csv")
	fw.Write([]byte(csv))
	w.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL+"/v1/jobs", &body)
	if err != nil {
		return jobs.Job{}, err
	}
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return jobs.Job{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusAccepted {
		return jobs.Job{}, fmt.Errorf("submit: %s %s", resp.Status, b)
	}
	var j jobs.Job
	if err := json.Unmarshal(b, &j); err != nil {
		return j, err
	}
	if resp.StatusCode == http.StatusAccepted {
		// Large data is validated in the background: the job is held once that is done.
		wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		got, err := c.Jobs.Store().WaitFor(wctx, j.ID, func(j jobs.Job) bool { return j.State != jobs.StateValidating })
		if err != nil {
			return j, fmt.Errorf("submit: job %s still validating: %w", j.ID, err)
		}
		if got.State != jobs.StateHeld {
			return got, fmt.Errorf("submit: job %s is %s after validation: %s", j.ID, got.State, got.Error)
		}
		j = got
	}
	return j, nil
}

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func pcts(v []time.Duration) string {
	s := slices.Clone(v)
	slices.Sort(s)
	return fmt.Sprintf("p50 %7s  p90 %7s  p99 %7s  max %7s", ms(pct(s, .5)), ms(pct(s, .9)), ms(pct(s, .99)), ms(s[len(s)-1]))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/1e6) }

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:3], " ")
}

// ---- RSS ----

type rssSampler struct {
	path    string
	mu      sync.Mutex
	maxRSS  int64
	samples int
	marks   []string
}

// startRSS samples VmRSS every 20 ms until ctx ends; VmHWM (the kernel's own peak) is read at
// each mark and at the end.
func startRSS(ctx context.Context) *rssSampler { return startRSSOf(ctx, "/proc/self/status") }

// startRSSOf samples the VmRSS of the process whose status file is path.
func startRSSOf(ctx context.Context, path string) *rssSampler {
	r := &rssSampler{path: path}
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			rss, _ := procStatus(path)
			r.mu.Lock()
			r.maxRSS = max(r.maxRSS, rss)
			r.samples++
			r.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return r
}

func (r *rssSampler) mark(what string) {
	rss, hwm := procStatus(r.path)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.marks = append(r.marks, fmt.Sprintf("  %-16s VmRSS %5.1f MB, VmHWM %5.1f MB", what, mb(rss), mb(hwm)))
}

func (r *rssSampler) report(title string) {
	_, hwm := procStatus(r.path)
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Printf("\n%s:\n", title)
	for _, m := range r.marks {
		fmt.Println(m)
	}
	fmt.Printf("  peak VmRSS sampled every 20 ms: %.1f MB (%d samples); VmHWM %.1f MB\n", mb(r.maxRSS), r.samples, mb(hwm))
}

func mb(kb int64) float64 { return float64(kb) / 1024 }

// procStatus returns VmRSS and VmHWM in KiB of the process whose status file is path.
func procStatus(path string) (rss, hwm int64) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		var v int64
		if _, err := fmt.Sscanf(line, "VmRSS: %d kB", &v); err == nil {
			rss = v
		}
		if _, err := fmt.Sscanf(line, "VmHWM: %d kB", &v); err == nil {
			hwm = v
		}
	}
	return rss, hwm
}

// benchVerifier is what stationd wires: the cloud's keys from its JWKS, kept in dir, and the
// replay window there; the station verifies every message as in production.
func benchVerifier(keysURL, dir string) (func(station string) (*trust.Verifier, error), error) {
	keys, err := trust.OpenKeys(trust.KeysOptions{URL: keysURL, File: filepath.Join(dir, trust.KeysFile)})
	if err != nil {
		return nil, err
	}
	return func(station string) (*trust.Verifier, error) {
		w, err := trust.OpenWindow(filepath.Join(dir, station+"-"+trust.WindowFile))
		if err != nil {
			return nil, err
		}
		return trust.NewVerifier(trust.VerifierOptions{Station: station, Keys: keys, Window: w})
	}, nil
}

// commitOps formats the per-method commit counts of commitsBefore, most frequent first.
func (t *tracer) commitOps() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	ops := make([]string, 0, len(t.ops))
	for op := range t.ops {
		ops = append(ops, op)
	}
	slices.SortFunc(ops, func(a, b string) int { return t.ops[b] - t.ops[a] })
	var b strings.Builder
	for i, op := range ops {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", op, t.ops[op])
	}
	return b.String()
}
