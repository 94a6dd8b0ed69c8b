package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"labelstation/devcloud"
	"labelstation/devcloud/jobs"
	"labelstation/devcloud/seed"
)

// env is one running setup: devcloud in this process, the proxy, the printer, the station.
type env struct {
	opt     Options
	cloud   *devcloud.Cloud
	proxy   *proxy
	printer *printerProc
	station *stationProc
	mosq    *mosquitto
	token   string
	taps    int // badge taps so far
}

// startEnv starts devcloud (with its embedded broker, or the external broker given), the proxy in
// front of the broker, the printer and an enrolled station.
func startEnv(ctx context.Context, opt Options, sd *seed.Seed, bins map[string]string, dir, externalBroker, serial string, noCounter bool) (*env, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	o := devcloud.Options{HTTP: httpLn, Broker: externalBroker, Seed: sd, PollEvery: time.Second,
		ServiceClientID: fmt.Sprintf("devcloud-chaos-%d", time.Now().UnixNano()),
		Logger:          slog.New(slog.NewTextHandler(prefixed(opt.Log, "devcloud "), nil))}
	if externalBroker == "" {
		if o.MQTT, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return nil, err
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := devcloud.Start(sctx, o)
	if err != nil {
		return nil, fmt.Errorf("chaos: devcloud: %w", err)
	}
	e := &env{opt: opt, cloud: c}
	if e.token, err = c.UserToken(ctx, "alice"); err != nil {
		e.close()
		return nil, err
	}
	if e.proxy, err = newProxy(strings.TrimPrefix(c.BrokerURL, "tcp://")); err != nil {
		e.close()
		return nil, err
	}
	if e.printer, err = startPrinter(ctx, bins["simprinter"], filepath.Join(dir, "printer-counter"), opt.LabelTime, noCounter, opt.Log); err != nil {
		e.close()
		return nil, err
	}
	web, err := freePort()
	if err != nil {
		e.close()
		return nil, err
	}
	cfg := filepath.Join(dir, "stationd.json")
	if err := writeConfig(cfg, filepath.Join(dir, "state"), c.URL, "mqtt://"+e.proxy.addr, e.printer.url(), serial); err != nil {
		e.close()
		return nil, err
	}
	e.station = &stationProc{bin: bins["stationd"], web: web, logw: opt.Log,
		args: []string{"--sim", "--config", cfg, "--web", web, "--printer", e.printer.url()}}
	if err := e.station.start(); err != nil {
		e.close()
		return nil, err
	}
	// Enrollment: approve the code the station shows, as the admin would.
	ectx, cancel2 := context.WithTimeout(ctx, 60*time.Second)
	defer cancel2()
	if !e.station.waitState(ectx, func(_, code string) bool { return code != "" }) {
		e.close()
		return nil, errors.New("chaos: the station showed no pairing code within 60 s")
	}
	_, code, _ := e.station.snapshot()
	if err := c.Auth.Approve(code, "alice"); err != nil {
		e.close()
		return nil, fmt.Errorf("chaos: approve: %w", err)
	}
	if !e.station.waitState(ectx, func(st, _ string) bool { return st == "idle" }) {
		e.close()
		return nil, errors.New("chaos: the enrolled station did not reach idle within 60 s")
	}
	return e, nil
}

func (e *env) close() {
	if e.station != nil {
		e.station.stop()
	}
	if e.proxy != nil {
		e.proxy.Close()
	}
	if e.printer != nil {
		e.printer.stop()
	}
	if e.cloud != nil {
		e.cloud.Close()
	}
}

var serialRE = regexp.MustCompile(`S\d+J\d+L\d+Z`)

// submit posts a job of n labels, one serial each, through the job API as an app would.
func (e *env) submit(ctx context.Context, serials []string) (string, error) {
	var csv strings.Builder
	csv.WriteString("name,street,zip,city,tracking\n")
	for _, s := range serials {
		fmt.Fprintf(&csv, "%s,1 Chaos Way,00000,Testville,%s\n", s, s)
	}
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	w.WriteField("title", serials[0])
	w.WriteField("format", "shipping")
	fw, _ := w.CreateFormFile("data", "records.csv")
	io.WriteString(fw, csv.String())
	w.Close()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.cloud.URL+"/v1/jobs", &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	// 201: held at once; 202: devcloud validates big jobs in the background first.
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("chaos: submit: %s %s", resp.Status, b)
	}
	var j struct{ ID string }
	if err := json.Unmarshal(b, &j); err != nil {
		return "", err
	}
	held, err := e.cloud.Jobs.Store().WaitFor(ctx, j.ID, func(x jobs.Job) bool { return x.State != jobs.StateValidating })
	if err != nil {
		return "", fmt.Errorf("chaos: job %s never left validation: %w", j.ID, err)
	}
	if held.State != jobs.StateHeld {
		return "", fmt.Errorf("chaos: job %s is %s after submission: %s", j.ID, held.State, held.Error)
	}
	return j.ID, nil
}

