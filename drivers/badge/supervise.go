package badge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"labelstation/internal/supervise"
)

// Defaults for SuperviseOptions.
const (
	DefaultFaultAfter = 3
	DefaultHealthy    = 30 * time.Second
)

// SuperviseOptions configure Supervise.
type SuperviseOptions struct {
	Pump PumpOptions
	// Open builds a fresh reader after a failure; the failed one was halted first, because an
	// I²C or UART error can leave the chip mid-frame and only a new init clears it. Nil keeps
	// the first reader (the sim reader, which cannot fail).
	Open func(ctx context.Context) (Reader, error)
	// Backoff spaces the restarts; zero Min means 500 ms. A card read or a healthy run resets it.
	Backoff supervise.Backoff
	// FaultAfter is how many consecutive failures raise OnFault; 0 means DefaultFaultAfter.
	// One glitch restarts the reader without bothering anyone; a reader that keeps failing is
	// a hardware problem somebody has to see on the screen.
	FaultAfter int
	// Healthy is how long a restarted reader must run without error, when no card is read, to
	// count as recovered; 0 means DefaultHealthy. A card read counts at once.
	Healthy time.Duration
	// OnFault is told once when the failures reach FaultAfter; OnRecover once when the reader
	// works again after that. They may be called from another goroutine.
	OnFault   func(err error)
	OnRecover func()
	// Log receives every failure (with the stack for a panic); nil discards.
	Log *slog.Logger
	// Wait sleeps d or until ctx ends; nil uses a timer. Tests record the backoff with it.
	Wait func(ctx context.Context, d time.Duration) error
}

// Supervise pumps r into out like Pump, and keeps doing so across failures until ctx ends: a
// read error or a driver panic halts the reader, waits with backoff and opens it again, so a
// single bus glitch does not leave a station that ignores every later tap. It returns
// ctx.Err() when ctx ends, or ErrHalted (wrapped) when someone else halted the reader.
func Supervise(ctx context.Context, r Reader, out chan<- Badge, opt SuperviseOptions) error {
	if opt.FaultAfter <= 0 {
		opt.FaultAfter = DefaultFaultAfter
	}
	if opt.Healthy <= 0 {
		opt.Healthy = DefaultHealthy
	}
	if opt.Backoff.Min == 0 {
		opt.Backoff.Min = 500 * time.Millisecond
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.Wait == nil {
		opt.Wait = sleep
	}
	if r == nil && opt.Open == nil {
		return errors.New("badge: Supervise needs a reader or Open")
	}
	h := &health{opt: &opt, backoff: opt.Backoff}
	for {
		if r == nil {
			var err error
			r, err = openSafely(ctx, opt.Open)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if err := opt.Wait(ctx, h.failed(fmt.Errorf("badge: reopen: %w", err))); err != nil {
					return err
				}
				continue
			}
			opt.Log.Info("badge: reader reopened", "reader", r.String())
		}
		po := opt.Pump
		inner := po.OnRead
		po.OnRead = func() {
			h.ok()
			if inner != nil {
				inner()
			}
		}
		t := time.AfterFunc(opt.Healthy, h.ok)
		err := pumpSafely(ctx, r, out, po)
		t.Stop()
		if ctx.Err() != nil {
			haltSafely(r, opt.Log)
			return ctx.Err()
		}
		if errors.Is(err, ErrHalted) {
			return fmt.Errorf("badge: %s stopped: %w", r, err)
		}
		var pe *supervise.PanicError
		if errors.As(err, &pe) {
			supervise.Log(opt.Log, "badge: reader panicked; restarting it", err, "reader", r.String())
		}
		d := h.failed(err)
		if opt.Open != nil {
			haltSafely(r, opt.Log)
			r = nil
		}
		if err := opt.Wait(ctx, d); err != nil {
			if r != nil {
				haltSafely(r, opt.Log)
			}
			return err
		}
	}
}

// health counts consecutive failures and raises OnFault/OnRecover on the edges.
type health struct {
	opt      *SuperviseOptions
	mu       sync.Mutex
	backoff  supervise.Backoff
	failures int
	faulted  bool
}

// failed records a failure and returns the backoff before the next attempt.
func (h *health) failed(err error) time.Duration {
	h.mu.Lock()
	h.failures++
	n := h.failures
	raise := n >= h.opt.FaultAfter && !h.faulted
	if raise {
		h.faulted = true
	}
	d := h.backoff.Next()
	h.mu.Unlock()
	h.opt.Log.Warn("badge: reader failed; restarting", "err", err, "failures", n, "retry_in", d)
	if raise && h.opt.OnFault != nil {
		h.opt.OnFault(err)
	}
	return d
}

// ok records that the reader works: a card was read, or it ran for Healthy without error.
func (h *health) ok() {
	h.mu.Lock()
	h.failures = 0
	h.backoff.Reset()
	clear := h.faulted
	h.faulted = false
	h.mu.Unlock()
	if clear {
		h.opt.Log.Info("badge: reader recovered")
		if h.opt.OnRecover != nil {
			h.opt.OnRecover()
		}
	}
}

func pumpSafely(ctx context.Context, r Reader, out chan<- Badge, po PumpOptions) error {
	return supervise.Safe(func() error { return Pump(ctx, r, out, po) })
}

func openSafely(ctx context.Context, open func(context.Context) (Reader, error)) (r Reader, err error) {
	err = supervise.Safe(func() error {
		var err error
		r, err = open(ctx)
		return err
	})
	if err != nil {
		return nil, err // not a typed nil *Dev dressed as a Reader
	}
	if r == nil {
		return nil, errors.New("badge: open returned no reader")
	}
	return r, nil
}

func haltSafely(r Reader, log *slog.Logger) {
	if err := supervise.Safe(r.Halt); err != nil {
		supervise.Log(log, "badge: halt failed", err, "reader", r.String())
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
