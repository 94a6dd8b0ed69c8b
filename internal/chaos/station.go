package chaos

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stationProc is one stationd --sim process and what its log says about it. The harness reads
// the station's state from the log lines it writes anyway ("station: state ... to=idle"), so it
// waits on events and needs no hook inside the daemon.
type stationProc struct {
	bin  string
	args []string
	web  string
	logw io.Writer

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	state   string
	code    string // the pairing code shown
	gen     int    // process generation, +1 per start
	changed chan struct{}
	// reprinted sums the labels the station said it prints again (in flight at a crash, fate
	// unknown); reconciled counts crashes settled against the printer's label counter.
	reprinted, reconciled int
}

var (
	stateLine = regexp.MustCompile(`msg="station: state" from=(\S+) to=(\S+)`)
	reprintLn = regexp.MustCompile(`msg="station: labels in flight at the crash may have printed; printing them again" .*labels=(\d+)`)
	reconcLn  = regexp.MustCompile(`msg="station: reconciled labels in flight at the crash`)
	codeLine  = regexp.MustCompile(`user_code=(\S+)`)
)

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func (s *stationProc) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stdout = io.Discard
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("chaos: start stationd: %w", err)
	}
	s.cmd, s.exited, s.state = cmd, make(chan struct{}), "starting"
	s.gen++
	gen, exited := s.gen, s.exited
	go func() {
		cmd.Wait()
		pw.Close()
		close(exited)
	}()
	go s.watch(pr, gen)
	s.notify()
	return nil
}

// watch follows one process's log.
func (s *stationProc) watch(r io.Reader, gen int) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if s.logw != nil {
			fmt.Fprintf(s.logw, "stationd[%d] %s\n", gen, line)
		}
		if r := reprintLn.FindStringSubmatch(line); r != nil {
			n, _ := strconv.Atoi(r[1])
			s.mu.Lock()
			s.reprinted += n
			s.mu.Unlock()
		}
		if reconcLn.MatchString(line) {
			s.mu.Lock()
			s.reconciled++
			s.mu.Unlock()
		}
		m := stateLine.FindStringSubmatch(line)
		c := codeLine.FindStringSubmatch(line)
		if m == nil && (c == nil || !strings.Contains(line, "showing pairing code")) {
			continue
		}
		s.mu.Lock()
		if s.gen == gen {
			if m != nil {
				s.state = m[2]
			}
			if c != nil {
				s.code = c[1]
			}
			s.notify()
		}
		s.mu.Unlock()
	}
	io.Copy(io.Discard, r)
	s.mu.Lock()
	if s.gen == gen {
		s.state = "dead"
		s.notify()
	}
	s.mu.Unlock()
}

// notify wakes waiters; s.mu is held.
func (s *stationProc) notify() {
	if s.changed != nil {
		close(s.changed)
	}
	s.changed = make(chan struct{})
}

// snapshot returns the state, the pairing code and a channel closed at the next change.
func (s *stationProc) snapshot() (state, code string, ch <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.state, s.code, s.changed
}

// waitState waits until cond(state, code) holds or ctx ends.
func (s *stationProc) waitState(ctx context.Context, cond func(state, code string) bool) bool {
	for {
		st, code, ch := s.snapshot()
		if cond(st, code) {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// reprints returns the labels reported as printed again and the crashes reconciled so far.
func (s *stationProc) reprints() (reprinted, reconciled int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reprinted, s.reconciled
}

// kill9 kills the process with SIGKILL and waits for it to be gone.
func (s *stationProc) kill9() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// stop ends the process gracefully (SIGTERM), then for sure.
func (s *stationProc) stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		s.kill9()
	}
}

// tap presents a badge on the sim reader through the panel's web page.
func (s *stationProc) tap(ctx context.Context, uid string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+s.web+"/tap", strings.NewReader(url.Values{"uid": {uid}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("chaos: tap: %s", resp.Status)
	}
	return nil
}

// writeConfig writes the station's config file.
func writeConfig(path, stateDir, issuer, broker, printerURL, serial string) error {
	cfg := fmt.Sprintf(`{"v":1,
  "station":{"name":"chaos","state_dir":%q},
  "cloud":{"issuer":%q,"broker":%q,"client_id":"station","scopes":["printing","offline_access"]},
  "board":{"kind":"sim","serial":%q},
  "printer":{"url":%q,"lang":"zpl","dpi":203},
  "display":{"kind":"sim","width":128,"height":64},
  "badge":{"reader":"sim","encoding":"hex","byte_order":"msb","repeat_ms":1},
  "release":{"mode":"all","screen_seconds":1}}`, stateDir, issuer, broker, serial, printerURL)
	return os.WriteFile(path, []byte(cfg), 0o600)
}
