package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"labelstation/devcloud"
	"labelstation/devcloud/seed"
)

var (
	tapPageRE  = regexp.MustCompile(`panel and tap page at (\S+),`)
	userCodeRE = regexp.MustCompile(`user_code"?[=:]"?([A-Za-z0-9-]+)`)
)

// runStationd measures the station alone: the stationd binary at bin runs as its own process
// (--sim hardware, the printer listener of this harness as its printer, taps through its tap
// page) against devcloud in this process, and its VmRSS is sampled throughout the taps and the
// long job. Only the latency of the first label of each tap is reported besides: it includes
// the tap page's HTTP request.
func runStationd(bin string, taps, labels int, seedPath string) (err error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, err := os.MkdirTemp("", "bench-e2e-stationd-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Printf("bench-e2e: stationd %s as its own process, state in %s\n", bin, dir)
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

	cfgPath := filepath.Join(dir, "stationd.json")
	cfg := fmt.Sprintf(`{"v":1,"station":{"state_dir":%q},"cloud":{"issuer":%q,"broker":%q},
	  "board":{"kind":"sim","serial":"BENCH-STATIOND-%d"},"printer":{"url":"tcp://%s","lang":"zpl","dpi":203},
	  "display":{"kind":"sim"},"badge":{"reader":"sim","repeat_ms":1},"release":{"mode":"all","screen_seconds":1}}`,
		filepath.Join(dir, "state"), c.URL, c.BrokerURL, time.Now().UnixNano(), pl.ln.Addr())
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, bin, "--sim", "--config", cfgPath, "--web", "127.0.0.1:0", "--printer", "tcp://"+pl.ln.Addr().String())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	page, code := make(chan string, 1), make(chan string, 1)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); scanFor(stdout, tapPageRE, page) }()
	logTail := &tail{}
	go func() { defer wg.Done(); scanFor(io.TeeReader(stderr, logTail), userCodeRE, code) }()
	go func() { wg.Wait(); exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}()
	defer func() {
		if err != nil {
			fmt.Fprintf(os.Stderr, "stationd's last log lines:\n%s", logTail)
		}
	}()
	rss := startRSSOf(ctx, fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))

	web, err := await(ctx, page, exited, "the tap page's address on stdout")
	if err != nil {
		return err
	}
	uc, err := await(ctx, code, exited, "a pairing code in the log")
	if err != nil {
		return err
	}
	if err := c.Auth.Approve(uc, "alice"); err != nil {
		return err
	}
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	err = c.Jobs.WaitOnline(wctx)
	wcancel()
	if err != nil {
		return fmt.Errorf("stationd online: %w", err)
	}
	tok, err := c.UserToken(ctx, "alice")
	if err != nil {
		return err
	}
	rss.mark("enrolled")

	one := "name,street,zip,city,tracking\nAda Lovelace,12 Square,4JH,London,TRK0000000001\n"
	var first []time.Duration
	for i := range taps {
		j, err := submit(ctx, c, tok, fmt.Sprintf("tap %d", i), one)
		if err != nil {
			return err
		}
		pl.reset()
		t0, err := tapUntilPrinting(ctx, web, pl)
		if err != nil {
			return fmt.Errorf("tap %d: %w", i, err)
		}
		lab, err := pl.wait(ctx, time.Minute, 1)
		if err != nil {
			return fmt.Errorf("tap %d: %w", i, err)
		}
		if err := waitPrinted(ctx, c, j.ID); err != nil {
			return fmt.Errorf("tap %d: %w", i, err)
		}
		first = append(first, lab[0].first.Sub(t0))
	}
	if taps > 0 {
		fmt.Printf("\n%d taps, one label each, through the tap page: tap → first byte %s\n", taps, pcts(first))
		rss.mark("after taps")
	}
	if labels > 0 {
		var csv strings.Builder
		csv.WriteString("name,street,zip,city,tracking\n")
		for i := range labels {
			fmt.Fprintf(&csv, "Customer %d,%d Long Street,%05d,Springfield,TRK%010d\n", i, i%997, i%99999, i)
		}
		j, err := submit(ctx, c, tok, "long job", csv.String())
		if err != nil {
			return err
		}
		pl.reset()
		if _, err := tapUntilPrinting(ctx, web, pl); err != nil {
			return fmt.Errorf("long job: %w", err)
		}
		lab, err := pl.wait(ctx, 10*time.Minute, labels)
		if err != nil {
			return fmt.Errorf("long job: %w", err)
		}
		if err := waitPrinted(ctx, c, j.ID); err != nil {
			return fmt.Errorf("long job: %w", err)
		}
		fmt.Printf("\none job of %d labels: first byte → last byte %.0f labels/s\n", labels, float64(labels-1)/lab[labels-1].last.Sub(lab[0].first).Seconds())
		rss.mark("after long job")
	}
	fmt.Printf("load after: %s\n", loadavg())
	rss.report("memory of the stationd process alone")
	return nil
}

// tapUntilPrinting taps the badge on the tap page until the printer sees a first byte: a tap
// while the station still shows the previous job is answered "busy" and releases nothing.
func tapUntilPrinting(ctx context.Context, web string, pl *printerListener) (time.Time, error) {
	for try := 0; try < 20; try++ {
		t0 := time.Now()
		resp, err := http.PostForm(web+"/tap", url.Values{"uid": {aliceBadge}})
		if err != nil {
			return t0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return t0, fmt.Errorf("tap page: %s", resp.Status)
		}
		if _, err := pl.wait(ctx, 3*time.Second, 1); err == nil {
			return t0, nil
		}
	}
	return time.Time{}, errors.New("20 taps released nothing")
}

// scanFor sends the first submatch of re in r to found and drains the rest.
func scanFor(r io.Reader, re *regexp.Regexp, found chan<- string) {
	sc := bufio.NewScanner(r)
	sent := false
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil && !sent {
			found <- m[1]
			sent = true
		}
	}
}

func await(ctx context.Context, ch <-chan string, exited <-chan error, what string) (string, error) {
	select {
	case v := <-ch:
		return v, nil
	case err := <-exited:
		return "", fmt.Errorf("stationd exited before %s: %v", what, err)
	case <-time.After(time.Minute):
		return "", fmt.Errorf("no %s within a minute", what)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// tail keeps the last 4 KiB written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 4096 {
		t.buf = t.buf[len(t.buf)-4096:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
