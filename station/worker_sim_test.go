package station

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"labelstation/drivers/printer"
	"labelstation/drivers/printer/simprinter"
	"labelstation/protocol"
	"labelstation/station/journal"
)

// serialJob is a job of n shipping labels, each carrying a unique serial (S00001…) so the
// printed labels can be checked for loss and duplicates.
func serialJob(t testing.TB, id string, n int) protocol.Job {
	t.Helper()
	layout, err := os.ReadFile(filepath.Join("..", "examples", "layouts", "shipping.json"))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("name,street,zip,city,tracking\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "Person %d,%d Road,%d,Town,%s\n", i, i, i, serial(i))
	}
	return protocol.Job{V: 1, ID: id, Title: id, Layout: layout, Format: "csv", Labels: n, Data: []byte(b.String())}
}

func serial(i int) string { return fmt.Sprintf("S%05d", i) }

var serialRE = regexp.MustCompile(`S\d{5}`)

// paperCheck counts each serial on paper: lost and duplicated labels of 1..n.
func paperCheck(labels []string, n int) (lost, dup []int) {
	seen := map[string]int{}
	for _, l := range labels {
		if s := serialRE.FindString(l); s != "" {
			seen[s]++
		}
	}
	for i := 1; i <= n; i++ {
		switch seen[serial(i)] {
		case 0:
			lost = append(lost, i)
		case 1:
		default:
			dup = append(dup, i)
		}
	}
	return lost, dup
}

// simStation is a worker wired to a simulated printer over TCP through the daemon's redialler.
func simStation(t *testing.T, sp *simprinter.Server, j *journal.Journal) *Station {
	t.Helper()
	r := printer.NewRedialer(sp.URL(), printer.ZPL)
	r.MinBackoff, r.MaxBackoff = time.Millisecond, 10*time.Millisecond
	t.Cleanup(func() { r.Close() })
	s, _ := workerStation(t, r)
	s.opt.Journal = j
	go func() {
		for range s.events {
		}
	}()
	return s
}

