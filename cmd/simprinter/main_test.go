package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"labelstation/drivers/printer"
	"labelstation/drivers/printer/simprinter"
)

type started struct {
	srv  *simprinter.Server
	ctl  string
	stop func() error
}

func start(t *testing.T, args ...string) started {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	ready := make(chan started, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, append([]string{"-listen", "127.0.0.1:0", "-control", "127.0.0.1:0"}, args...), io.Discard,
			func(s *simprinter.Server, ctl string) { ready <- started{srv: s, ctl: ctl} })
	}()
	select {
	case s := <-ready:
		s.stop = sync.OnceValue(func() error { cancel(); return <-errc })
		t.Cleanup(func() { s.stop() })
		return s
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("simprinter did not start")
	}
	return started{}
}

func post(t *testing.T, url string) (int, State) {
	t.Helper()
	resp, err := http.Post(url, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st State
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, st
}

func TestRecordingPrinterProcess(t *testing.T) {
	dir := t.TempDir()
	logPath, statePath := filepath.Join(dir, "labels.jsonl"), filepath.Join(dir, "counter")
	s := start(t, "-log", logPath, "-state", statePath)
	ctx := t.Context()
	tr, err := printer.Dial(ctx, s.srv.URL(), printer.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := printer.New(tr, printer.ZPL)
	for _, l := range []string{"^XA^FDS00001^FS^XZ", "^XA^FDS00002^FS^XZ"} {
		if err := p.Send(ctx, []byte(l)); err != nil {
			t.Fatal(err)
		}
	}
	if c, err := p.Counter(ctx); err != nil || c != 2 {
		t.Fatalf("counter %d, %v", c, err)
	}
	p.Close()

	// Faults over HTTP; a bad one changes nothing and says what is wrong.
	if code, st := post(t, s.ctl+"/fault?paper_out=1"); code != 200 || !st.Status.PaperOut || st.Counter != 2 {
		t.Fatalf("paper out: %d %+v", code, st)
	}
	if code, _ := post(t, s.ctl+"/fault?paper_out=0&refuse=maybe"); code != http.StatusBadRequest {
		t.Fatalf("bad fault accepted: %d", code)
	}
	if !s.srv.Status().PaperOut {
		t.Fatal("a rejected request changed the status")
	}
	if code, st := post(t, s.ctl+"/fault?paper_out=0&refuse=1"); code != 200 || st.Status.PaperOut {
		t.Fatalf("clear+refuse: %d %+v", code, st)
	}
	if _, err := printer.Dial(ctx, s.srv.URL(), printer.DialOptions{ConnectTimeout: time.Second}); err == nil {
		t.Fatal("dial succeeded while refusing")
	}
	if code, _ := post(t, s.ctl+"/fault?nonsense=1"); code != http.StatusBadRequest {
		t.Fatalf("unknown fault accepted: %d", code)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}

	// The log has both labels, with timestamps and counter values.
	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []LogEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e LogEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		got = append(got, e)
	}
	if len(got) != 2 || got[0].Counter != 1 || got[1].Counter != 2 || !strings.Contains(got[1].Label, "S00002") || got[0].TS.IsZero() {
		t.Fatalf("log %+v", got)
	}

	// The counter survives a restart of the printer.
	s2 := start(t, "-state", statePath)
	if c := s2.srv.Counter(); c != 2 {
		t.Fatalf("counter after restart %d, want 2", c)
	}
}

// A drop armed after K labels cuts the (K+1)th label however fast the labels come, even in one
// write; drop_mid_label=0 disarms it.
func TestDropAfterLabels(t *testing.T) {
	s := start(t)
	if code, _ := post(t, s.ctl+"/fault?drop_mid_label=5&drop_after=1"); code != http.StatusOK {
		t.Fatalf("arm: %d", code)
	}
	c, err := net.Dial("tcp", s.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("^XA^FDL1^FS^XZ^XA^FDL2^FS^XZ^XA^FDL3^FS^XZ")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after the cut label: %v, want EOF (connection closed)", err)
	}
	if got := s.srv.Labels(); len(got) != 1 || !strings.Contains(got[0], "L1") {
		t.Fatalf("printed %q, want only L1", got)
	}
	if code, _ := post(t, s.ctl+"/fault?drop_after=1"); code != http.StatusBadRequest {
		t.Fatalf("drop_after without drop_mid_label accepted: %d", code)
	}
	// Armed and disarmed again: nothing is cut.
	post(t, s.ctl+"/fault?drop_mid_label=5&drop_after=1")
	post(t, s.ctl+"/fault?drop_mid_label=0")
	c2, err := net.Dial("tcp", s.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := c2.Write([]byte("^XA^FDL4^FS^XZ^XA^FDL5^FS^XZ")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := s.srv.WaitLabels(ctx, 3); err != nil {
		t.Fatalf("after disarming: %v (printed %q)", err, s.srv.Labels())
	}
}
