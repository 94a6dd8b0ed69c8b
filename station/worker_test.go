package station

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"labelstation/drivers/printer"
	"labelstation/protocol"
	"labelstation/station/config"
	"labelstation/station/journal"
)

// fakePrinter stands in for the printer hardware: it keeps every label and reports paper out
// once faultAt labels are in, until cleared.
type fakePrinter struct {
	mu      sync.Mutex
	labels  [][]byte
	faultAt int // 0: never
	cleared bool
}

func (p *fakePrinter) Send(_ context.Context, b []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.labels = append(p.labels, b)
	return nil
}

func (p *fakePrinter) Status(context.Context) (printer.Status, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return printer.Status{PaperOut: p.faultAt > 0 && len(p.labels) >= p.faultAt && !p.cleared}, nil
}

func (p *fakePrinter) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.labels)
}

var _ Printer = (*fakePrinter)(nil)

func testJob(t *testing.T) protocol.Job {
	t.Helper()
	layout, err := os.ReadFile(filepath.Join("..", "examples", "layouts", "shipping.json"))
	if err != nil {
		t.Fatal(err)
	}
	return protocol.Job{V: 1, ID: "job-1", Title: "Three", Layout: layout, Format: "csv", Labels: 3,
		Data: []byte("name,street,zip,city,tracking\nAda Lovelace,1 Sq,1,London,TRK1\nGrace Hopper,2 Way,2,Arlington,TRK2\nAlan Turing,3 Park,3,Bletchley,TRK3\n")}
}

func testLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func testConfig() config.Config { return config.Defaults() }

func workerStation(t *testing.T, p Printer) (*Station, *journal.Journal) {
	t.Helper()
	j, err := journal.Open(filepath.Join(t.TempDir(), "journal.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	cfg := config.Defaults()
	return &Station{
		opt: Options{Journal: j, Printer: p, PrinterRetry: time.Millisecond, Now: time.Now},
		log: slog.New(slog.DiscardHandler), cfg: cfg, events: make(chan Event, 64),
	}, j
}

func next(t *testing.T, s *Station) Event {
	t.Helper()
	select {
	case ev := <-s.events:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event from the worker")
		return nil
	}
}

func TestWorkerPausesMidJobOnFault(t *testing.T) {
	fp := &fakePrinter{faultAt: 1}
	s, j := workerStation(t, fp)
	e, _, err := j.Claim(testJob(t))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.printJob(context.Background(), e) }()

	if ev := next(t, s); ev != (PrintProgress{Title: "Three", Done: 0, Total: 3}) {
		t.Fatalf("first event %#v", ev)
	}
	if ev := next(t, s); ev != (PrintProgress{Title: "Three", Done: 1, Total: 3}) {
		t.Fatalf("second event %#v", ev)
	}
	ev := next(t, s)
	if f, ok := ev.(PrintFault); !ok || !bytes.Contains([]byte(f.Message), []byte("paper out")) {
		t.Fatalf("third event %#v, want a paper-out fault", ev)
	}
	if n := fp.count(); n != 1 {
		t.Fatalf("%d labels sent into a printer out of paper", n)
	}
	fp.mu.Lock()
	fp.cleared = true
	fp.mu.Unlock()
	if ev := next(t, s); ev != (PrintCleared{}) {
		t.Fatalf("after clearing: %#v", ev)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := fp.count(); n != 3 {
		t.Fatalf("printed %d labels, want 3", n)
	}
	if e, _ := j.Get("job-1"); e.Printed != 3 {
		t.Fatalf("journal says %d printed", e.Printed)
	}
}

// After a restart the worker resumes at the first label the printer had not accepted.
func TestWorkerResumesAfterAcceptedLabels(t *testing.T) {
	fp := &fakePrinter{}
	s, j := workerStation(t, fp)
	if _, _, err := j.Claim(testJob(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Progress("job-1", 2); err != nil { // accepted before the "crash"
		t.Fatal(err)
	}
	e, err := j.Get("job-1") // as the worker finds it after a restart: with its payload
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range s.events {
		}
	}()
	if err := s.printJob(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if len(fp.labels) != 1 || !bytes.Contains(fp.labels[0], []byte("Alan Turing")) {
		t.Fatalf("sent %d labels (%q), want only the third", len(fp.labels), fp.labels)
	}
}

// A job whose data yields more labels than the count the cloud announced prints the counted
// labels and fails before the first extra one reaches the printer.
func TestWorkerStopsBeforeLabelsBeyondTheCount(t *testing.T) {
	fp := &fakePrinter{}
	s, j := workerStation(t, fp)
	job := testJob(t)
	job.Labels = 2 // the data has three records
	e, _, err := j.Claim(job)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range s.events {
		}
	}()
	err = s.printJob(context.Background(), e)
	if !errors.Is(err, protocol.ErrTooManyLabels) {
		t.Fatalf("printJob: %v, want ErrTooManyLabels", err)
	}
	if n := fp.count(); n != 2 {
		t.Fatalf("sent %d labels, want the 2 the job counted", n)
	}
	for _, l := range fp.labels {
		if bytes.Contains(l, []byte("Alan Turing")) {
			t.Fatal("the record beyond the count reached the printer")
		}
	}
}
