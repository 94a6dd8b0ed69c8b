// Package chaos is the reliability harness: devcloud, a stationd --sim process and a recording
// printer, with faults injected at seeded random points — kill -9 of the daemon, broker restarts
// (devcloud's in-memory broker and a persistent Mosquitto), network cuts and silent stalls
// through a TCP proxy, and printer faults — while jobs with a unique serial on every label are
// printed. It counts every label on paper against what was submitted and what the cloud says.
package chaos

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"labelstation/devcloud/seed"
)

// Counts says how many iterations of each fault to run; each iteration is one job. Kills and
// printer faults are split between a printer with a label counter and one without (the odd one
// goes to the printer with a counter); the other faults run against the printer with a counter.
type Counts struct {
	Kills, MemRestarts, PersistRestarts, Cuts, Downs, Stalls, PrinterFaults int
}

// Options configure Run.
type Options struct {
	Seed int64
	Counts
	// Labels per job; 0 means 3.
	Labels int
	// MaxOutage bounds a cut, a stall or a printer fault; 0 means 12 s, past the keep-alive a
	// station needs to notice a silently dead link.
	MaxOutage time.Duration
	// LabelTime is how long the printer takes to print one label (counted when it starts);
	// 0 means 50 ms. Real printers take longer; this is enough for crashes to land mid-label.
	LabelTime time.Duration
	// Settle is how long one job may take to finish after its fault healed; 0 means 90 s.
	Settle time.Duration
	// Root is the module root; empty finds it with `go env GOMOD`.
	Root string
	// Log receives progress and the processes' logs; nil discards.
	Log io.Writer
	// Progress, if set, receives the report so far after every iteration, so a run that cannot
	// finish still leaves its figures.
	Progress func(*Report)
}

// Fault names, in table order.
const (
	FaultKill          = "kill -9 stationd"
	FaultMemRestart    = "restart in-memory broker (devcloud)"
	FaultPersistRest   = "restart persistent broker (Mosquitto)"
	FaultCut           = "network cut (proxy closes)"
	FaultDown          = "network down (dials refused)"
	FaultStall         = "silent stall (proxy forwards nothing)"
	FaultPrinterRefuse = "printer refuses connections"
	FaultPrinterStall  = "printer stops reading"
	FaultPrinterClose  = "printer closes mid-label"
	FaultPaperOut      = "paper out mid-job"
)

var faultOrder = []string{FaultKill, FaultMemRestart, FaultPersistRest, FaultCut, FaultDown, FaultStall, FaultPrinterRefuse, FaultPrinterStall, FaultPrinterClose, FaultPaperOut}

// Printer kinds: with a label counter the station reconciles a label in flight at a crash;
// without one it prints that label again and reports it.
const (
	WithCounter    = "counter"
	WithoutCounter = "no counter"
)

// Row is one line of the result table.
type Row struct {
	Fault, Printer                         string
	Iterations, Expected, Once, Duplicated int
	Lost, Disagree, Unrecovered            int
	// Reprinted is what the station reported printing again (in-flight labels after a crash).
	Reprinted int
	// Reconciled counts restarts that settled labels in flight against the printer's counter.
	Reconciled int
	// Retaps counts badge taps beyond the first that a job needed: taps lost to the fault.
	Retaps int
	// MaxDupPerIteration is the most duplicated labels in one iteration.
	MaxDupPerIteration int
	Seconds            float64 // wall time of the iterations
	// MaxRecovery is the longest time from the fault's end to the job finished in the cloud
	// with the station ready, in seconds.
	MaxRecovery float64
	Note        string
}

// Report is the outcome of a run.
type Report struct {
	Options Options
	Rows    []Row
	Started time.Time
	Took    time.Duration
}

// Total sums the rows.
func (r *Report) Total() Row {
	t := Row{Fault: "total"}
	for _, x := range r.Rows {
		t.Iterations += x.Iterations
		t.Expected += x.Expected
		t.Once += x.Once
		t.Duplicated += x.Duplicated
		t.Lost += x.Lost
		t.Disagree += x.Disagree
		t.Unrecovered += x.Unrecovered
		t.Reprinted += x.Reprinted
		t.Retaps += x.Retaps
		t.Reconciled += x.Reconciled
		t.MaxDupPerIteration = max(t.MaxDupPerIteration, x.MaxDupPerIteration)
		t.Seconds += x.Seconds
		t.MaxRecovery = max(t.MaxRecovery, x.MaxRecovery)
	}
	return t
}

const aliceBadge = "04A1B2C3D4E580" // examples/devcloud-seed.json

