package station

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"labelstation/drivers/printer"
	"labelstation/internal/supervise"
	"labelstation/label"
	"labelstation/protocol"
	"labelstation/station/journal"
)

// worker prints the journal's pending jobs one at a time, oldest claim first. It is the only
// writer to the printer, so label order within a job is the record order.
func (s *Station) worker(ctx context.Context) {
	busy := false
	for {
		pending, err := s.opt.Journal.Pending()
		if err != nil {
			s.log.Error("station: journal", "err", err)
		}
		s.first.idle.Store(len(pending) == 0 && err == nil)
		if len(pending) == 0 {
			if busy {
				s.post(PrintIdle{})
				busy = false
			}
			select {
			case <-ctx.Done():
				return
			case <-s.kick:
				continue
			}
		}
		busy = true
		for _, e := range pending {
			if s.holdForPreview(e) {
				continue // shown, not printed: it waits on the station for a button
			}
			// A panic while rendering or sending fails this job instead of restarting the
			// worker into the same job forever.
			err := supervise.Safe(func() error {
				if err := expired(e, s.opt.Now()); err != nil {
					return err
				}
				return s.printJob(ctx, e)
			})
			s.takeClaimed(e.Job.ID) // a job that failed before its first label leaves it
			if ctx.Err() != nil {
				return
			}
			state, msg := protocol.JobPrinted, ""
			if err != nil {
				state, msg = protocol.JobFailed, err.Error()
				s.lastErr.Store(msg)
				s.log.Error("station: job failed", "job", e.Job.ID, "err", err)
			}
			done, ferr := s.opt.Journal.Finish(e.Job.ID, state, msg)
			if errors.Is(ferr, journal.ErrIncomplete) {
				// The data yielded fewer labels than the cloud counted: say so rather than
				// claim a complete job.
				err = fmt.Errorf("printed %d of %d labels: %w", e.Printed, e.Job.Labels, ferr)
				done, ferr = s.opt.Journal.Finish(e.Job.ID, protocol.JobFailed, err.Error())
			}
			if ferr != nil {
				// The journal is unusable (disk full, corrupt): stop printing rather than
				// print without a record; a restart retries.
				s.log.Error("station: journal finish; print worker stopped", "job", e.Job.ID, "err", ferr)
				s.post(PrintFault{Message: "journal: " + ferr.Error()})
				<-ctx.Done()
				return
			}
			s.report(done) // Finish ended the in-flight window too
			if e.Job.ID == pending[len(pending)-1].Job.ID {
				// Idle before the Done screen, not after the next Pending: a tap right after
				// it gets its first window with the claim. A job claimed meanwhile is seen by
				// the claim's own check and gets no window there.
				s.first.idle.Store(true)
			}
			s.post(JobFinished{Title: e.Job.Title, Err: err})
		}
	}
}

// counterWindow is how many labels go to a printer with a label counter between two
// confirmations. The counter tells after any fault or crash exactly which of them printed, so a
// wide window costs nothing in safety and lets labels stream: one counter read per window (and
// per job) instead of a round trip per label.
const counterWindow = 64

// labelCounter is implemented by printers that report a lifetime label counter
// (printer.Printer and printer.Redialer on a Link-OS Zebra).
type labelCounter interface {
	Counter(ctx context.Context) (int64, error)
}

// dialCounter is implemented by printers that reconnect by themselves (printer.Redialer): a
// status reply confirms a label only if it came on the connection the label went out on.
type dialCounter interface {
	Dials() int
}

func dials(p Printer) int {
	if d, ok := p.(dialCounter); ok {
		return d.Dials()
	}
	return 0
}

