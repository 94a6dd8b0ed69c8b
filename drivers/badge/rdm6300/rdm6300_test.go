package rdm6300

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/creack/pty"

	"labelstation/drivers/badge"
)

// Frames per the RDM6300 datasheet: STX, 10 hex digits (version + 4-byte
// id), 2 hex digits XOR of those 5 bytes, ETX.
//
// Card 0x62 00 E3 D2 E4: 62^00=62, ^E3=81, ^D2=53, ^E4=B7 -> checksum B7.
const good = "\x026200E3D2E4B7\x03"

func TestReadOverPty(t *testing.T) {
	master, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer master.Close()
	defer tty.Close()
	d, err := Open(tty.Name())
	if err != nil {
		t.Fatal(err)
	}
	stream := "\x00\xff" + // line noise at power-up
		"\x026200E3D2E4B8\x03" + // checksum off by one
		"\x026200E3ZZE4B7\x03" + // not hex
		good + good // the module repeats while the card is held
	if _, err := master.Write([]byte(stream)); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	_, err = d.Read(ctx)
	if !errors.Is(err, ErrChecksum) || !errors.Is(err, badge.ErrBadFrame) {
		t.Fatalf("first read: %v, want checksum error", err)
	}
	if _, err = d.Read(ctx); !errors.Is(err, badge.ErrBadFrame) {
		t.Fatalf("second read: %v, want bad frame", err)
	}
	for range 2 {
		b, err := d.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if b.Tech != badge.TechEM4100 || !bytes.Equal(b.UID, []byte{0x62, 0x00, 0xE3, 0xD2, 0xE4}) {
			t.Fatalf("badge %v", b)
		}
	}
	// The Pump turns the held card into one event and skips bad frames.
	if _, err := master.Write([]byte(good + "\x02bad")); err != nil {
		t.Fatal(err)
	}
	out := make(chan badge.Badge, 2)
	pctx, cancel := context.WithCancel(ctx)
	errc := make(chan error)
	go func() { errc <- badge.Pump(pctx, d, out, badge.PumpOptions{}) }()
	b := <-out
	if f, _ := (badge.NumberFormat{Encoding: "dec", Bits: 32}).Format(b.UID); f != "14930660" {
		// 0x00E3D2E4 = 14930660, the number printed on most EM4100 fobs.
		t.Errorf("card number %q", f)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("pump: %v", err)
	}
	if err := d.Halt(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Read(ctx); !errors.Is(err, badge.ErrHalted) {
		t.Fatalf("after Halt: %v", err)
	}
}

func TestReadCancelled(t *testing.T) {
	master, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer master.Close()
	defer tty.Close()
	d, err := Open(tty.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Halt()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if _, err := d.Read(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
}