// cloudJob reads the job's state through the job API.
func (e *env) cloudJob(ctx context.Context, id string) (jobs.Job, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.cloud.URL+"/v1/jobs/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return jobs.Job{}, err
	}
	defer resp.Body.Close()
	var j jobs.Job
	if resp.StatusCode != http.StatusOK {
		return j, fmt.Errorf("chaos: job %s: %s", id, resp.Status)
	}
	return j, json.NewDecoder(resp.Body).Decode(&j)
}

// onPaper counts, per serial, the printed labels that carry it.
func onPaper(labels []string, serials []string) map[string]int {
	want := map[string]bool{}
	for _, s := range serials {
		want[s] = true
	}
	n := map[string]int{}
	for _, l := range labels {
		seen := map[string]bool{}
		for _, s := range serialRE.FindAllString(l, -1) {
			if want[s] && !seen[s] {
				seen[s] = true
				n[s]++
			}
		}
	}
	return n
}

func finished(state string) bool { return state == jobs.StatePrinted || state == jobs.StateFailed }

// sleepCtx waits d (a fault's duration, never a wait for a result) or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// iteration prints one job with one fault injected at a seeded random point, then counts.
func (e *env) iteration(ctx context.Context, rng *rand.Rand, fault string, n int, row *Row) {
	K := e.opt.Labels
	serials := make([]string, K)
	for i := range serials {
		serials[i] = fmt.Sprintf("S%dJ%dL%dZ", e.opt.Seed, n, i+1)
	}
	row.Iterations++
	row.Expected += K
	logf := func(format string, args ...any) {
		fmt.Fprintf(e.opt.Log, "chaos: job %d (%s): %s\n", n, fault, fmt.Sprintf(format, args...))
	}
	unrecovered := false
	// The station must be ready before the next job: a station still stuck from the last
	// fault counts against that fault, but the harness restarts it so the run goes on.
	rctx, cancel := context.WithTimeout(ctx, e.opt.Settle)
	if !e.station.waitState(rctx, func(st, _ string) bool { return ready(st) }) {
		logf("station not ready before the job; restarting it")
		unrecovered = true
		e.station.kill9()
		e.station.start()
		e.station.waitState(rctx, func(st, _ string) bool { return ready(st) })
	}
	cancel()
	id, err := e.submit(ctx, serials)
	if err != nil {
		logf("submit: %v", err)
		row.Lost += K
		row.Unrecovered++
		return
	}
	// The fault point: after `at` labels of this job are on paper, plus up to 30 ms.
	maxAt := K
	if fault == FaultPrinterClose || fault == FaultPaperOut {
		maxAt = K - 1 // mid-job: at least one label still to come
	}
	at := rng.IntN(maxAt + 1)
	jitter := time.Duration(rng.IntN(30)) * time.Millisecond
	outage := e.opt.MaxOutage/20 + time.Duration(rng.Int64N(int64(e.opt.MaxOutage-e.opt.MaxOutage/20)+1))
	cutAt := 1 + rng.IntN(40) // bytes into the label where the printer drops the connection
	// Half the kills land while the station sends and confirms (it starts printing, plus the
	// jitter), where a printer that buffers labels has not printed them all yet.
	onPrinting := fault == FaultKill && rng.IntN(2) == 0
	_, drops0, _ := e.printer.snapshot()
	// Mid-job printer faults are armed in the printer, on the label itself, before the job.
	switch {
	case fault == FaultPrinterClose && at == 0:
		e.printerFault(ctx, logf, fmt.Sprintf("drop_mid_label=%d", cutAt))
	case fault == FaultPrinterClose:
		e.printerFault(ctx, logf, fmt.Sprintf("drop_mid_label=%d&drop_after=%d", cutAt, at))
	case fault == FaultPaperOut && at == 0:
		e.printerFault(ctx, logf, "paper_out=1")
	case fault == FaultPaperOut:
		e.printerFault(ctx, logf, fmt.Sprintf("paper_out_after=%d", at))
	}
	rep0, rec0 := e.station.reprints()
	taps0 := e.taps
	// The first tap is drive's: the station is idle and the job held.
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	ok := e.drive(fctx, id, func(st string, j jobs.Job, ls []string, drops int) bool {
		switch {
		case fault == FaultPrinterClose:
			return drops > drops0 || finished(j.State)
		case onPrinting:
			return st == "printing" || finished(j.State)
		}
		got := 0
		for _, c := range onPaper(ls, serials) {
			got += min(c, 1)
		}
		return got >= at || finished(j.State)
	})
	cancel()
	if _, drops, _ := e.printer.snapshot(); fault == FaultPrinterClose && drops == drops0 {
		logf("the printer never dropped the connection (label %d, byte %d)", at+1, cutAt)
	}
	if !ok {
		logf("the fault point (after %d labels) was never reached; injecting anyway", at)
	}
	sleepCtx(ctx, jitter)
	if onPrinting {
		logf("inject when printing starts (+%v)", jitter)
	} else {
		logf("inject after %d labels (+%v), outage %v", at, jitter, outage)
	}
	switch fault {
	case FaultKill:
		e.station.kill9()
		if err := e.station.start(); err != nil {
			logf("restart: %v", err)
		}
	case FaultMemRestart:
		if err := e.cloud.StopBroker(); err != nil {
			logf("stop broker: %v", err)
		}
		if err := e.cloud.StartBroker(); err != nil {
			logf("start broker: %v", err)
		}
	case FaultPersistRest:
		if err := e.mosq.restart(ctx); err != nil {
			logf("restart mosquitto: %v", err)
		}
	case FaultCut:
		e.proxy.Cut()
		sleepCtx(ctx, outage)
		e.proxy.Restore()
	case FaultDown:
		e.proxy.Down()
		sleepCtx(ctx, outage)
		if err := e.proxy.Up(); err != nil {
			logf("%v", err)
		}
	case FaultStall:
		e.proxy.Stall()
		sleepCtx(ctx, outage)
		e.proxy.Restore()
	case FaultPrinterRefuse:
		e.printerFault(ctx, logf, "refuse=1")
		sleepCtx(ctx, outage/2)
		e.printerFault(ctx, logf, "refuse=0")
	case FaultPrinterStall:
		e.printerFault(ctx, logf, "stall=1")
		sleepCtx(ctx, outage/2)
		e.printerFault(ctx, logf, "stall=0")
	case FaultPrinterClose:
		// Fired on its label already.
	case FaultPaperOut:
		sleepCtx(ctx, outage/2)
		e.printerFault(ctx, logf, "paper_out=0")
	}
	healed := time.Now()
	if !e.settle(ctx, id) {
		unrecovered = true
	}
	row.MaxRecovery = max(row.MaxRecovery, time.Since(healed).Seconds())
	if err := e.printer.heal(ctx); err != nil {
		logf("heal printer: %v", err)
	}
	// Verdict, on final paper: a label the printer holds in its buffer still prints.
	dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
	if err := e.printer.drained(dctx); err != nil {
		logf("%v", err)
	}
	dcancel()
	labels, _, _ := e.printer.snapshot()
	counts := onPaper(labels, serials)
	rep1, rec1 := e.station.reprints()
	row.Reprinted += rep1 - rep0
	row.Reconciled += rec1 - rec0
	distinct, dups := 0, 0
	for _, s := range serials {
		switch c := counts[s]; {
		case c == 1:
			row.Once++
			distinct++
		case c > 1:
			row.Duplicated++
			dups++
			distinct++
		default:
			row.Lost++
		}
	}
	j, err := e.cloudJob(ctx, id)
	agree := err == nil && ((j.State == jobs.StatePrinted && j.Printed == K && distinct == K) ||
		(j.State == jobs.StateFailed && j.Printed == distinct))
	if !agree {
		row.Disagree++
		logf("cloud says %s printed=%d (%v); paper has %d of %d", j.State, j.Printed, err, distinct, K)
	}
	if unrecovered {
		row.Unrecovered++
	}
	row.MaxDupPerIteration = max(row.MaxDupPerIteration, dups)
	row.Retaps += max(0, e.taps-taps0-1)
	logf("done: paper %v, cloud %s %d/%d, reprinted %d, reconciled %d", counts, j.State, j.Printed, K, rep1-rep0, rec1-rec0)
}

