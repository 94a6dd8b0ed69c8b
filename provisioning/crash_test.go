package provisioning

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"labelstation/devcloud/auth"
	"labelstation/internal/selfexec"
)

// Environment of the crashing-station child process.
const (
	envCrashDir   = "PROVISIONING_CRASH_STATE_DIR"
	envCrashToken = "PROVISIONING_CRASH_TOKEN_URL"
)

// killAfterTokenResponse is the child's transport: once a successful token
// response has been read in full — the server has rotated — the process
// dies by SIGKILL, before Token can persist anything.
type killAfterTokenResponse struct{}

func (killAfterTokenResponse) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusOK {
		io.ReadAll(resp.Body)
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
	return resp, err
}

// TestCrashingStationChild is the station process of
// TestCrashBetweenRotateAndPersist; it does nothing in a normal run.
func TestCrashingStationChild(t *testing.T) {
	dir := os.Getenv(envCrashDir)
	if dir == "" {
		t.Skip("child process of TestCrashBetweenRotateAndPersist")
	}
	p, err := New(Config{
		DeviceAuthURL: os.Getenv(envCrashToken), TokenURL: os.Getenv(envCrashToken), StateDir: dir,
		HTTPClient: &http.Client{Timeout: 10 * time.Second, Transport: killAfterTokenResponse{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	p.Invalidate()
	p.Token(context.Background())
	t.Fatal("survived the refresh")
}

func TestCrashBetweenRotateAndPersist(t *testing.T) {
	e := newEnv(t, auth.Options{})
	p := e.provisioner("serial-crash", nil)
	e.enroll(p)
	id := p.StationID()
	dir := filepath.Join(e.dir, "state")
	before, err := os.ReadFile(filepath.Join(dir, TokenFile))
	if err != nil {
		t.Fatal(err)
	}

	cmd := selfexec.Command("-test.run=^TestCrashingStationChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envCrashDir+"="+dir, envCrashToken+"="+e.srv.TokenURL())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by SIGKILL: %v\n%s", err, out.Bytes())
	}

	after, err := os.ReadFile(filepath.Join(dir, TokenFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("token file changed although the station died before persisting")
	}
	// The restarted station holds a refresh token the server has rotated
	// away: it must end up re-enrolled with the same identity.
	p2 := e.provisioner("serial-crash", nil)
	p2.Invalidate()
	if _, err := p2.Token(context.Background()); !errors.Is(err, ErrReenroll) {
		t.Fatalf("Token after the crash: %v, want ErrReenroll", err)
	}
	e.enroll(p2)
	if p2.StationID() != id {
		t.Fatalf("re-enrolled as %q, want %q", p2.StationID(), id)
	}
}

// recorder captures every token-like value the server hands out.
type recorder struct {
	mu      sync.Mutex
	secrets []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if json.Unmarshal(b, &m) == nil {
		r.mu.Lock()
		for _, k := range []string{"access_token", "refresh_token", "device_code"} {
			if s, ok := m[k].(string); ok {
				r.secrets = append(r.secrets, s)
			}
		}
		r.mu.Unlock()
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

func TestNoTokensInLogs(t *testing.T) {
	e := newEnv(t, auth.Options{})
	// The op logs through the default logger: capture that too.
	old := slog.Default()
	slog.SetDefault(e.log)
	t.Cleanup(func() { slog.SetDefault(old) })

	rec := &recorder{}
	p := e.provisioner("serial-logs", func(c *Config) {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second, Transport: rec}
	})
	e.srv.FailNext(1)
	n := 0
	if err := p.Enroll(enrollCtx(t), func(c Code) {
		n++
		if n == 1 {
			e.srv.SlowDownNext(1)
			e.deny(c.UserCode)
			return
		}
		e.approve(c.UserCode)
	}); err != nil {
		t.Fatal(err)
	}
	p.Invalidate()
	e.token(p)
	e.srv.DropNextRefresh(1)
	p.Invalidate()
	p.Token(context.Background())
	e.clock.Advance(backoffMax) // past the backoff after the lost response
	if _, err := p.Token(context.Background()); !errors.Is(err, ErrReenroll) {
		t.Fatalf("want ErrReenroll, got %v", err)
	}
	e.enroll(p)
	at := e.token(p)
	e.srv.Verify(context.Background(), "garbage")
	e.srv.Verify(context.Background(), at)

	if len(rec.secrets) < 6 {
		t.Fatalf("recorded only %d secrets; the run did not exercise the flows", len(rec.secrets))
	}
	e.assertNoSecrets(rec.secrets...)
}

func TestTokenFileNeverTorn(t *testing.T) {
	e := newEnv(t, auth.Options{})
	p := e.provisioner("s", nil)
	e.enroll(p)
	path := filepath.Join(e.dir, "state", TokenFile)
	stop := make(chan struct{})
	done := make(chan error)
	go func() {
		reads := 0
		for {
			select {
			case <-stop:
				if reads == 0 {
					done <- errors.New("reader never ran")
					return
				}
				done <- nil
				return
			default:
			}
			if _, err := loadTokens(path); err != nil {
				done <- err
				return
			}
			reads++
		}
	}()
	for range 50 {
		p.Invalidate()
		e.token(p)
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("a reader saw a torn or missing token file: %v", err)
	}
}
