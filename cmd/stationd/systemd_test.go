package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"labelstation/internal/statusapi"
	"labelstation/station"
)

// buildStationd compiles this command into dir, as make dist would (without the stamp).
func buildStationd(t *testing.T, dir string) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH to build the stationd binary")
	}
	bin := filepath.Join(dir, "stationd")
	cmd := exec.Command(gobin, "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// notifySocket is systemd's end of sd_notify: a unixgram socket whose datagrams arrive as
// lines on a channel.
func notifySocket(t *testing.T, path string) <-chan string {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			for _, l := range strings.Split(strings.TrimSpace(string(buf[:n])), "\n") {
				lines <- l
			}
		}
	}()
	return lines
}

// waitLine returns the first line after the ones already read that starts with prefix.
func waitLine(t *testing.T, lines <-chan string, prefix string) string {
	t.Helper()
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("notify socket closed before %q", prefix)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-deadline.C:
			t.Fatalf("no %q from stationd within 60 s", prefix)
		}
	}
}

// TestSystemdNotifyReadyWatchdogStop runs the real stationd binary as systemd would run the
// packaged unit (Type=notify, WatchdogSec=): READY=1 comes with the pairing code, the state
// loop pings the watchdog, the pings stop when the loop is wedged, and SIGTERM says STOPPING=1
// and exits cleanly.
func TestSystemdNotifyReadyWatchdogStop(t *testing.T) {
	dir := t.TempDir()
	bin := buildStationd(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := startCloud(t, ctx, cloudOpts{}, io.Discard)

	cfgPath := filepath.Join(dir, "stationd.json")
	cfg := fmt.Sprintf(`{"v":1,"station":{"state_dir":%q},"cloud":{"issuer":%q,"broker":%q},
	  "board":{"kind":"sim","serial":"SYSTEMD-0001"},"printer":{"url":"tcp://127.0.0.1:9"},"badge":{"repeat_ms":1}}`,
		filepath.Join(dir, "state"), c.URL, c.BrokerURL)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	lines := notifySocket(t, filepath.Join(dir, "notify.sock"))
	wedge := filepath.Join(dir, "wedge")
	statusSock := filepath.Join(dir, "status.sock")

	cmd := exec.Command(bin, "--sim", "--config", cfgPath, "--web", "127.0.0.1:0", "--status-socket", statusSock)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+filepath.Join(dir, "notify.sock"),
		"WATCHDOG_USEC=1000000", wedgeEnv+"="+wedge)
	logs, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var logBuf strings.Builder
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(logs)
		for sc.Scan() {
			logBuf.WriteString(sc.Text() + "\n")
		}
	}()
	exited := make(chan struct{})
	var exitErr error
	go func() { <-logDone; exitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("stationd log:\n%s", logBuf.String())
		}
	})

	// READY=1 arrives with the pairing code in the same datagram, not before.
	status := waitLine(t, lines, "STATUS=enrolling: pairing code ")
	ready := waitLine(t, lines, "")
	if ready != "READY=1" {
		t.Fatalf("after %q got %q, want READY=1 with the pairing code", status, ready)
	}
	code, _, _ := strings.Cut(strings.TrimPrefix(status, "STATUS=enrolling: pairing code "), " ")
	if err := c.Auth.Approve(code, "alice"); err != nil {
		t.Fatalf("approve %q: %v", code, err)
	}
	waitLine(t, lines, "STATUS="+station.Idle.String()+", broker online")
	for range 3 {
		waitLine(t, lines, "WATCHDOG=1")
	}

	// The status socket answers what an admin asks on a support call.
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	st, err := statusapi.Get(sctx, statusSock)
	scancel()
	if err != nil {
		t.Fatal(err)
	}
	if st.State != "idle" || !st.Station.Enrolled || st.Station.ID == "" || !st.Broker.Online || st.Station.Serial != "SYSTEMD-0001" ||
		st.Journal.Bytes == 0 || st.Version.Version == "" || !st.Printer.OK || st.Printer.Error != "" {
		t.Fatalf("status = %+v; want idle, enrolled, online, journal on disk, the sim printer ok", st)
	}

	// Wedge the state loop: the pings must stop (a quiet spell of three watchdog periods).
	if err := os.WriteFile(wedge, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	quiet := time.NewTimer(3 * time.Second)
	for stopped := false; !stopped; {
		select {
		case l := <-lines:
			if l == "WATCHDOG=1" {
				quiet.Reset(3 * time.Second)
			}
		case <-quiet.C:
			stopped = true
		case <-deadline.C:
			t.Fatal("watchdog pings went on although the state loop is wedged")
		}
	}

	// A stop: STOPPING=1, then a clean exit.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitLine(t, lines, "STOPPING=1")
	select {
	case <-exited:
		if exitErr != nil {
			t.Fatalf("stationd after SIGTERM: %v", exitErr)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("stationd did not exit within 60 s of SIGTERM")
	}
	if _, err := os.Stat(statusSock); !os.IsNotExist(err) {
		t.Fatalf("status socket left behind: %v", err)
	}
}