// printJob prints the labels not yet confirmed. A label counts as printed only once the printer
// confirmed it:
//
//   - with a label counter, the counter advanced past it; labels stream in windows of
//     counterWindow, each recorded in the journal as in flight (with the counter reading) before
//     the first is sent;
//   - without one, a status reply on the same connection after its bytes; each label is
//     recorded as in flight before it is sent.
//
// A write error or a failed confirmation leaves the label unconfirmed: the printer is redialled
// and the label sent again. After a crash the in-flight window is reconciled first (reconcile).
func (s *Station) printJob(ctx context.Context, e journal.Entry) (err error) {
	if label.IsDocument(e.Job.Format) {
		return s.printDocument(ctx, e)
	}
	cfg := s.config().Printer
	lay, err := label.ParseLayout(e.Job.Layout)
	if err != nil {
		return fmt.Errorf("layout: %w", err)
	}
	f, err := label.ParseFormat(e.Job.Format)
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	rr, err := label.NewRecordReader(f, bytes.NewReader(e.Job.Data), label.ReadOptions{})
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	target, fontErr := s.target(cfg)
	if e.Printed == 0 {
		if err := checkJob(lay, f, e.Job.Data, target); err != nil {
			if fontErr != nil {
				err = fmt.Errorf("%w (%v)", err, fontErr)
			}
			return fmt.Errorf("data: %w", err)
		}
	}
	total := e.Job.Labels

	r, done, err := s.startRun(ctx, e, total)
	defer func() { r.keepConfirmed(err) }()
	if err != nil {
		return err
	}
	n := 0
	for {
		rec, err := rr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("data: %w", err)
		}
		copies, err := lay.Copies(rec)
		if err != nil {
			return fmt.Errorf("data: %w", err)
		}
		for range copies {
			n++
			if n <= done {
				continue // confirmed before a restart
			}
			if cerr := e.Job.CheckLabel(n); cerr != nil {
				// Print the labels the cloud counted, not one more.
				if err := r.flush(ctx); err != nil {
					return err
				}
				if err := r.record(true); err != nil {
					return err
				}
				return fmt.Errorf("data: %w", cerr)
			}
			data, err := label.Render(lay, rec, target)
			if err != nil {
				return fmt.Errorf("label %d: %w", n, err)
			}
			if err := r.add(ctx, data); err != nil {
				return err
			}
		}
	}
	if err := r.flush(ctx); err != nil {
		return err
	}
	if r.counter == nil && r.faulted {
		// The last label sits in a faulted printer: the job is done once it can print.
		if err := s.waitReady(ctx); err != nil {
			return err
		}
	}
	return r.settle()
}

// printRun is one job's labels on their way to the printer.
type printRun struct {
	s         *Station
	id, title string
	total     int
	counter   labelCounter // nil: confirm by status
	limit     int          // labels per window
	base      int64        // counter reading with labels [0, confirmed) printed
	confirmed int          // labels [0, confirmed) are confirmed printed
	recorded  int          // Progress recorded up to here
	window    [][]byte     // labels [confirmed, confirmed+len(window))
	sent      int          // how many of window went to the printer
	begun     bool         // window recorded as in flight
	unsure    bool         // window[0] may have printed although unconfirmed
	faulted   bool         // the last status named a fault
	conn      int          // connection the window went out on (dials)
}

func (r *printRun) add(ctx context.Context, data []byte) error {
	r.window = append(r.window, data)
	if len(r.window) < r.limit {
		return nil
	}
	return r.flush(ctx)
}

