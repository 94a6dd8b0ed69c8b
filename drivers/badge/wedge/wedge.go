// Package wedge reads USB "keyboard wedge" badge readers through Linux input
// events (/dev/input/eventN). The device is grabbed exclusively (EVIOCGRAB)
// so card numbers are not typed into the console; the reader types the
// number's digits and Enter.
package wedge

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"labelstation/drivers/badge"
)

// Linux input event codes, include/uapi/linux/input-event-codes.h.
const (
	evKey      = 0x01
	keyEnter   = 28
	keyKPEnter = 96
	valPress   = 1
)

var keyChar = map[uint16]byte{
	2: '1', 3: '2', 4: '3', 5: '4', 6: '5', 7: '6', 8: '7', 9: '8', 10: '9', 11: '0',
	79: '1', 80: '2', 81: '3', 75: '4', 76: '5', 77: '6', 71: '7', 72: '8', 73: '9', 82: '0', // keypad
	30: 'A', 48: 'B', 46: 'C', 32: 'D', 18: 'E', 33: 'F',
}

// evSize is sizeof(struct input_event): struct timeval (two longs) + type
// u16 + code u16 + value s32; 24 bytes on arm64, 16 on 32-bit ARM.
var evSize = 2*strconv.IntSize/8 + 8

// eviocgrab is _IOW('E', 0x90, int), linux/input.h.
const eviocgrab = 0x40044590

// Opts configure a wedge reader.
type Opts struct {
	// Digits is "dec" (default) when the reader types a decimal number,
	// "hex" when it types hex.
	Digits string
	// MaxLen drops a line longer than this many characters; default 32.
	MaxLen int
}

// Events is the event device; *os.File implements it.
type Events interface {
	io.ReadCloser
	SetReadDeadline(time.Time) error
}

// Dev is one keyboard-wedge reader.
type Dev struct {
	name   string
	ev     Events
	opt    Opts
	mu     sync.Mutex
	line   []byte
	skip   bool // dropping the rest of an overlong line
	halted bool
}

var _ badge.Reader = (*Dev)(nil)

// Open opens and exclusively grabs an event device.
func Open(path string, opt Opts) (*Dev, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("wedge: %w", err)
	}
	rc, err := f.SyscallConn()
	if err == nil {
		var gerr error
		err = rc.Control(func(fd uintptr) { gerr = unix.IoctlSetInt(int(fd), eviocgrab, 1) })
		if err == nil {
			err = gerr
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("wedge: %s: grab: %w", path, err)
	}
	return New(path, f, opt)
}

// New reads events from ev (a pipe in tests).
func New(name string, ev Events, opt Opts) (*Dev, error) {
	switch opt.Digits {
	case "":
		opt.Digits = "dec"
	case "dec", "hex":
	default:
		return nil, fmt.Errorf("wedge: digits %q: want dec or hex", opt.Digits)
	}
	if opt.MaxLen == 0 {
		opt.MaxLen = 32
	}
	return &Dev{name: name, ev: ev, opt: opt}, nil
}

func (d *Dev) String() string { return "wedge(" + d.name + ")" }

// Read implements badge.Reader. A decimal number becomes the big-endian
// bytes of its value, at least 4 bytes; hex digits are decoded as typed.
func (d *Dev) Read(ctx context.Context) (badge.Badge, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.halted {
		return badge.Badge{}, badge.ErrHalted
	}
	_ = d.ev.SetReadDeadline(time.Time{})
	stop := context.AfterFunc(ctx, func() { _ = d.ev.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	ev := make([]byte, evSize)
	for {
		if _, err := io.ReadFull(d.ev, ev); err != nil {
			if ctx.Err() != nil {
				return badge.Badge{}, ctx.Err()
			}
			return badge.Badge{}, fmt.Errorf("wedge: %s: %w", d.name, err)
		}
		typ := binary.NativeEndian.Uint16(ev[evSize-8:])
		code := binary.NativeEndian.Uint16(ev[evSize-6:])
		val := int32(binary.NativeEndian.Uint32(ev[evSize-4:]))
		if typ != evKey || val != valPress {
			continue
		}
		if code == keyEnter || code == keyKPEnter {
			line := string(d.line)
			d.line = d.line[:0]
			if d.skip || line == "" {
				d.skip = false
				continue
			}
			uid, err := d.decode(line)
			if err != nil {
				return badge.Badge{}, err
			}
			return badge.Badge{UID: uid, Tech: badge.TechWedge}, nil
		}
		c, ok := keyChar[code]
		if !ok || d.skip {
			continue
		}
		if len(d.line) >= d.opt.MaxLen {
			d.line = d.line[:0]
			d.skip = true
			return badge.Badge{}, fmt.Errorf("wedge: %s: line longer than %d characters: %w", d.name, d.opt.MaxLen, badge.ErrBadFrame)
		}
		d.line = append(d.line, c)
	}
}

func (d *Dev) decode(line string) ([]byte, error) {
	if d.opt.Digits == "hex" {
		if len(line)%2 == 1 {
			line = "0" + line
		}
		b, err := hex.DecodeString(line)
		if err != nil {
			return nil, fmt.Errorf("wedge: %s: %q: %v: %w", d.name, line, err, badge.ErrBadFrame)
		}
		return b, nil
	}
	n, ok := new(big.Int).SetString(line, 10)
	if !ok {
		return nil, fmt.Errorf("wedge: %s: %q is not a decimal number: %w", d.name, line, badge.ErrBadFrame)
	}
	b := n.Bytes()
	if len(b) < 4 {
		b = append(make([]byte, 4-len(b)), b...)
	}
	return b, nil
}

// Halt releases the grab by closing the device.
func (d *Dev) Halt() error {
	_ = d.ev.SetReadDeadline(time.Unix(1, 0))
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.halted {
		return nil
	}
	d.halted = true
	if err := d.ev.Close(); err != nil {
		return fmt.Errorf("wedge: %s: close: %w", d.name, err)
	}
	return nil
}
