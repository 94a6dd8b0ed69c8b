package printer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"
)

// Languages New accepts.
const (
	ZPL    = "zpl"
	TSPL   = "tspl"
	ESCPOS = "escpos"
)

// ErrNoStatus is wrapped when the printer does not answer a status query in
// time. Zebra printers stay silent to ~HS while media is out or the head is
// open, so callers must treat it as "not ready", never as "ready".
var ErrNoStatus = errors.New("printer: no status reply")

// ErrUnsupported is wrapped when the language has no status query.
var ErrUnsupported = errors.New("printer: unsupported")

// Printer = transport + language: sends one label's bytes, queries status.
type Printer struct {
	t    Transport
	lang string

	// WriteTimeout bounds one Send (ctx may end it sooner); default 30s.
	WriteTimeout time.Duration
	// StatusTimeout bounds waiting for a status reply (ctx may end it
	// sooner); default 2s.
	StatusTimeout time.Duration
}

// New wraps t; lang is "zpl", "tspl" or "escpos" (anything else can Send but
// not report Status).
func New(t Transport, lang string) *Printer {
	return &Printer{t: t, lang: lang, WriteTimeout: 30 * time.Second, StatusTimeout: 2 * time.Second}
}

func (p *Printer) String() string { return p.lang + "@" + p.t.String() }

// bound sets the read or write deadline to now+d and arranges for ctx
// ending to release the blocked call at once. ctx's own deadline is left to
// context.AfterFunc, which runs only after ctx is done, so a call it
// releases always sees ctx.Err(). The returned func undoes it.
func (p *Printer) bound(ctx context.Context, d time.Duration, write bool) func() {
	dl, ok := p.t.(deadliner)
	if !ok {
		return func() {}
	}
	set := dl.SetReadDeadline
	if write {
		set = dl.SetWriteDeadline
	}
	_ = set(time.Now().Add(d))
	stop := context.AfterFunc(ctx, func() { _ = set(time.Unix(1, 0)) })
	return func() {
		stop()
		_ = set(time.Time{})
	}
}

// SendError is returned by Send when the write failed. Wrote < Len means the
// printer got at most part of the label, which it discards (a ZPL format or a
// TSPL label prints only once its last command arrived); Wrote == Len means
// the bytes left this host and may or may not have reached the printer.
type SendError struct {
	Printer    string
	Wrote, Len int
	Err        error
}

func (e *SendError) Error() string {
	return fmt.Sprintf("printer: %s: send: wrote %d of %d bytes: %v", e.Printer, e.Wrote, e.Len, e.Err)
}

func (e *SendError) Unwrap() error { return e.Err }

// Send writes one label's bytes. A nil error means the bytes were handed to
// the transport, not that the printer has them: only a later reply on the
// same connection (Status, Counter) shows that.
func (p *Printer) Send(ctx context.Context, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	defer p.bound(ctx, p.WriteTimeout, true)()
	n, err := p.t.Write(data)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return &SendError{Printer: p.t.String(), Wrote: n, Len: len(data), Err: err}
	}
	return nil
}

// sgdLabelCount asks a Link-OS Zebra for its lifetime label counter with a
// Set-Get-Do getvar (Zebra "SGD Printer Commands": ! U1 getvar "name" CR LF,
// answered with the value in double quotes). ~HQOD is no substitute: it
// reports the distance printed in whole inches or centimetres, which cannot
// tell one short label from none.
var sgdLabelCount = []byte("! U1 getvar \"odometer.total_label_count\"\r\n")

// Counter reads the printer's lifetime label counter: it grows by one for
// every label that left the print head, so comparing two readings tells how
// many labels were printed in between. Languages and printers without one
// return an error wrapping ErrUnsupported.
func (p *Printer) Counter(ctx context.Context) (int64, error) {
	if p.lang != ZPL {
		return 0, fmt.Errorf("%w: label counter for language %q", ErrUnsupported, p.lang)
	}
	if err := p.Send(ctx, sgdLabelCount); err != nil {
		return 0, err
	}
	reply, err := p.readUntil(ctx, func(b []byte) bool { return bytes.Count(b, []byte{'"'}) >= 2 })
	if err != nil {
		return 0, err
	}
	return ParseSGDCounter(reply)
}

// Status asks the printer for its state with its language's query.
func (p *Printer) Status(ctx context.Context) (Status, error) {
	var query []byte
	var complete func([]byte) bool
	switch p.lang {
	case ZPL:
		query, complete = []byte("~HS"), zplStatusComplete
	case TSPL:
		query = []byte{0x1b, '!', '?'}
		complete = func(b []byte) bool { return len(b) >= 1 }
	case ESCPOS:
		query = escposQuery
		complete = func(b []byte) bool { return len(b) >= 4 }
	default:
		return Status{}, fmt.Errorf("%w: status query for language %q", ErrUnsupported, p.lang)
	}
	if err := p.Send(ctx, query); err != nil {
		return Status{}, err
	}
	reply, err := p.readUntil(ctx, complete)
	if err != nil {
		return Status{}, err
	}
	switch p.lang {
	case ZPL:
		return ParseZPLHostStatus(reply)
	case TSPL:
		return ParseTSPLStatus(reply[len(reply)-1]), nil
	default:
		return ParseESCPOSStatus([4]byte(reply[len(reply)-4:]))
	}
}

func (p *Printer) readUntil(ctx context.Context, complete func([]byte) bool) ([]byte, error) {
	defer p.bound(ctx, p.StatusTimeout, false)()
	var buf []byte
	tmp := make([]byte, 256)
	for !complete(buf) {
		n, err := p.t.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if err != nil && !complete(buf) {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("%w: %s: got %q: %w", ErrNoStatus, p.t, buf, err)
		}
	}
	return buf, nil
}

// Close closes the transport.
func (p *Printer) Close() error { return p.t.Close() }
