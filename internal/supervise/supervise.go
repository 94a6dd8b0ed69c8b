// Package supervise keeps the appliance's long-running loops alive: a loop that returns or
// panics is logged (with its stack) and started again after a capped, jittered backoff, so one
// bad message or driver fault costs a restart of that part, never the daemon.
package supervise

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"time"
)

// Backoff is capped exponential backoff with jitter (0.5–1.5 × the current step), so a fleet
// that lost the same server does not come back in step. The zero value uses 250 ms to 30 s.
type Backoff struct {
	Min, Max time.Duration
	// Rand returns a number in [0, n); default math/rand/v2.Int64N. Tests inject it.
	Rand func(n int64) int64

	cur time.Duration
}

// Next returns the delay before the next attempt and doubles the step up to Max.
func (b *Backoff) Next() time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = 250 * time.Millisecond
	}
	if hi < lo {
		hi = max(lo, 30*time.Second)
	}
	if b.cur < lo {
		b.cur = lo
	}
	r := b.Rand
	if r == nil {
		r = rand.Int64N
	}
	d := b.cur/2 + time.Duration(r(int64(b.cur)+1))
	b.cur = min(b.cur*2, hi)
	return d
}

// Reset starts the next wait from Min again (after a success, or when the network came back).
func (b *Backoff) Reset() { b.cur = 0 }

// PanicError is a recovered panic with the goroutine's stack.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Safe runs fn and turns a panic into a *PanicError.
func Safe(fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return fn()
}

// Log logs err at error level, with the stack when it is a panic.
func Log(log *slog.Logger, msg string, err error, args ...any) {
	if p, ok := err.(*PanicError); ok {
		args = append(args, "stack", string(p.Stack))
	}
	log.Error(msg, append(args, "err", err)...)
}

// Loop runs fn until ctx ends. Whenever fn returns before that — with an error, nil, or a
// panic — it is logged and fn runs again after b's next delay. A run that lasted longer than
// b.Max resets the backoff: the part was healthy, and this is a new fault.
func Loop(ctx context.Context, log *slog.Logger, name string, b Backoff, fn func(context.Context) error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for ctx.Err() == nil {
		start := time.Now()
		err := Safe(func() error { return fn(ctx) })
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = fmt.Errorf("supervise: %s returned", name)
		}
		if time.Since(start) > max(b.Max, time.Second) {
			b.Reset()
		}
		d := b.Next()
		Log(log, "supervise: "+name+" stopped; restarting", err, "retry_in", d)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