// flush sends the window and returns once every label in it is confirmed.
func (r *printRun) flush(ctx context.Context) error {
	s := r.s
	for len(r.window) > 0 {
		if r.counter == nil && r.faulted {
			// Nothing more into a faulted printer: a label queued behind a paper-out could be
			// lost with the roll change, and the user should see the fault first.
			if err := s.waitReady(ctx); err != nil {
				return err
			}
			r.faulted = false
		}
		if !r.begun {
			fl := journal.InFlight{From: r.confirmed, To: r.confirmed + len(r.window), Counter: r.base, HasCounter: r.counter != nil}
			if err := s.opt.Journal.BeginInFlight(r.id, fl); err != nil {
				return fmt.Errorf("journal: %w", err)
			}
			r.begun = true
		}
		for r.sent < len(r.window) {
			err := r.send(ctx, r.window[r.sent])
			if err == nil {
				r.sent++
				continue
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.log.Warn("station: printer send failed; the label will be confirmed or sent again", "job", r.id, "label", r.confirmed+r.sent+1, "err", err)
			var se *printer.SendError
			if r.counter == nil && r.sent == 0 && errors.As(err, &se) && se.Wrote == se.Len {
				r.unsure = true // every byte left: the printer may have it
			}
			// A printer that answers queries but refuses data must not turn this into a
			// tight loop of journal writes.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(s.opt.PrinterRetry):
			}
			break
		}
		k, err := r.confirm(ctx)
		if err != nil {
			return err
		}
		r.window = r.window[k:]
		r.sent = 0 // what is left was not confirmed: send it again
		r.begun = false
		if k > 0 {
			r.confirmed += k
			s.labels.Add(int64(k))
			s.post(PrintProgress{Title: r.title, Done: r.confirmed, Total: r.total})
			if err := r.record(false); err != nil {
				return err
			}
		}
		if len(r.window) > 0 && r.unsure {
			if _, err := s.opt.Journal.AddReprinted(r.id, 1); err != nil {
				return fmt.Errorf("journal: %w", err)
			}
			r.unsure = false
		}
	}
	return nil
}

// record writes the confirmed count to the journal every counterWindow labels and at the end;
// between those the in-flight record (From) carries it.
func (r *printRun) record(final bool) error {
	if r.confirmed == r.recorded || (!final && r.confirmed-r.recorded < counterWindow) {
		return nil
	}
	if _, err := r.s.opt.Journal.Progress(r.id, r.confirmed); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	r.recorded = r.confirmed
	return nil
}

// settle records the final confirmed count and ends the in-flight window in one commit.
func (r *printRun) settle() error {
	if _, err := r.s.opt.Journal.Settle(r.id, r.confirmed); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	r.recorded = r.confirmed
	return nil
}

func (r *printRun) send(ctx context.Context, data []byte) error {
	r.s.printMu.Lock()
	defer r.s.printMu.Unlock()
	err := r.s.opt.Printer.Send(ctx, data)
	r.conn = dials(r.s.opt.Printer)
	return err
}

// confirm returns how many labels at the start of the window the printer confirmed.
func (r *printRun) confirm(ctx context.Context) (int, error) {
	s := r.s
	if r.counter == nil {
		if r.sent == 0 {
			return 0, s.waitReady(ctx) // reconnects; the label goes again
		}
		s.printMu.Lock()
		st, err := s.opt.Printer.Status(ctx)
		if err == nil && dials(s.opt.Printer) != r.conn {
			// The reply came on a new connection: the old one died, maybe with the label.
			err = errors.New("printer connection replaced after the label was sent")
		}
		s.printMu.Unlock()
		if errors.Is(err, printer.ErrUnsupported) {
			return 1, nil // a language without a status query: the write is all there is
		}
		if err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			// No reply after the label: the connection may have died with it in flight.
			s.log.Warn("station: label not confirmed; sending it again", "job", r.id, "label", r.confirmed+1, "err", err)
			r.unsure = true
			return 0, s.waitReady(ctx)
		}
		r.faulted = st.Fault() != nil
		return 1, nil
	}
	var last int64 = -1
	// still counts readings of an idle printer that repeated the one before. One repeat shows
	// the rest of the window never arrived, as long as every byte of it was read by the printer
	// before those readings: true on the connection the window went out on, which the printer
	// reads in order. A reply that timed out (a slow printer, not a dead one) made the
	// connection be dropped and replaced; the printer may still be reading the window from the
	// old one while it answers on the new, so the counter must then stand still for
	// abandonedPolls readings before the rest is sent again.
	still, need := 0, 1
	for {
		c, err := r.count(ctx)
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			need = abandonedPolls
		}
		if err == nil {
			if c < r.base {
				// The counter went backwards: another printer, or a reset. Start over from what
				// the journal knows; labels of this window may print twice.
				s.log.Warn("station: printer label counter went backwards; resending the window", "job", r.id, "was", r.base, "now", c)
				r.base = c
				r.unsure = r.sent > 0
				return 0, nil
			}
			if got := c - r.base; got >= int64(r.sent) {
				r.base = c
				return r.sent, nil
			}
		}
		st, serr := s.status(ctx)
		if errors.Is(serr, os.ErrDeadlineExceeded) {
			need = abandonedPolls
		}
		if err == nil && serr == nil && st.Idle() && c == last {
			still++
		} else {
			still = 0
		}
		switch {
		case ctx.Err() != nil:
			return 0, ctx.Err()
		case err != nil || serr != nil || st.Fault() != nil:
			// Unreachable or faulted: show it and wait; the counter says afterwards what
			// printed.
			if err := s.waitReady(ctx); err != nil {
				return 0, err
			}
			last = -1
			continue
		case still >= need:
			// Nothing left to print and the counter stands still: the rest never arrived
			// complete (a dropped connection). Confirm what printed; send the rest again.
			k := int(c - r.base)
			r.base = c
			return k, nil
		}
		last = c
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(s.opt.PrinterRetry):
		}
	}
}