func openJournal(t *testing.T) *journal.Journal {
	t.Helper()
	j, err := journal.Open(filepath.Join(t.TempDir(), "journal.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

// The printer drops the connection part-way through a label (seeded point and byte count, 50
// tries, with and without a label counter): the cut label is sent again after reconnecting and
// every label is on paper exactly once.
func TestWorkerMidLabelDropResends(t *testing.T) {
	for _, noCounter := range []bool{false, true} {
		t.Run(fmt.Sprintf("noCounter=%v", noCounter), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(9, 1))
			const tries, n = 50, 8
			lost, dup := 0, 0
			for try := range tries {
				at := 1 + rng.IntN(n-1) // labels printed before the drop
				cut := 1 + rng.IntN(200)
				var sp *simprinter.Server
				var err error
				sp, err = simprinter.Listen("127.0.0.1:0", simprinter.Options{NoCounter: noCounter, OnLabel: func(c int64, _ string) {
					if c == int64(at) {
						sp.DropMidLabel(cut)
					}
				}})
				if err != nil {
					t.Fatal(err)
				}
				j := openJournal(t)
				s := simStation(t, sp, j)
				e, _, err := j.Claim(serialJob(t, fmt.Sprintf("job-%d", try), n))
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				if err := s.printJob(ctx, e); err != nil {
					t.Fatalf("try %d (drop after %d labels, %d bytes in): %v", try, at, cut, err)
				}
				cancel()
				l, d := paperCheck(sp.Labels(), n)
				lost += len(l)
				dup += len(d)
				if len(l)+len(d) > 0 {
					t.Errorf("try %d (drop after %d labels, %d bytes in): lost %v, duplicated %v", try, at, cut, l, d)
				}
				if got, _ := j.Get(e.Job.ID); got.Printed != n {
					t.Errorf("try %d: journal says %d printed", try, got.Printed)
				}
				sp.Close()
			}
			t.Logf("%d tries: %d lost, %d duplicated", tries, lost, dup)
		})
	}
}

// A crash (the station stops) after the printer took a label but before the journal recorded
// it. With a label counter the in-flight window is reconciled against it: nothing lost, nothing
// printed twice, nothing reported as reprinted. Without one, the in-flight label is printed
// again (at most one) and reported as reprinted.
func TestWorkerCrashReconcilesInFlight(t *testing.T) {
	for _, noCounter := range []bool{false, true} {
		t.Run(fmt.Sprintf("noCounter=%v", noCounter), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, 3))
			const n = 10
			reprinted, duplicated := 0, 0
			defer func() { t.Logf("10 crashes: %d labels on paper twice, %d reported reprinted", duplicated, reprinted) }()
			for try := range 10 {
				at := int64(1 + rng.IntN(n-1))
				crashed := make(chan struct{})
				ctx, crash := context.WithCancel(t.Context())
				sp, err := simprinter.Listen("127.0.0.1:0", simprinter.Options{NoCounter: noCounter, Counter: 5000, OnLabel: func(c int64, _ string) {
					if c == 5000+at {
						crash()
						close(crashed)
					}
				}})
				if err != nil {
					t.Fatal(err)
				}
				j := openJournal(t)
				e, _, err := j.Claim(serialJob(t, "job", n))
				if err != nil {
					t.Fatal(err)
				}
				s := simStation(t, sp, j)
				if err := s.printJob(ctx, e); !errors.Is(err, context.Canceled) {
					t.Fatalf("try %d: the crashed run returned %v", try, err)
				}
				<-crashed

				// The restarted station: new connection, same journal, same printer.
				s2 := simStation(t, sp, j)
				e, err = j.Get("job")
				if err != nil {
					t.Fatal(err)
				}
				if err := s2.printJob(t.Context(), e); err != nil {
					t.Fatalf("try %d: after restart: %v", try, err)
				}
				lost, dup := paperCheck(sp.Labels(), n)
				e, _ = j.Get("job")
				if len(lost) > 0 {
					t.Errorf("try %d (crash at label %d): lost %v", try, at, lost)
				}
				reprinted += e.Reprinted
				duplicated += len(dup)
				if noCounter {
					if len(dup) > 1 || e.Reprinted < len(dup) || e.Reprinted > 1 {
						t.Errorf("try %d (crash at label %d): duplicated %v, reported reprinted %d", try, at, dup, e.Reprinted)
					}
				} else if len(dup) > 0 || e.Reprinted != 0 {
					t.Errorf("try %d (crash at label %d): duplicated %v, reprinted %d; want none", try, at, dup, e.Reprinted)
				}
				if e.Printed != n {
					t.Errorf("try %d: journal says %d printed", try, e.Printed)
				}
				if _, ok, _ := j.InFlight("job"); ok {
					t.Errorf("try %d: in-flight window left after the job", try)
				}
				sp.Close()
			}
		})
	}
}

