package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"labelstation/drivers/printer"
)

// printerProc is the recording printer: a cmd/simprinter process of its own, with a lifetime
// label counter kept in a file (or none, with -no-counter), faults set over its HTTP control
// API, and every printed label followed on its stdout as it prints.
type printerProc struct {
	bin, counterFile string
	labelTime        time.Duration
	logw             io.Writer

	mu        sync.Mutex
	addr      string // printer address, kept across restarts so the station's config holds
	control   string
	noCounter bool
	cmd       *exec.Cmd
	exited    chan struct{}
	labels    []string
	drops     int // connections the printer dropped mid-label on request
	// base and counter0 are len(labels) and the printer's counter when this process started:
	// every label it counts since is a line on its stdout.
	base     int
	counter0 int64
	changed  chan struct{}
}

// startPrinter starts the printer on a free port; state is its counter file.
func startPrinter(ctx context.Context, bin, state string, labelTime time.Duration, noCounter bool, logw io.Writer) (*printerProc, error) {
	p := &printerProc{bin: bin, counterFile: state, labelTime: labelTime, logw: logw, addr: "127.0.0.1:0", changed: make(chan struct{})}
	return p, p.start(ctx, noCounter)
}

func (p *printerProc) url() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return "tcp://" + p.addr
}

var printerReady = "simprinter: printer tcp://"

// start runs the process and waits for its first line, which names its addresses.
func (p *printerProc) start(ctx context.Context, noCounter bool) error {
	p.mu.Lock()
	args := []string{"-listen", p.addr, "-control", "127.0.0.1:0", "-state", p.counterFile, "-log", "-", "-label-time", p.labelTime.String()}
	p.mu.Unlock()
	if noCounter {
		args = append(args, "-no-counter")
	}
	cmd := exec.Command(p.bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	errR, errW := io.Pipe()
	cmd.Stderr = errW
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("chaos: start simprinter: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); errW.Close(); close(exited) }()
	go p.watchErr(errR)
	ready := make(chan error, 1)
	go p.follow(out, ready)
	select {
	case err = <-ready:
	case <-ctx.Done():
		err = ctx.Err()
	case <-time.After(20 * time.Second):
		err = errors.New("chaos: simprinter did not say it listens within 20 s")
	}
	if err != nil {
		cmd.Process.Kill()
		<-exited
		return err
	}
	p.mu.Lock()
	p.cmd, p.exited, p.noCounter = cmd, exited, noCounter
	p.base = len(p.labels)
	p.mu.Unlock()
	st, err := p.state(ctx)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.counter0 = st.Counter
	p.mu.Unlock()
	return nil
}

// printerState is the control API's /state.
type printerState struct {
	Counter int64
	Status  printer.Status
}

func (p *printerProc) state(ctx context.Context) (printerState, error) {
	p.mu.Lock()
	ctl := p.control
	p.mu.Unlock()
	var st printerState
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ctl+"/state", nil)
	if err != nil {
		return st, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, fmt.Errorf("chaos: printer state: %w", err)
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// follow reads the ready line, then one JSON line per printed label.
func (p *printerProc) follow(r io.Reader, ready chan<- error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	first := true
	for sc.Scan() {
		line := sc.Text()
		if first {
			first = false
			rest, ok := strings.CutPrefix(line, printerReady)
			addr, ctl, ok2 := strings.Cut(rest, " control ")
			if !ok || !ok2 {
				ready <- fmt.Errorf("chaos: simprinter said %q", line)
				io.Copy(io.Discard, r)
				return
			}
			p.mu.Lock()
			p.addr, p.control = addr, ctl
			p.mu.Unlock()
			ready <- nil
			continue
		}
		var e struct{ Label string }
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			fmt.Fprintf(p.logw, "chaos: simprinter printed a line that is no label: %q\n", line)
			continue
		}
		p.mu.Lock()
		p.labels = append(p.labels, e.Label)
		p.notify()
		p.mu.Unlock()
	}
	if first {
		ready <- errors.New("chaos: simprinter exited at start")
	}
}

func (p *printerProc) watchErr(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fmt.Fprintf(p.logw, "simprinter %s\n", sc.Text())
		if strings.Contains(sc.Text(), "dropped mid-label") {
			p.mu.Lock()
			p.drops++
			p.notify()
			p.mu.Unlock()
		}
	}
}

// notify wakes waiters; p.mu is held.
func (p *printerProc) notify() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// snapshot returns the printed labels, the mid-label drops so far and a channel closed at the
// next change.
func (p *printerProc) snapshot() ([]string, int, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.labels...), p.drops, p.changed
}

// waitLabels waits until cond holds for the printed labels and drops, or ctx ends.
func (p *printerProc) waitLabels(ctx context.Context, cond func(labels []string, drops int) bool) bool {
	for {
		ls, d, ch := p.snapshot()
		if cond(ls, d) {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// fault posts a query to the control API (see cmd/simprinter).
func (p *printerProc) fault(ctx context.Context, query string) error {
	p.mu.Lock()
	ctl := p.control
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ctl+"/fault?"+query, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("chaos: printer fault %s: %w", query, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("chaos: printer fault %s: %s %s", query, resp.Status, b)
	}
	return nil
}

// drained waits until the printer has printed everything it received (no formats in its
// buffer) and the harness has read every label it counted, so the paper is final. It polls
// the control API, as nothing announces an empty buffer.
func (p *printerProc) drained(ctx context.Context) error {
	for {
		st, err := p.state(ctx)
		if err == nil && st.Status.FormatsInBuffer == 0 {
			p.mu.Lock()
			read := int64(len(p.labels) - p.base)
			counted := st.Counter - p.counter0
			p.mu.Unlock()
			if read >= counted {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("chaos: printer buffer not empty or labels not read: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// heal ends every fault and disarms the pending ones; labels held for paper print now.
func (p *printerProc) heal(ctx context.Context) error {
	return p.fault(ctx, "refuse=0&stall=0&paper_out=0&head_open=0&paused=0&drop_mid_label=0&paper_out_after=0")
}

// restart ends the process and starts it again on the same port, with or without a counter.
// The counter file keeps its lifetime count.
func (p *printerProc) restart(ctx context.Context, noCounter bool) error {
	p.stop()
	var err error
	for range 50 { // the port may linger a moment after the process is gone
		if err = p.start(ctx, noCounter); err == nil {
			return nil
		}
		sleepCtx(ctx, 100*time.Millisecond)
	}
	return err
}

func (p *printerProc) stop() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
}