// printerFault sets a fault on the printer; a failure is logged (the iteration shows it).
func (e *env) printerFault(ctx context.Context, logf func(string, ...any), query string) {
	if err := e.printer.fault(ctx, query); err != nil {
		logf("%v", err)
	}
}

// ready says the station takes a tap: idle, or still showing the last job's result (a tap
// there starts the next lookup at once, as it does for a person in a hurry).
func ready(state string) bool { return state == "idle" || state == "done" }

// settle waits until the job is finished in the cloud with the station ready again, tapping the
// badge again whenever the station is ready and the job still held (a tap lost to the fault).
// It reports whether that happened within Settle.
func (e *env) settle(ctx context.Context, id string) bool {
	ctx, cancel := context.WithTimeout(ctx, e.opt.Settle)
	defer cancel()
	return e.drive(ctx, id, func(st string, j jobs.Job, _ []string, _ int) bool {
		return finished(j.State) && ready(st)
	})
}

// drive waits until done holds for the station's state, the job and the printer, as a person
// at the station would: tapping the badge again whenever the station is ready and the job still
// held (a tap lost to a fault, or one the station refused while it was not ready), and
// restarting a daemon that exited on its own (counted by the caller as not recovered). It
// wakes on every change of the station, the printer or the job.
func (e *env) drive(ctx context.Context, id string, done func(st string, j jobs.Job, labels []string, drops int) bool) bool {
	tappedIn := -1 // the ready period (counted by entries into idle or done) we tapped in
	idleEntries := 0
	lastState := ""
	for {
		st, _, stCh := e.station.snapshot()
		if ready(st) && st != lastState {
			idleEntries++
		}
		lastState = st
		if st == "dead" {
			fmt.Fprintf(e.opt.Log, "chaos: stationd exited on its own; restarting it\n")
			e.station.start()
			continue
		}
		labels, drops, prCh := e.printer.snapshot()
		j, err := e.cloud.Jobs.Store().Get(id)
		if err == nil && done(st, j, labels, drops) {
			return true
		}
		if err == nil && j.State == jobs.StateHeld && ready(st) && tappedIn != idleEntries {
			tappedIn = idleEntries
			e.taps++
			if err := e.station.tap(ctx, aliceBadge); err != nil {
				fmt.Fprintf(e.opt.Log, "chaos: tap: %v\n", err)
			}
		}
		jobCh := make(chan struct{})
		wctx, wcancel := context.WithCancel(ctx)
		go func() {
			e.cloud.Jobs.Store().WaitFor(wctx, id, func(x jobs.Job) bool { return x.State != j.State || x.Printed != j.Printed })
			close(jobCh)
		}()
		retap := time.NewTimer(10 * time.Second) // a tap the station never saw
		select {
		case <-stCh:
		case <-prCh:
		case <-jobCh:
		case <-retap.C:
			tappedIn = -1
		case <-ctx.Done():
		}
		retap.Stop()
		wcancel()
		<-jobCh
		if ctx.Err() != nil {
			return false
		}
	}
}

