// Command simprinter runs the simulated ZPL printer (drivers/printer/simprinter) as its own
// process, as a recording printer for the chaos harness and for demos: it prints on raw TCP,
// logs every printed label with a timestamp to a file, keeps its label counter across restarts,
// and takes faults over a small HTTP control API.
//
//	simprinter -listen 127.0.0.1:9100 -control 127.0.0.1:9101 -log labels.jsonl -state counter.txt
//
// Once listening it prints one line to stdout:
//
//	simprinter: printer tcp://127.0.0.1:9100 control http://127.0.0.1:9101
//
// Control API (all replies are the state as JSON):
//
//	GET  /state                                counter, labels printed, status
//	POST /fault?refuse=1|0                     close / reopen the printer port
//	POST /fault?stall=1|0                      stop / resume reading
//	POST /fault?drop_mid_label=N               cut the next label after N bytes and close (0 disarms)
//	POST /fault?drop_mid_label=N&drop_after=K  the same, on the label after K more received ones
//	POST /fault?drop_connections=1             close every open connection
//	POST /fault?paper_out_after=K              paper runs out after K more labels (0 disarms)
//	POST /fault?paper_out=1|0&head_open=1|0&paused=1|0   set the ~HS status (0s clear it)
//
// With -log - the label lines go to stdout after the first line, so a harness can follow the
// printer as it prints; connection errors and injected faults are logged to stderr.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"labelstation/drivers/printer"
	"labelstation/drivers/printer/simprinter"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, nil); err != nil {
		fmt.Fprintln(os.Stderr, "simprinter:", err)
		os.Exit(1)
	}
}

// LogEntry is one line of the -log file: a printed label.
type LogEntry struct {
	TS      time.Time `json:"ts"`
	Counter int64     `json:"counter"`
	Label   string    `json:"label"`
}

// State is the control API's reply.
type State struct {
	Counter int64          `json:"counter"`
	Labels  int            `json:"labels"`
	Status  printer.Status `json:"status"`
}

// run runs the printer until ctx ends; ready, if set, receives the server once it listens.
func run(ctx context.Context, args []string, stdout io.Writer, ready func(*simprinter.Server, string)) error {
	fs := flag.NewFlagSet("simprinter", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9100", "printer address (raw TCP, port 9100 style)")
	control := fs.String("control", "127.0.0.1:0", "HTTP control API address")
	logPath := fs.String("log", "", "append every printed label as a JSON line {ts, counter, label} to this file (- for stdout)")
	statePath := fs.String("state", "", "keep the label counter in this file across restarts")
	noCounter := fs.Bool("no-counter", false, "answer the label counter query with \"?\" (a printer without one)")
	dir := fs.String("png", "", "also render every label as a PNG into this directory")
	labelTime := fs.Duration("label-time", 0, "how long printing one label takes; labels received meanwhile wait in the buffer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var start int64
	if *statePath != "" {
		b, err := os.ReadFile(*statePath)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return err
		default:
			if start, err = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err != nil {
				return fmt.Errorf("-state %s: %w", *statePath, err)
			}
		}
	}
	var (
		logMu sync.Mutex
		logW  *bufio.Writer
		logF  *os.File
	)
	switch *logPath {
	case "":
	case "-":
		logW = bufio.NewWriter(stdout)
	default:
		f, err := os.OpenFile(*logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		logF, logW = f, bufio.NewWriter(f)
	}
	var runErr error
	var errOnce sync.Once
	fail := func(err error) { errOnce.Do(func() { runErr = err }) }
	onLabel := func(counter int64, zpl string) {
		if logW != nil {
			line, _ := json.Marshal(LogEntry{TS: time.Now().UTC(), Counter: counter, Label: zpl})
			logMu.Lock()
			logW.Write(append(line, '\n'))
			// Flushed per label: the harness reads the log while the printer runs.
			if err := logW.Flush(); err != nil {
				fail(fmt.Errorf("-log: %w", err))
			}
			logMu.Unlock()
		}
		if *statePath != "" {
			if err := writeCounter(*statePath, counter); err != nil {
				fail(fmt.Errorf("-state: %w", err))
			}
		}
	}
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	srv, err := simprinter.Listen(*listen, simprinter.Options{Counter: start, NoCounter: *noCounter, Dir: *dir, OnLabel: onLabel, Logf: logf, PrintTime: *labelTime})
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", *control)
	if err != nil {
		return fmt.Errorf("-control: %w", err)
	}
	hs := &http.Server{Handler: controlHandler(srv), ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()
	ctlURL := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "simprinter: printer %s control %s\n", srv.URL(), ctlURL)
	if ready != nil {
		ready(srv, ctlURL)
	}
	<-ctx.Done()
	if logF != nil {
		logMu.Lock()
		logW.Flush()
		logMu.Unlock()
	}
	return runErr
}

// writeCounter replaces the state file atomically (write, fsync, rename), so a kill leaves the
// old or the new counter, never a torn one.
func writeCounter(path string, n int64) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".counter-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := fmt.Fprintf(tmp, "%d\n", n); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func controlHandler(srv *simprinter.Server) http.Handler {
	mux := http.NewServeMux()
	state := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(State{Counter: srv.Counter(), Labels: len(srv.Labels()), Status: srv.Status()})
	}
	mux.HandleFunc("GET /state", func(w http.ResponseWriter, r *http.Request) { state(w) })
	mux.HandleFunc("POST /fault", func(w http.ResponseWriter, r *http.Request) {
		if err := applyFaults(srv, r); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		state(w)
	})
	return mux
}

// applyFaults applies the query's fault knobs, all or none: an unknown or malformed one is an
// error naming it.
func applyFaults(srv *simprinter.Server, r *http.Request) error {
	q := r.URL.Query()
	bools := map[string]*bool{}
	counts := map[string]int{}
	for k, v := range q {
		switch k {
		case "refuse", "stall", "drop_connections", "paper_out", "head_open", "paused":
			var b bool
			switch v[0] {
			case "1", "true":
				b = true
			case "0", "false":
			default:
				return fmt.Errorf("fault %s=%q: want 1 or 0", k, v[0])
			}
			bools[k] = &b
		case "drop_mid_label", "paper_out_after", "drop_after":
			n, err := strconv.Atoi(v[0])
			if err != nil || n < 0 {
				return fmt.Errorf("fault %s=%q: want a number, 0 or more", k, v[0])
			}
			counts[k] = n
		default:
			return fmt.Errorf("unknown fault %q", k)
		}
	}
	if v := bools["refuse"]; v != nil {
		if err := srv.Refuse(*v); err != nil {
			return err
		}
	}
	if v := bools["stall"]; v != nil {
		srv.Stall(*v)
	}
	if v := bools["drop_connections"]; v != nil && *v {
		srv.DropConnections()
	}
	if _, ok := counts["drop_after"]; ok && counts["drop_mid_label"] == 0 {
		return errors.New("fault drop_after: needs drop_mid_label=N (bytes, more than 0)")
	}
	if n, ok := counts["drop_mid_label"]; ok {
		srv.DropMidLabelAfter(counts["drop_after"], n)
	}
	if n, ok := counts["paper_out_after"]; ok {
		srv.PaperOutAfter(n)
	}
	st := srv.Status()
	st.FormatsInBuffer = 0 // derived from the buffer, not set
	set := false
	for name, dst := range map[string]*bool{"paper_out": &st.PaperOut, "head_open": &st.HeadOpen, "paused": &st.Paused} {
		if v := bools[name]; v != nil {
			*dst, set = *v, true
		}
	}
	if set {
		srv.SetStatus(st)
	}
	return nil
}
