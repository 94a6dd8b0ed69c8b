// Package rdm6300 reads 125 kHz EM4100 cards from an RDM6300-style reader
// on a UART (9600 8N1, TX only). While a card is in the field the module
// repeats a 14-byte frame (RDM6300 datasheet, "Output format"):
//
//	02 | 10 ASCII hex digits: version + 4-byte card id | 2 ASCII hex: XOR of the 5 bytes | 03
package rdm6300

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"labelstation/drivers/badge"
	"labelstation/drivers/serialport"
)

const (
	stx      = 0x02
	etx      = 0x03
	frameLen = 14
)

// Port is the UART; serialport.Port implements it.
type Port interface {
	io.ReadCloser
	SetReadDeadline(time.Time) error
	String() string
}

// Dev is one RDM6300 reader.
type Dev struct {
	p      Port
	buf    []byte
	mu     sync.Mutex
	halted bool
}

var _ badge.Reader = (*Dev)(nil)

// Open opens the reader on a tty at 9600 8N1.
func Open(path string) (*Dev, error) {
	p, err := serialport.Open(path, serialport.Config{Baud: 9600})
	if err != nil {
		return nil, fmt.Errorf("rdm6300: %w", err)
	}
	return New(p), nil
}

// New reads from an already open port.
func New(p Port) *Dev { return &Dev{p: p} }

func (d *Dev) String() string { return "rdm6300(" + d.p.String() + ")" }

// ErrChecksum is wrapped (with badge.ErrBadFrame) when the XOR does not match.
var ErrChecksum = errors.New("rdm6300: checksum mismatch")

// Read implements badge.Reader; the UID is the 5 bytes of the EM4100 id
// (version byte first). A corrupt frame yields an error wrapping
// badge.ErrBadFrame; the reader stays usable.
func (d *Dev) Read(ctx context.Context) (badge.Badge, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.halted {
		return badge.Badge{}, badge.ErrHalted
	}
	_ = d.p.SetReadDeadline(time.Time{})
	stop := context.AfterFunc(ctx, func() { _ = d.p.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	tmp := make([]byte, 64)
	for {
		if b, ok, err := d.next(); ok || err != nil {
			return b, err
		}
		n, err := d.p.Read(tmp)
		d.buf = append(d.buf, tmp[:n]...)
		if err != nil {
			if ctx.Err() != nil {
				return badge.Badge{}, ctx.Err()
			}
			return badge.Badge{}, fmt.Errorf("rdm6300: %s: %w", d.p, err)
		}
	}
}

// next takes one frame off the buffer, resynchronising on STX.
func (d *Dev) next() (badge.Badge, bool, error) {
	for len(d.buf) > 0 && d.buf[0] != stx {
		d.buf = d.buf[1:]
	}
	if len(d.buf) < frameLen {
		return badge.Badge{}, false, nil
	}
	f := d.buf[:frameLen]
	if f[frameLen-1] != etx {
		// Not a frame start after all: drop this STX and look for the next.
		d.buf = d.buf[1:]
		return badge.Badge{}, false, fmt.Errorf("rdm6300: frame % x: no ETX at byte 14: %w", f, badge.ErrBadFrame)
	}
	d.buf = d.buf[frameLen:]
	var raw [6]byte
	if _, err := hex.Decode(raw[:], f[1:13]); err != nil {
		return badge.Badge{}, false, fmt.Errorf("rdm6300: frame %q: %v: %w", f[1:13], err, badge.ErrBadFrame)
	}
	var x byte
	for _, c := range raw[:5] {
		x ^= c
	}
	if x != raw[5] {
		return badge.Badge{}, false, fmt.Errorf("%w: frame %q: XOR %02X, frame says %02X: %w", ErrChecksum, f[1:13], x, raw[5], badge.ErrBadFrame)
	}
	return badge.Badge{UID: append([]byte(nil), raw[:5]...), Tech: badge.TechEM4100}, true, nil
}

// Halt closes the port; the module has no sleep command.
func (d *Dev) Halt() error {
	_ = d.p.SetReadDeadline(time.Unix(1, 0))
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.halted {
		return nil
	}
	d.halted = true
	return d.p.Close()
}