// prefixed writes each line to w with a prefix.
func prefixed(w io.Writer, prefix string) io.Writer { return &prefixWriter{w: w, p: prefix} }

type prefixWriter struct {
	w io.Writer
	p string
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	for _, l := range bytes.SplitAfter(b, []byte("\n")) {
		if len(l) > 0 {
			if _, err := fmt.Fprintf(p.w, "%s%s", p.p, l); err != nil {
				return 0, err
			}
		}
	}
	return len(b), nil
}

// mosquitto is a Mosquitto broker of the harness's own, with persistence, on a free port.
type mosquitto struct {
	bin, conf, addr string
	logw            io.Writer
	cmd             *exec.Cmd
	exited          chan struct{}
}

func findMosquitto() (string, error) {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("mosquitto not installed (apt-get install mosquitto to run the persistent-broker faults)")
}

func startMosquitto(ctx context.Context, bin, dir string, logw io.Writer) (*mosquitto, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// Mosquitto started as root drops to its own user, which must be able to save sessions.
	if err := os.Chmod(dir, 0o777); err != nil {
		return nil, err
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	conf := filepath.Join(dir, "mosquitto.conf")
	text := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\nautosave_interval 1\nlog_dest stderr\n", port, dir)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return nil, err
	}
	m := &mosquitto{bin: bin, conf: conf, addr: addr, logw: logw}
	return m, m.start(ctx)
}

func (m *mosquitto) start(ctx context.Context) error {
	m.cmd = exec.Command(m.bin, "-c", m.conf)
	m.cmd.Stdout = prefixed(m.logw, "mosquitto ")
	m.cmd.Stderr = prefixed(m.logw, "mosquitto ")
	if err := m.cmd.Start(); err != nil {
		return fmt.Errorf("chaos: mosquitto: %w", err)
	}
	m.exited = make(chan struct{})
	cmd, exited := m.cmd, m.exited
	go func() { cmd.Wait(); close(exited) }()
	// Ready when it accepts a connection; each failed dial backs off a little.
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		var d net.Dialer
		c, err := d.DialContext(dctx, "tcp", m.addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return errors.New("chaos: mosquitto exited at start")
		case <-dctx.Done():
			return fmt.Errorf("chaos: mosquitto not accepting on %s: %w", m.addr, err)
		case <-time.After(wait):
		}
	}
}

// restart stops the broker gracefully (it saves its sessions) and starts it again.
func (m *mosquitto) restart(ctx context.Context) error {
	m.stop()
	return m.start(ctx)
}

func (m *mosquitto) stop() {
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(15 * time.Second):
		m.cmd.Process.Kill()
		<-m.exited
	}
}
