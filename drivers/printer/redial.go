package printer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// Redialer keeps one connection to a printer: it dials on first use, drops the
// connection after any failure (a late reply would otherwise be read as the
// answer to the next query) and dials again on the next call. A query on a
// connection the printer closed in the meantime is retried once on a fresh
// one, so the first tap after a printer reboot or a network blip works.
// Failed dials back off (MinBackoff doubling to MaxBackoff) so a switched-off
// printer is not hammered; a successful dial resets the backoff.
type Redialer struct {
	url, lang string

	// Dial bounds each connect.
	Dial DialOptions
	// MinBackoff and MaxBackoff bound the wait after a failed dial; defaults
	// 250ms and 5s.
	MinBackoff, MaxBackoff time.Duration
	// Configure, if set, is applied to every new Printer (timeouts).
	Configure func(*Printer)
	// Now is the clock; default time.Now.
	Now func() time.Time

	mu       sync.Mutex
	p        *Printer
	delay    time.Duration
	nextDial time.Time
	dialErr  error
	dials    int
}

// NewRedialer returns a Redialer for a transport URL (see Dial) and language.
func NewRedialer(url, lang string) *Redialer {
	return &Redialer{url: url, lang: lang, MinBackoff: 250 * time.Millisecond, MaxBackoff: 5 * time.Second, Now: time.Now}
}

func (r *Redialer) String() string { return r.lang + "@" + r.url }

// Dials reports how many connections were opened. It changes whenever the connection is
// replaced, so a caller can tell whether a reply came on the connection its label went out on.
func (r *Redialer) Dials() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dials
}

// get returns the current printer or dials a new one; fresh reports a new
// connection.
func (r *Redialer) get(ctx context.Context) (p *Printer, fresh bool, err error) {
	if r.p != nil {
		return r.p, false, nil
	}
	now := r.Now()
	if now.Before(r.nextDial) {
		return nil, false, fmt.Errorf("printer: %s: next dial in %v: %w", r.url, r.nextDial.Sub(now).Round(time.Millisecond), r.dialErr)
	}
	t, err := Dial(ctx, r.url, r.Dial)
	if err != nil {
		if ctx.Err() == nil {
			r.delay = min(max(2*r.delay, r.MinBackoff), r.MaxBackoff)
			r.nextDial = now.Add(r.delay)
			r.dialErr = err
		}
		return nil, false, err
	}
	r.delay, r.nextDial, r.dialErr = 0, time.Time{}, nil
	r.dials++
	r.p = New(t, r.lang)
	if r.Configure != nil {
		r.Configure(r.p)
	}
	return r.p, true, nil
}

func (r *Redialer) drop() {
	if r.p != nil {
		r.p.Close()
		r.p = nil
	}
}

// retryable reports whether a failed query on a reused connection should be
// tried once more on a new one: the connection was found dead, not slow.
func retryable(ctx context.Context, err error) bool {
	return ctx.Err() == nil && !errors.Is(err, ErrUnsupported) && !errors.Is(err, os.ErrDeadlineExceeded) &&
		!errors.Is(err, ErrStatus)
}

// Send writes one label on the current connection (dialling if needed). It is
// never retried here: whether the label may be sent again is the caller's
// decision, made after asking the printer what it has.
func (r *Redialer) Send(ctx context.Context, data []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, _, err := r.get(ctx)
	if err != nil {
		return err
	}
	if err := p.Send(ctx, data); err != nil {
		r.drop()
		return err
	}
	return nil
}

// query runs q on the connection, once more on a new connection when the old
// one turned out dead.
func query[T any](r *Redialer, ctx context.Context, q func(*Printer) (T, error)) (T, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var zero T
		p, fresh, err := r.get(ctx)
		if err != nil {
			return zero, err
		}
		v, err := q(p)
		if err == nil || errors.Is(err, ErrUnsupported) {
			return v, err
		}
		r.drop()
		if fresh || !retryable(ctx, err) {
			return zero, err
		}
	}
}

// Status asks for the printer's state (see Printer.Status).
func (r *Redialer) Status(ctx context.Context) (Status, error) {
	return query(r, ctx, func(p *Printer) (Status, error) { return p.Status(ctx) })
}

// Counter reads the label counter (see Printer.Counter).
func (r *Redialer) Counter(ctx context.Context) (int64, error) {
	return query(r, ctx, func(p *Printer) (int64, error) { return p.Counter(ctx) })
}

// Close closes the current connection; a later call dials again.
func (r *Redialer) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.drop()
	return nil
}

// Lang is the language the printer is spoken to in.
func (r *Redialer) Lang() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lang
}

// SetLang switches the language — the status query's dialect and the label counter — for
// every later call. The current connection is closed, so a reply still in flight to a query in
// the old dialect is never read as the answer to one in the new.
func (r *Redialer) SetLang(lang string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if lang == r.lang {
		return
	}
	r.lang = lang
	r.drop()
	r.delay, r.nextDial, r.dialErr = 0, time.Time{}, nil
}