// abandonedPolls is how many repeated readings of an idle printer's counter show that labels
// sent on a connection dropped after a timed-out reply will not print any more.
const abandonedPolls = 30

func (r *printRun) count(ctx context.Context) (int64, error) {
	r.s.printMu.Lock()
	defer r.s.printMu.Unlock()
	return r.counter.Counter(ctx)
}

// reconcile settles a window left in flight by a crash and returns how many labels are
// confirmed. With a label counter read before the window, the labels the printer counted since
// are the ones that printed: none is printed twice. Without one, the window's labels are sent
// again and counted in Entry.Reprinted.
func (r *printRun) reconcile(ctx context.Context, e journal.Entry) (int, error) {
	s := r.s
	done := e.Printed
	fl, ok, err := s.opt.Journal.InFlight(e.Job.ID)
	if err != nil {
		return 0, fmt.Errorf("journal: %w", err)
	}
	if !ok || fl.To <= done {
		return done, nil
	}
	done = max(done, fl.From)
	switch {
	case fl.HasCounter && r.counter != nil && r.base >= fl.Counter:
		k := min(int(r.base-fl.Counter), fl.To-fl.From)
		done = max(done, fl.From+k)
		s.log.Info("station: reconciled labels in flight at the crash against the printer's counter", "job", e.Job.ID, "in_flight", fmt.Sprintf("%d-%d", fl.From+1, fl.To), "printed", k)
	default:
		n := fl.To - done
		s.log.Warn("station: labels in flight at the crash may have printed; printing them again", "job", e.Job.ID, "labels", n)
		if _, err := s.opt.Journal.AddReprinted(e.Job.ID, n); err != nil {
			return 0, fmt.Errorf("journal: %w", err)
		}
	}
	if done > e.Printed {
		if _, err := s.opt.Journal.Progress(e.Job.ID, done); err != nil {
			return 0, fmt.Errorf("journal: %w", err)
		}
	}
	if err := s.opt.Journal.EndInFlight(e.Job.ID); err != nil {
		return 0, fmt.Errorf("journal: %w", err)
	}
	return done, nil
}

