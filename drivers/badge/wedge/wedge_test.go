package wedge

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"testing"

	"labelstation/drivers/badge"
)

// event encodes one struct input_event (linux/input.h) for this platform:
// timeval (zero here), type, code, value.
func event(typ, code uint16, val int32) []byte {
	b := make([]byte, evSize)
	binary.NativeEndian.PutUint16(b[evSize-8:], typ)
	binary.NativeEndian.PutUint16(b[evSize-6:], code)
	binary.NativeEndian.PutUint32(b[evSize-4:], uint32(val))
	return b
}

// typed is what a wedge reader emits for s: for each key an EV_MSC scan
// code, key down, EV_SYN, key up, EV_SYN, as the HID keyboard driver does.
func typed(s string) []byte {
	code := map[rune]uint16{'1': 2, '2': 3, '3': 4, '4': 5, '5': 6, '6': 7, '7': 8, '8': 9, '9': 10, '0': 11, 'A': 30, 'F': 33, '\n': 28}
	var b []byte
	for _, r := range s {
		c := code[r]
		b = append(b, event(0x04, 4, 0x7001e)...) // EV_MSC MSC_SCAN
		b = append(b, event(evKey, c, 1)...)
		b = append(b, event(0, 0, 0)...)
		b = append(b, event(evKey, c, 0)...)
		b = append(b, event(0, 0, 0)...)
	}
	return b
}

func TestWedgeDecimal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	d, err := New("pipe", r, Opts{MaxLen: 12})
	if err != nil {
		t.Fatal(err)
	}
	// 0014930660 = 0x00E3D2E4; an empty line; a 15-digit line (too long); 4294967296 = 2^32.
	if _, err := w.Write(typed("0014930660\n\n123456789012345\n4294967296\n")); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	b, err := d.Read(ctx)
	if err != nil || b.Tech != badge.TechWedge || !bytes.Equal(b.UID, []byte{0x00, 0xE3, 0xD2, 0xE4}) {
		t.Fatalf("badge %v, %v", b, err)
	}
	if s, _ := (badge.NumberFormat{Encoding: "dec", Width: 10}).Format(b.UID); s != "0014930660" {
		t.Errorf("formatted back: %q", s)
	}
	if _, err := d.Read(ctx); !errors.Is(err, badge.ErrBadFrame) {
		t.Fatalf("long line: %v", err)
	}
	// The rest of the long line is dropped up to its Enter.
	b, err = d.Read(ctx)
	if err != nil || !bytes.Equal(b.UID, []byte{0x01, 0, 0, 0, 0}) {
		t.Fatalf("2^32: %v, %v", b, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := d.Read(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if err := d.Halt(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Read(ctx); !errors.Is(err, badge.ErrHalted) {
		t.Fatalf("halted: %v", err)
	}
}

func TestWedgeHex(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	d, err := New("pipe", r, Opts{Digits: "hex"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Halt()
	if _, err := w.Write(typed("AF01F\n")); err != nil {
		t.Fatal(err)
	}
	b, err := d.Read(t.Context())
	if err != nil || !bytes.Equal(b.UID, []byte{0x0A, 0xF0, 0x1F}) {
		t.Fatalf("badge %v, %v", b, err)
	}
}

func TestOpenNotAnEventDevice(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "event")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := Open(f.Name(), Opts{}); err == nil {
		t.Fatal("grabbed a regular file")
	}
	if _, err := New("x", nil, Opts{Digits: "oct"}); err == nil {
		t.Fatal("digits oct accepted")
	}
}