// Paper runs out mid-job and is reloaded: the worker shows the fault, waits, and the labels
// that waited in the printer's buffer print once; none is sent twice.
func TestWorkerPaperOutMidJobWithCounter(t *testing.T) {
	sp, err := simprinter.Listen("127.0.0.1:0", simprinter.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	j := openJournal(t)
	r := printer.NewRedialer(sp.URL(), printer.ZPL)
	defer r.Close()
	s, _ := workerStation(t, r)
	s.opt.Journal = j
	const n = 12
	e, _, err := j.Claim(serialJob(t, "job", n))
	if err != nil {
		t.Fatal(err)
	}
	sp.PaperOutAfter(4)
	done := make(chan error, 1)
	go func() { done <- s.printJob(t.Context(), e) }()
	for {
		ev := next(t, s)
		if f, ok := ev.(PrintFault); ok {
			if !strings.Contains(f.Message, "paper out") {
				t.Fatalf("fault %q", f.Message)
			}
			break
		}
	}
	if c := sp.Counter(); c != 4 {
		t.Fatalf("%d labels printed before the paper ran out, want 4", c)
	}
	sp.SetStatus(printer.Status{})
	go func() {
		for range s.events {
		}
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if lost, dup := paperCheck(sp.Labels(), n); len(lost)+len(dup) > 0 {
		t.Fatalf("lost %v, duplicated %v", lost, dup)
	}
}

// BenchmarkPrintJobToSim: native ZPL labels through the worker (confirmation and journal
// included) to the simulated printer over TCP, with the label counter (windows of
// counterWindow) and without (a status round trip and an fsynced in-flight record per label).
func BenchmarkPrintJobToSim(b *testing.B) {
	for _, noCounter := range []bool{false, true} {
		b.Run(fmt.Sprintf("noCounter=%v", noCounter), func(b *testing.B) {
			sp, err := simprinter.Listen("127.0.0.1:0", simprinter.Options{NoCounter: noCounter})
			if err != nil {
				b.Fatal(err)
			}
			defer sp.Close()
			j, err := journal.Open(filepath.Join(b.TempDir(), "journal.db"), journal.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer j.Close()
			r := printer.NewRedialer(sp.URL(), printer.ZPL)
			defer r.Close()
			s := &Station{opt: Options{Journal: j, Printer: r, PrinterRetry: time.Millisecond, Now: time.Now}, log: testLogger(), cfg: testConfig(), events: make(chan Event, 64)}
			go func() {
				for range s.events {
				}
			}()
			const n = 500
			labels := 0
			i := 0
			for b.Loop() {
				i++
				e, _, err := j.Claim(serialJob(b, fmt.Sprintf("job-%d", i), n))
				if err != nil {
					b.Fatal(err)
				}
				if err := s.printJob(b.Context(), e); err != nil {
					b.Fatal(err)
				}
				labels += n
			}
			b.ReportMetric(float64(labels)/b.Elapsed().Seconds(), "labels/s")
		})
	}
}

// The printer stalls mid-job (accepts, stops reading) and later resumes: the worker shows the
// printer as not answering, waits, and every label ends up on paper exactly once.
func TestWorkerPrinterStallMidJob(t *testing.T) {
	for _, noCounter := range []bool{false, true} {
		t.Run(fmt.Sprintf("noCounter=%v", noCounter), func(t *testing.T) {
			const n = 10
			var sp *simprinter.Server
			var err error
			sp, err = simprinter.Listen("127.0.0.1:0", simprinter.Options{NoCounter: noCounter, OnLabel: func(c int64, _ string) {
				if c == 4 {
					sp.Stall(true)
				}
			}})
			if err != nil {
				t.Fatal(err)
			}
			defer sp.Close()
			j := openJournal(t)
			r := printer.NewRedialer(sp.URL(), printer.ZPL)
			r.Configure = func(p *printer.Printer) { p.StatusTimeout, p.WriteTimeout = 100*time.Millisecond, time.Second }
			defer r.Close()
			s, _ := workerStation(t, r)
			s.opt.Journal = j
			e, _, err := j.Claim(serialJob(t, "job", n))
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- s.printJob(t.Context(), e) }()
			for {
				if f, ok := next(t, s).(PrintFault); ok {
					if !strings.Contains(f.Message, "no status reply") {
						t.Fatalf("fault %q", f.Message)
					}
					break
				}
			}
			sp.Stall(false)
			go func() {
				for range s.events {
				}
			}()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			lost, dup := paperCheck(sp.Labels(), n)
			e, _ = j.Get("job")
			if len(lost) > 0 || len(dup) > e.Reprinted {
				t.Fatalf("lost %v, duplicated %v, reported reprinted %d", lost, dup, e.Reprinted)
			}
			t.Logf("duplicated %v, reprinted %d", dup, e.Reprinted)
		})
	}
}
