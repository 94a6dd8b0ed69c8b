package station

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"labelstation/drivers/printer"
	"labelstation/drivers/printer/simprinter"
)

// watchedRedialer is the daemon's redialler with two hooks: it counts the labels sent, and
// calls onCounter before every counter reading taken on a replacement connection.
type watchedRedialer struct {
	*printer.Redialer
	labels    atomic.Int32
	onCounter func(n int)
	reads     int
}

var _ Printer = (*watchedRedialer)(nil)

func (w *watchedRedialer) Send(ctx context.Context, data []byte) error {
	if bytes.HasPrefix(data, []byte("^XA")) {
		w.labels.Add(1)
	}
	return w.Redialer.Send(ctx, data)
}

func (w *watchedRedialer) Counter(ctx context.Context) (int64, error) {
	if w.Dials() >= 2 {
		w.reads++ // only the worker reads the counter, under printMu
		w.onCounter(w.reads)
	}
	return w.Redialer.Counter(ctx)
}

// The printer is slow with the first label of a window (here: held until released), so the
// counter reading sent behind the window times out and the redialler replaces the connection.
// On the new connection the printer is idle and its counter stands still while it has not yet
// read the rest of the window from the old one. Those labels still print: the worker must not
// take the still counter for labels that never arrived and send them again.
func TestWorkerSlowReplyDoesNotResendWindow(t *testing.T) {
	const n = 3
	release := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	var held atomic.Bool
	sp, err := simprinter.Listen("127.0.0.1:0", simprinter.Options{OnLabel: func(c int64, _ string) {
		if c == 1 && held.CompareAndSwap(false, true) {
			<-release
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	t.Cleanup(open) // runs first: a failed test does not leave the printer held
	r := printer.NewRedialer(sp.URL(), printer.ZPL)
	r.MinBackoff, r.MaxBackoff = time.Millisecond, 10*time.Millisecond
	r.Configure = func(p *printer.Printer) { p.StatusTimeout = 100 * time.Millisecond }
	t.Cleanup(func() { r.Close() })
	// Release the held label at the third counter reading on the new connection: the old
	// worker took the second one, still and idle, as proof and had resent by then.
	w := &watchedRedialer{Redialer: r, onCounter: func(k int) {
		if k == 3 {
			open()
		}
	}}
	j := openJournal(t)
	s := simStation(t, sp, j)
	s.opt.Printer = w
	s.opt.PrinterRetry = 20 * time.Millisecond
	e, _, err := j.Claim(serialJob(t, "slow", n))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := s.printJob(ctx, e); err != nil {
		t.Fatal(err)
	}
	if !held.Load() || r.Dials() < 2 {
		t.Fatalf("the printer was not slow enough to replace the connection (dials %d)", r.Dials())
	}
	if got := w.labels.Load(); got != n {
		t.Errorf("sent %d labels for %d", got, n)
	}
	labels, err := sp.WaitLabels(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	if lost, dup := paperCheck(labels, n); len(lost)+len(dup) > 0 {
		t.Errorf("lost %v, duplicated %v", lost, dup)
	}
	if got, _ := j.Get(e.Job.ID); got.Printed != n || got.Reprinted != 0 {
		t.Errorf("journal: printed %d, reprinted %d", got.Printed, got.Reprinted)
	}
}