// Run runs the harness. An error means the harness itself could not run (build, ports); faults
// the station does not survive are counted in the report, not returned.
func Run(ctx context.Context, opt Options) (*Report, error) {
	if opt.Labels <= 0 {
		opt.Labels = 3
	}
	if opt.MaxOutage <= 0 {
		opt.MaxOutage = 12 * time.Second
	}
	if opt.Settle <= 0 {
		opt.Settle = 90 * time.Second
	}
	if opt.LabelTime <= 0 {
		opt.LabelTime = 50 * time.Millisecond
	}
	if opt.Log == nil {
		opt.Log = io.Discard
	}
	rep := &Report{Options: opt, Started: time.Now().UTC()}
	rows := map[string]*Row{}
	row := func(fault, printer string) *Row {
		k := fault + "|" + printer
		if rows[k] == nil {
			rows[k] = &Row{Fault: fault, Printer: printer}
		}
		return rows[k]
	}
	snapshot := func() {
		rep.Took = time.Since(rep.Started)
		rep.Rows = rep.Rows[:0]
		for _, pr := range []string{WithCounter, WithoutCounter} {
			for _, f := range faultOrder {
				if r := rows[f+"|"+pr]; r != nil && (r.Iterations > 0 || r.Note != "") {
					rep.Rows = append(rep.Rows, *r)
				}
			}
		}
	}
	progress := func() {
		snapshot()
		if opt.Progress != nil {
			opt.Progress(rep)
		}
	}
	defer snapshot()
	if opt.Root == "" {
		out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
		if err != nil || strings.TrimSpace(string(out)) == "" {
			return rep, fmt.Errorf("chaos: cannot find the module root (go env GOMOD): %v", err)
		}
		opt.Root = filepath.Dir(strings.TrimSpace(string(out)))
	}
	tmp, err := os.MkdirTemp("", "chaos-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(tmp)
	// Mosquitto started as root drops to its own user, which must reach its directory in here.
	if err := os.Chmod(tmp, 0o711); err != nil {
		return rep, err
	}
	bins := map[string]string{}
	for _, name := range []string{"stationd", "simprinter"} {
		bins[name] = filepath.Join(tmp, name)
		build := exec.CommandContext(ctx, "go", "build", "-o", bins[name], "./cmd/"+name)
		build.Dir = opt.Root
		if out, err := build.CombinedOutput(); err != nil {
			return rep, fmt.Errorf("chaos: build %s: %v\n%s", name, err, out)
		}
	}
	sd, err := seed.Load(filepath.Join(opt.Root, "examples", "devcloud-seed.json"))
	if err != nil {
		return rep, err
	}
	rng := rand.New(rand.NewPCG(uint64(opt.Seed), 0x6c6162656c))

	// Printer faults take turns; the second printer goes on where the first one stopped.
	shuffled := func(groups map[string]int, printerFaults, turn int) []string {
		var plan []string
		for _, f := range faultOrder {
			for range groups[f] {
				plan = append(plan, f)
			}
		}
		pf := []string{FaultPrinterRefuse, FaultPrinterStall, FaultPrinterClose, FaultPaperOut}
		for i := range printerFaults {
			plan = append(plan, pf[(turn+i)%len(pf)])
		}
		rng.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })
		return plan
	}
	killsNo, pfNo := opt.Kills/2, opt.PrinterFaults/2
	withCounter := shuffled(map[string]int{FaultKill: opt.Kills - killsNo, FaultMemRestart: opt.MemRestarts,
		FaultCut: opt.Cuts, FaultDown: opt.Downs, FaultStall: opt.Stalls}, opt.PrinterFaults-pfNo, 0)
	withoutCounter := shuffled(map[string]int{FaultKill: killsNo}, pfNo, opt.PrinterFaults-pfNo)

	job := 0
	runPlan := func(e *env, plan []string, printer string) {
		for _, f := range plan {
			if ctx.Err() != nil {
				return
			}
			job++
			r := row(f, printer)
			t0 := time.Now()
			e.iteration(ctx, rng, f, job, r)
			r.Seconds += time.Since(t0).Seconds()
			progress()
		}
	}
	if len(withCounter)+len(withoutCounter) > 0 {
		e, err := startEnv(ctx, opt, sd, bins, filepath.Join(tmp, "embedded"), "", "CHAOS-EMB", len(withCounter) == 0)
		if err != nil {
			return rep, err
		}
		runPlan(e, withCounter, WithCounter)
		if len(withoutCounter) > 0 && ctx.Err() == nil {
			if !e.printer.noCounter {
				if err := e.printer.restart(ctx, true); err != nil {
					e.close()
					return rep, err
				}
			}
			runPlan(e, withoutCounter, WithoutCounter)
		}
		e.close()
	}
	if opt.PersistRestarts > 0 && ctx.Err() == nil {
		mbin, err := findMosquitto()
		if err != nil {
			row(FaultPersistRest, WithCounter).Note = "skipped: " + err.Error()
			fmt.Fprintf(opt.Log, "chaos: %s\n", err)
		} else {
			m, err := startMosquitto(ctx, mbin, filepath.Join(tmp, "mosquitto"), opt.Log)
			if err != nil {
				return rep, err
			}
			defer m.stop()
			e, err := startEnv(ctx, opt, sd, bins, filepath.Join(tmp, "persistent"), "tcp://"+m.addr, "CHAOS-MOSQ", false)
			if err != nil {
				return rep, err
			}
			e.mosq = m
			var plan []string
			for range opt.PersistRestarts {
				plan = append(plan, FaultPersistRest)
			}
			runPlan(e, plan, WithCounter)
			e.close()
		}
	}
	return rep, ctx.Err()
}
