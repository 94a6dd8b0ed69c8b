// Command chaos runs the reliability harness (internal/chaos) and writes its result table to
// docs/reliability.md: `make chaos` for the full run, flags for the counts.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"labelstation/internal/chaos"
)

func main() {
	var o chaos.Options
	var out string
	var verbose bool
	flag.Int64Var(&o.Seed, "seed", 1, "seed of every random choice (fault points, durations, order)")
	flag.IntVar(&o.Kills, "kills", 500, "kill -9 of stationd (half without a label counter)")
	flag.IntVar(&o.MemRestarts, "mem-restarts", 100, "restarts of devcloud's in-memory broker")
	flag.IntVar(&o.PersistRestarts, "persist-restarts", 100, "restarts of a persistent broker (Mosquitto, skipped when absent)")
	flag.IntVar(&o.Cuts, "cuts", 100, "network cuts between station and broker (connections reset)")
	flag.IntVar(&o.Downs, "downs", 100, "network outages between station and broker (dials refused)")
	flag.IntVar(&o.Stalls, "stalls", 100, "silent stalls between station and broker")
	flag.IntVar(&o.PrinterFaults, "printer-faults", 200, "printer faults (refuse, stall, close mid-label, paper out, in turn; half without a label counter)")
	flag.IntVar(&o.Labels, "labels", 3, "labels per job")
	flag.DurationVar(&o.MaxOutage, "max-outage", 12*time.Second, "longest cut, stall or printer fault")
	flag.DurationVar(&o.LabelTime, "label-time", 50*time.Millisecond, "how long the recording printer takes to print a label")
	flag.StringVar(&out, "out", "", "write the report to this Markdown file (docs/reliability.md)")
	flag.BoolVar(&verbose, "v", false, "print the processes' logs")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o.Log = progressOnly(os.Stderr)
	if verbose {
		o.Log = os.Stderr
	}
	load := &loadSampler{}
	load.sample()
	if out != "" {
		// The figures so far, after every iteration: a run that cannot finish leaves them.
		o.Progress = func(r *chaos.Report) {
			load.sample()
			if err := os.WriteFile(out, []byte(document(r, os.Args, "running", load)), 0o644); err != nil {
				fmt.Fprintln(os.Stderr, "chaos:", err)
			}
		}
	}
	rep, err := chaos.Run(ctx, o)
	load.sample()
	if rep != nil {
		fmt.Println(rep.Table())
	}
	interrupted := errors.Is(err, context.Canceled) && rep != nil && rep.Total().Iterations > 0
	if err != nil && !interrupted {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
	if out != "" {
		// An interrupted run is still written, marked as such: its table counts what ran.
		status := "finished"
		if interrupted {
			status = "interrupted"
		}
		if err := os.WriteFile(out, []byte(document(rep, os.Args, status, load)), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "chaos:", err)
			os.Exit(1)
		}
	}
	if interrupted {
		os.Exit(1)
	}
}

// progressOnly passes the harness's own lines and drops the processes' logs.
func progressOnly(w io.Writer) io.Writer {
	pr, pw := io.Pipe()
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "chaos: ") {
				fmt.Fprintln(w, sc.Text())
			}
		}
	}()
	return pw
}

// loadSampler keeps the machine's 1-minute load average as seen during the run.
type loadSampler struct {
	n             int
	sum, min, max float64
}

func (l *loadSampler) sample() {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return
	}
	var v float64
	if _, err := fmt.Sscan(string(b), &v); err != nil {
		return
	}
	if l.n == 0 || v < l.min {
		l.min = v
	}
	l.max = max(l.max, v)
	l.sum += v
	l.n++
}

func (l *loadSampler) String() string {
	if l.n == 0 {
		return "load average unknown"
	}
	return fmt.Sprintf("1-minute load average %.1f–%.1f (mean %.1f over %d samples)", l.min, l.max, l.sum/float64(l.n), l.n)
}

// document renders the report; status is "running" (partial figures, written after every
// iteration), "finished" or "interrupted".
func document(r *chaos.Report, args []string, status string, load *loadSampler) string {
	o := r.Options
	var b strings.Builder
	b.WriteString("# Reliability\n\n")
	b.WriteString("Measured by the chaos harness (`internal/chaos`, run with `make chaos`; a short seeded run is\n")
	b.WriteString("part of `make test`). devcloud runs in the harness process; `stationd --sim` is a separate\n")
	b.WriteString("process talking to the broker through a TCP proxy and printing ZPL over TCP to the recording\n")
	b.WriteString("printer `cmd/simprinter`, a process of its own with a lifetime label counter kept in a file\n")
	b.WriteString("(or, for the rows marked \"no counter\", started with `-no-counter`), faults set over its HTTP\n")
	b.WriteString("control API. Every job has a unique serial on each label; after each fault the harness waits\n")
	b.WriteString("(on log lines, printed labels and job status, with deadlines) until the job is finished and\n")
	b.WriteString("the station ready, then counts every serial on paper and compares with the cloud's job status.\n")
	b.WriteString("\"duplicated\" counts labels on paper more than once; \"not recovered\" counts iterations\n")
	b.WriteString("where the job or the station did not settle within the deadline without outside help;\n")
	b.WriteString("\"reconciled by counter\" counts restarts after which the station settled the labels in\n")
	b.WriteString("flight at the crash against the printer's label counter (no reprint needed);\n")
	b.WriteString("\"reprinted (station said)\" sums the labels the station logged as in flight at a crash and\n")
	b.WriteString("printed again because the printer has no counter to reconcile against; \"extra taps\" counts\n")
	b.WriteString("badge taps beyond the first a job needed (a tap the fault swallowed, answered by the\n")
	b.WriteString("\"No answer from the cloud\" screen; the harness taps again as a person would); \"longest\n")
	b.WriteString("recovery\" is the most time from the fault's end (outage over, process restarted) to the\n")
	b.WriteString("job finished in the cloud with the station ready for the next tap, extra taps included.\n\n")
	fmt.Fprintf(&b, "- command: `%s`\n", strings.Join(append([]string{"go run ./cmd/chaos"}, args[1:]...), " "))
	fmt.Fprintf(&b, "- seed: %d; labels per job: %d; longest outage: %v; printer's time per label: %v\n", o.Seed, o.Labels, o.MaxOutage, o.LabelTime)
	switch status {
	case "running":
		b.WriteString("- **partial, run still going when this was written**: the table counts the iterations done so far, not the counts asked for\n")
	case "interrupted":
		b.WriteString("- **interrupted**: the table counts the iterations that ran, not the counts asked for\n")
	}
	fmt.Fprintf(&b, "- counts asked for: %d kill -9 (half with a printer without counter), %d in-memory broker restarts, %d persistent broker restarts, %d cuts, %d outages with dials refused, %d stalls, %d printer faults (half without counter)\n",
		o.Kills, o.MemRestarts, o.PersistRestarts, o.Cuts, o.Downs, o.Stalls, o.PrinterFaults)
	fmt.Fprintf(&b, "- started: %s; ran for %v\n", r.Started.Format(time.RFC3339), r.Took.Round(time.Second))
	fmt.Fprintf(&b, "- machine: %s/%s, %d CPUs%s, %s; %s\n\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpuModel(), runtime.Version(), load)
	b.WriteString(r.Table())
	return b.String()
}

func cpuModel() string {
	f, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(f), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return " (" + strings.TrimSpace(v) + ")"
		}
	}
	return ""
}