// settledCounter waits until the printer has nothing left to print (faults shown and waited
// out) and reads its label counter. A printer that keeps reporting work is read anyway after
// settlePolls polls.
func (s *Station) settledCounter(ctx context.Context, lc labelCounter) (int64, error) {
	const settlePolls = 60
	for i := 0; ; i++ {
		st, err := s.status(ctx)
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if errors.Is(err, printer.ErrUnsupported) {
			err = nil
		}
		if err != nil || st.Fault() != nil {
			if err := s.waitReady(ctx); err != nil {
				return 0, err
			}
			continue
		}
		if st.Idle() || i >= settlePolls {
			s.printMu.Lock()
			c, err := lc.Counter(ctx)
			s.printMu.Unlock()
			return c, err
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(s.opt.PrinterRetry):
		}
	}
}

func (s *Station) status(ctx context.Context) (printer.Status, error) {
	s.printMu.Lock()
	defer s.printMu.Unlock()
	return s.opt.Printer.Status(ctx)
}

// ErrPrinterNotReady is wrapped when the printer reports a fault or does not answer.
var ErrPrinterNotReady = errors.New("printer not ready")

// printerReady asks the printer once for its state. A language without a status query
// (printer.ErrUnsupported) counts as ready: there is nothing to wait for.
func (s *Station) printerReady(ctx context.Context) error {
	s.printMu.Lock()
	st, err := s.opt.Printer.Status(ctx)
	s.printMu.Unlock()
	switch {
	case errors.Is(err, printer.ErrUnsupported):
		return nil
	case err != nil:
		return fmt.Errorf("%w: %v", ErrPrinterNotReady, err)
	}
	if err := st.Fault(); err != nil {
		return fmt.Errorf("%w: %v", ErrPrinterNotReady, err)
	}
	return nil
}

// waitReady returns once the printer reports no fault, showing the fault meanwhile; the job
// waits (PAUSED) rather than being sent into a printer with its head open.
func (s *Station) waitReady(ctx context.Context) error {
	faulted := false
	for {
		err := s.printerReady(ctx)
		if err == nil {
			if faulted {
				s.post(PrintCleared{})
			}
			return nil
		}
		if !faulted {
			s.log.Warn("station: printer not ready", "err", err)
			s.post(PrintFault{Message: err.Error()})
			faulted = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(s.opt.PrinterRetry):
		}
	}
}

// startRun prepares printing e: how each label will be confirmed (the printer's label counter
// in windows, else a status reply per label) and where to resume after a restart.
func (s *Station) startRun(ctx context.Context, e journal.Entry, total int) (r *printRun, done int, err error) {
	r = &printRun{s: s, id: e.Job.ID, title: e.Job.Title, total: total, limit: 1}
	if fl, ok := s.takeClaimed(e.Job.ID); ok && e.Printed == 0 {
		// The claim recorded the first window with a counter reading of the idle printer and
		// nothing was sent since: send it as it is.
		lc, _ := s.opt.Printer.(labelCounter)
		r.counter, r.base, r.limit, r.begun = lc, fl.Counter, counterWindow, true
		s.post(PrintProgress{Title: e.Job.Title, Done: 0, Total: total})
		return r, 0, nil
	}
	if lc, ok := s.opt.Printer.(labelCounter); ok {
		c, err := s.settledCounter(ctx, lc)
		switch {
		case ctx.Err() != nil:
			return r, 0, ctx.Err()
		case err != nil:
			s.log.Info("station: printer reports no label counter; confirming each label by status", "err", err)
		default:
			r.counter, r.base, r.limit = lc, c, counterWindow
		}
	}
	if r.counter == nil {
		if err := s.waitReady(ctx); err != nil {
			return r, 0, err
		}
	}
	if done, err = r.reconcile(ctx, e); err != nil {
		return r, 0, err
	}
	r.confirmed, r.recorded = done, done
	s.post(PrintProgress{Title: e.Job.Title, Done: done, Total: total})
	return r, done, nil
}

// keepConfirmed records, after a failed or interrupted run, what the printer confirmed.
func (r *printRun) keepConfirmed(err error) {
	if err != nil && r.confirmed > r.recorded {
		if rerr := r.record(true); rerr != nil {
			r.s.log.Error("station: journal", "job", r.id, "err", rerr)
		}
	}
}
