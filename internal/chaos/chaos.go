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

// Counts says how many iterations of each fault to run; each iteration is one job.
type Counts struct {
	Kills, MemRestarts, PersistRestarts, Cuts, Stalls, PrinterFaults int
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
	// Settle is how long one job may take to finish after its fault healed; 0 means 90 s.
	Settle time.Duration
	// Root is the module root; empty finds it with `go env GOMOD`.
	Root string
	// Log receives progress and the processes' logs; nil discards.
	Log io.Writer
}

// Fault names, in table order.
const (
	FaultKill          = "kill -9 stationd"
	FaultMemRestart    = "restart in-memory broker (devcloud)"
	FaultPersistRest   = "restart persistent broker (Mosquitto)"
	FaultCut           = "network cut (proxy closes)"
	FaultStall         = "silent stall (proxy forwards nothing)"
	FaultPrinterRefuse = "printer refuses connections"
	FaultPrinterStall  = "printer stops reading"
	FaultPrinterClose  = "printer closes mid-label"
	FaultPaperOut      = "paper out mid-job"
)

var faultOrder = []string{FaultKill, FaultMemRestart, FaultPersistRest, FaultCut, FaultStall, FaultPrinterRefuse, FaultPrinterStall, FaultPrinterClose, FaultPaperOut}

// Row is one line of the result table.
type Row struct {
	Fault                                  string
	Iterations, Expected, Once, Duplicated int
	Lost, Disagree, Unrecovered            int
	Note                                   string
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
	if opt.Log == nil {
		opt.Log = io.Discard
	}
	rep := &Report{Options: opt, Started: time.Now().UTC()}
	rows := map[string]*Row{}
	for _, f := range faultOrder {
		rows[f] = &Row{Fault: f}
	}
	defer func() {
		rep.Took = time.Since(rep.Started)
		for _, f := range faultOrder {
			if r := rows[f]; r.Iterations > 0 || r.Note != "" {
				rep.Rows = append(rep.Rows, *r)
			}
		}
	}()
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
	bin := filepath.Join(tmp, "stationd")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/stationd")
	build.Dir = opt.Root
	if out, err := build.CombinedOutput(); err != nil {
		return rep, fmt.Errorf("chaos: build stationd: %v\n%s", err, out)
	}
	sd, err := seed.Load(filepath.Join(opt.Root, "examples", "devcloud-seed.json"))
	if err != nil {
		return rep, err
	}
	rng := rand.New(rand.NewPCG(uint64(opt.Seed), 0x6c6162656c))

	var plan []string
	add := func(f string, n int) {
		for range n {
			plan = append(plan, f)
		}
	}
	add(FaultKill, opt.Kills)
	add(FaultMemRestart, opt.MemRestarts)
	add(FaultCut, opt.Cuts)
	add(FaultStall, opt.Stalls)
	printerFaults := []string{FaultPrinterRefuse, FaultPrinterStall, FaultPrinterClose, FaultPaperOut}
	for i := range opt.PrinterFaults {
		plan = append(plan, printerFaults[i%len(printerFaults)])
	}
	rng.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })

	job := 0
	if len(plan) > 0 {
		e, err := startEnv(ctx, opt, sd, bin, filepath.Join(tmp, "embedded"), "", "CHAOS-EMB")
		if err != nil {
			return rep, err
		}
		for _, f := range plan {
			if ctx.Err() != nil {
				break
			}
			job++
			e.iteration(ctx, rng, f, job, rows[f])
		}
		e.close()
	}
	if opt.PersistRestarts > 0 && ctx.Err() == nil {
		mbin, err := findMosquitto()
		if err != nil {
			rows[FaultPersistRest].Note = "skipped: " + err.Error()
			fmt.Fprintf(opt.Log, "chaos: %s\n", rows[FaultPersistRest].Note)
		} else {
			m, err := startMosquitto(ctx, mbin, filepath.Join(tmp, "mosquitto"), opt.Log)
			if err != nil {
				return rep, err
			}
			defer m.stop()
			e, err := startEnv(ctx, opt, sd, bin, filepath.Join(tmp, "persistent"), "tcp://"+m.addr, "CHAOS-MOSQ")
			if err != nil {
				return rep, err
			}
			e.mosq = m
			for range opt.PersistRestarts {
				if ctx.Err() != nil {
					break
				}
				job++
				e.iteration(ctx, rng, FaultPersistRest, job, rows[FaultPersistRest])
			}
			e.close()
		}
	}
	return rep, ctx.Err()
}
