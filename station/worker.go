package station

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
			// A panic while rendering or sending fails this job instead of restarting the
			// worker into the same job forever.
			err := supervise.Safe(func() error { return s.printJob(ctx, e) })
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
			s.report(done)
			s.post(JobFinished{Title: e.Job.Title, Err: err})
		}
	}
}

// printJob sends the labels the printer has not yet accepted. A label is recorded in the journal
// (fsync) right after the printer took it, so a restart resumes after it and never repeats it.
func (s *Station) printJob(ctx context.Context, e journal.Entry) error {
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
	target := label.Target{Lang: label.Lang(cfg.Lang), DPI: cfg.DPI, Raster: cfg.Raster}
	total := e.Job.Labels
	s.post(PrintProgress{Title: e.Job.Title, Done: e.Printed, Total: total})
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
			if n <= e.Printed {
				continue // accepted before a restart
			}
			data, err := label.Render(lay, rec, target)
			if err != nil {
				return fmt.Errorf("label %d: %w", n, err)
			}
			// Asked before every label: a printer that ran out of paper mid-job keeps
			// accepting data into its buffer, which would then be lost with the roll change.
			if err := s.waitReady(ctx); err != nil {
				return err
			}
			if err := s.send(ctx, data); err != nil {
				return err
			}
			s.labels.Add(1)
			if _, err := s.opt.Journal.Progress(e.Job.ID, n); err != nil {
				return fmt.Errorf("journal: %w", err)
			}
			s.post(PrintProgress{Title: e.Job.Title, Done: n, Total: total})
		}
	}
	return nil
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

// send hands one label to the printer, waiting out faults between attempts.
func (s *Station) send(ctx context.Context, data []byte) error {
	for {
		s.printMu.Lock()
		err := s.opt.Printer.Send(ctx, data)
		s.printMu.Unlock()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.log.Warn("station: printer send failed", "err", err)
		s.post(PrintFault{Message: err.Error()})
		if err := s.waitReady(ctx); err != nil {
			return err
		}
		s.post(PrintCleared{})
	}
}
