package pn532

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Port is a UART with deadlines, as serialport.Port provides.
type Port interface {
	io.ReadWriter
	SetReadDeadline(time.Time) error
	String() string
}

// hsuWakeup precedes the first command: the PN532 wakes from power-down on
// HSU activity and needs the 0x55 preamble plus idle bytes before it accepts
// a frame (UM §7.2.11, HSU wake-up condition).
var hsuWakeup = []byte{0x55, 0x55, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

// NewHSU opens a PN532 on a UART (HSU, 115200 8N1; I0=0, I1=0) and
// initialises it.
func NewHSU(ctx context.Context, p Port, opt Opts) (*Dev, error) {
	o := opt.withDefaults()
	l := &hsuLink{p: p}
	return newDev(ctx, l, o, func() error {
		if _, err := p.Write(hsuWakeup); err != nil {
			return fmt.Errorf("pn532: hsu wake-up: %w", err)
		}
		return nil
	})
}

// maxFrame is the longest normal frame (LEN 255 plus 7 bytes of framing); maxBuffered bounds
// what a noisy line can pile up between frames.
const (
	maxFrame    = 255 + 7
	maxBuffered = 4 * maxFrame
)

// hsuLink: frames arrive as a byte stream; bytes after one frame stay
// buffered for the next.
type hsuLink struct {
	p   Port
	buf []byte
}

func (l *hsuLink) String() string { return l.p.String() }

func (l *hsuLink) writeFrame(f []byte) error {
	if _, err := l.p.Write(f); err != nil {
		return fmt.Errorf("pn532: hsu write: %w", err)
	}
	return nil
}

func (l *hsuLink) readFrame(ctx context.Context, _ int) ([]byte, error) {
	// Only ctx ends the read: AfterFunc runs once ctx is done, so a read
	// released by it always finds ctx.Err() set.
	_ = l.p.SetReadDeadline(time.Time{})
	stop := context.AfterFunc(ctx, func() { _ = l.p.SetReadDeadline(time.Unix(1, 0)) })
	defer func() {
		stop()
		_ = l.p.SetReadDeadline(time.Time{})
	}()
	tmp := make([]byte, 64)
	for {
		_, _, used, err := parseFrame(l.buf)
		if !errors.Is(err, errIncomplete) {
			if used == 0 {
				// Unparseable from its start: drop it all, the next
				// command starts clean.
				used = len(l.buf)
			}
			end := used
			if err != nil {
				// A broken header consumes only its start code, so a frame starting
				// inside it is still found; the caller re-parses what it gets, so
				// hand it the whole header.
				end = min(len(l.buf), used+2)
			}
			f := bytes.Clone(l.buf[:end])
			l.buf = append([]byte(nil), l.buf[used:]...)
			return f, nil
		}
		if len(l.buf) > maxBuffered {
			// Noise without a start code: keep only what could still be one frame.
			l.buf = append([]byte(nil), l.buf[len(l.buf)-maxFrame:]...)
		}
		n, err := l.p.Read(tmp)
		l.buf = append(l.buf, tmp[:n]...)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("pn532: hsu: %w", ctx.Err())
			}
			return nil, fmt.Errorf("pn532: hsu read: %w", err)
		}
	}
}
