package pn532

import (
	"bytes"
	"context"
	"errors"
	"math/bits"
	"slices"
	"testing"
	"time"

	"github.com/creack/pty"
	"periph.io/x/conn/v3/conntest"
	"periph.io/x/conn/v3/i2c/i2ctest"
	"periph.io/x/conn/v3/spi/spitest"

	"labelstation/drivers/badge"
	"labelstation/drivers/serialport"
)

// Frames derived from the NXP PN532 User Manual UM0701-02. Normal frame
// (§6.2.1.1): 00 00 FF LEN LCS TFI PD… DCS 00, LEN+LCS = 0 and
// TFI+PD…+DCS = 0 (mod 256). TFI D4 host→PN532, D5 PN532→host; the
// response code is the command code + 1.
var (
	// ACK (§6.2.1.3).
	ack = []byte{0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00}
	// SAMConfiguration (§7.2.10) D4 14 01 14 01: LEN 5, LCS FB,
	// D4+14+01+14+01 = FE so DCS 02. Reply D5 15: D5+15 = EA, DCS 16.
	samCmd   = []byte{0x00, 0x00, 0xFF, 0x05, 0xFB, 0xD4, 0x14, 0x01, 0x14, 0x01, 0x02, 0x00}
	samReply = []byte{0x00, 0x00, 0xFF, 0x02, 0xFE, 0xD5, 0x15, 0x16, 0x00}
	// GetFirmwareVersion (§7.2.2) D4 02: D4+02 = D6, DCS 2A. Reply
	// D5 03 IC=32 Ver=01 Rev=06 Support=07: sum 118, DCS E8.
	fwCmd   = []byte{0x00, 0x00, 0xFF, 0x02, 0xFE, 0xD4, 0x02, 0x2A, 0x00}
	fwReply = []byte{0x00, 0x00, 0xFF, 0x06, 0xFA, 0xD5, 0x03, 0x32, 0x01, 0x06, 0x07, 0xE8, 0x00}
	// RFConfiguration (§7.3.1) CfgItem 05 MaxRetries FF 01 02:
	// D4 32 05 FF 01 02 sums to 20D, DCS F3. Reply D5 33: sum 108, DCS F8.
	retriesCmd = []byte{0x00, 0x00, 0xFF, 0x06, 0xFA, 0xD4, 0x32, 0x05, 0xFF, 0x01, 0x02, 0xF3, 0x00}
	rfReply    = []byte{0x00, 0x00, 0xFF, 0x02, 0xFE, 0xD5, 0x33, 0xF8, 0x00}
	// RFConfiguration CfgItem 01 RF field off: D4 32 01 00 sums to 107, DCS F9.
	rfOffCmd = []byte{0x00, 0x00, 0xFF, 0x04, 0xFC, 0xD4, 0x32, 0x01, 0x00, 0xF9, 0x00}
	// InListPassiveTarget (§7.3.5) MaxTg 1 BrTy 0 (106 kbps type A):
	// D4 4A 01 00 sums to 11F, DCS E1.
	listCmd = []byte{0x00, 0x00, 0xFF, 0x04, 0xFC, 0xD4, 0x4A, 0x01, 0x00, 0xE1, 0x00}
	// No target: D5 4B 00, sum 120, DCS E0.
	listNone = []byte{0x00, 0x00, 0xFF, 0x03, 0xFD, 0xD5, 0x4B, 0x00, 0xE0, 0x00}
	// One MIFARE Classic 1K (SENS_RES 00 04, SEL_RES 08), NFCID1 DE AD BE EF:
	// D5 4B 01 01 00 04 08 04 DE AD BE EF, LEN 0C LCS F4, DCS 96.
	listMifare = []byte{0x00, 0x00, 0xFF, 0x0C, 0xF4, 0xD5, 0x4B, 0x01, 0x01, 0x00, 0x04, 0x08, 0x04, 0xDE, 0xAD, 0xBE, 0xEF, 0x96, 0x00}
	// One NTAG (SENS_RES 00 44, SEL_RES 00) with 7-byte NFCID1
	// 04 11 22 33 44 55 66: LEN 0F LCS F1, DCS 2A.
	listNTAG = []byte{0x00, 0x00, 0xFF, 0x0F, 0xF1, 0xD5, 0x4B, 0x01, 0x01, 0x00, 0x44, 0x00, 0x07, 0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x2A, 0x00}
)

// Read sizes the driver uses: frame overhead 8 + response code 1 + max params.
const (
	samLen  = 9
	fwLen   = 9 + 4
	rfLen   = 9
	listLen = 9 + maxTargetA
)

// padded is what the PN532 clocks out for a fixed-length read: the frame,
// then zeros.
func padded(f []byte, n int) []byte {
	return append(append([]byte(nil), f...), make([]byte, n-len(f))...)
}

// i2cCmd is one command on I²C (UM §6.2.4, address 0x24): write the frame;
// poll the status byte (bit 0 RDY) until ready; read status + ACK; poll;
// read status + response. busy inserts one "not ready" status poll first.
func i2cCmd(cmd, reply []byte, n int, busy bool) []i2ctest.IO {
	var ops []i2ctest.IO
	ops = append(ops, i2ctest.IO{Addr: 0x24, W: cmd})
	if busy {
		ops = append(ops, i2ctest.IO{Addr: 0x24, R: []byte{0x00}})
	}
	ops = append(ops,
		i2ctest.IO{Addr: 0x24, R: []byte{0x01}},
		i2ctest.IO{Addr: 0x24, R: append([]byte{0x01}, ack...)},
		i2ctest.IO{Addr: 0x24, R: []byte{0x01}},
		i2ctest.IO{Addr: 0x24, R: append([]byte{0x01}, padded(reply, n)...)},
	)
	return ops
}

func i2cInit() []i2ctest.IO {
	var ops []i2ctest.IO
	ops = append(ops, i2cCmd(samCmd, samReply, samLen, true)...)
	ops = append(ops, i2cCmd(fwCmd, fwReply, fwLen, false)...)
	ops = append(ops, i2cCmd(retriesCmd, rfReply, rfLen, false)...)
	return ops
}

func now(time.Duration) <-chan time.Time {
	c := make(chan time.Time, 1)
	c <- time.Time{}
	return c
}

func TestI2CReadCard(t *testing.T) {
	ops := i2cInit()
	ops = append(ops, i2cCmd(listCmd, listNone, listLen, false)...)
	ops = append(ops, i2cCmd(listCmd, listMifare, listLen, true)...)
	ops = append(ops, i2cCmd(listCmd, listNTAG, listLen, false)...)
	ops = append(ops, i2cCmd(rfOffCmd, rfReply, rfLen, false)...)
	bus := &i2ctest.Playback{Ops: ops, DontPanic: true}
	// The status polls wait Poll (2ms); the card searches wait Idle (50ms):
	// after "no card", and before searching again after a card.
	var waits []time.Duration
	after := func(d time.Duration) <-chan time.Time {
		waits = append(waits, d)
		return now(d)
	}
	d, err := NewI2C(t.Context(), bus, Opts{After: after})
	if err != nil {
		t.Fatal(err)
	}
	if d.Firmware != (Firmware{0x32, 1, 6, 7}) {
		t.Fatalf("firmware %+v", d.Firmware)
	}
	b, err := d.Read(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if b.Tech != badge.TechISO14443A || !bytes.Equal(b.UID, []byte{0xDE, 0xAD, 0xBE, 0xEF}) {
		t.Fatalf("badge %v", b)
	}
	b, err = d.Read(t.Context())
	if err != nil || !bytes.Equal(b.UID, []byte{0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66}) {
		t.Fatalf("badge %v, %v", b, err)
	}
	if err := d.Halt(); err != nil {
		t.Fatal(err)
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
	ms := time.Millisecond
	if want := []time.Duration{2 * ms, 50 * ms, 2 * ms, 50 * ms}; !slices.Equal(waits, want) {
		t.Fatalf("waits %v, want %v", waits, want)
	}
}

func TestI2CBadResponses(t *testing.T) {
	// A response whose DCS is wrong is NACKed (UM §6.2.1.4) and resent.
	bad := bytes.Clone(listMifare)
	bad[len(bad)-2] ^= 0xFF
	ops := i2cInit()
	ops = append(ops, i2ctest.IO{Addr: 0x24, W: listCmd},
		i2ctest.IO{Addr: 0x24, R: []byte{0x01}},
		i2ctest.IO{Addr: 0x24, R: append([]byte{0x01}, ack...)},
		i2ctest.IO{Addr: 0x24, R: []byte{0x01}},
		i2ctest.IO{Addr: 0x24, R: append([]byte{0x01}, padded(bad, listLen)...)},
		// NACK frame 00 00 FF FF 00 00.
		i2ctest.IO{Addr: 0x24, W: []byte{0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00}},
		i2ctest.IO{Addr: 0x24, R: []byte{0x01}},
		i2ctest.IO{Addr: 0x24, R: append([]byte{0x01}, padded(listMifare, listLen)...)},
	)
	// Then the error frame 00 00 FF 01 FF 7F 81 00 (§6.2.1.5).
	ops = append(ops, i2cCmd(listCmd, []byte{0x00, 0x00, 0xFF, 0x01, 0xFF, 0x7F, 0x81, 0x00}, listLen, false)...)
	// Then a reply claiming a 5-byte NFCID1, which ISO 14443-3 does not have:
	// D5 4B 01 01 00 04 08 05 01 02 03 04 05 sums to 0x142, DCS BE.
	ops = append(ops, i2cCmd(listCmd, []byte{0x00, 0x00, 0xFF, 0x0D, 0xF3, 0xD5, 0x4B, 0x01, 0x01, 0x00, 0x04, 0x08, 0x05, 0x01, 0x02, 0x03, 0x04, 0x05, 0xBE, 0x00}, listLen, false)...)
	bus := &i2ctest.Playback{Ops: ops, DontPanic: true}
	d, err := NewI2C(t.Context(), bus, Opts{After: now})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := d.Read(t.Context()); err != nil || !bytes.Equal(b.UID, []byte{0xDE, 0xAD, 0xBE, 0xEF}) {
		t.Fatalf("after NACK: %v, %v", b, err)
	}
	if _, err := d.Read(t.Context()); !errors.Is(err, ErrSyntax) {
		t.Fatalf("error frame: %v", err)
	}
	_, err = d.Read(t.Context())
	if !errors.Is(err, badge.ErrBadFrame) {
		t.Fatalf("bad NFCIDLength: %v", err)
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestI2CNotAPN532(t *testing.T) {
	// GetFirmwareVersion reply with IC 0x33: D5 03 33 01 06 07 sums to 119, DCS E7.
	ops := i2cCmd(samCmd, samReply, samLen, false)
	ops = append(ops, i2cCmd(fwCmd, []byte{0x00, 0x00, 0xFF, 0x06, 0xFA, 0xD5, 0x03, 0x33, 0x01, 0x06, 0x07, 0xE7, 0x00}, fwLen, false)...)
	bus := &i2ctest.Playback{Ops: ops, DontPanic: true}
	if _, err := NewI2C(t.Context(), bus, Opts{After: now}); err == nil {
		t.Fatal("IC 0x33 accepted")
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestI2CBusyUntilTimeout(t *testing.T) {
	// The PN532 never becomes ready: the command gives up when ctx ends.
	ops := []i2ctest.IO{{Addr: 0x24, W: samCmd}, {Addr: 0x24, R: []byte{0x00}}}
	bus := &i2ctest.Playback{Ops: ops, DontPanic: true}
	ctx, cancel := context.WithCancel(t.Context())
	after := func(time.Duration) <-chan time.Time { cancel(); return nil }
	if _, err := NewI2C(ctx, bus, Opts{After: after}); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
}

// The SPI wire carries each byte LSB first (UM §6.2.5) and the driver runs
// the port MSB first, so every recorded byte is the datasheet byte with its
// bits reversed: DW 01→80, SR 02→40, DR 03→C0, RDY 01→80.
func rev(b []byte) []byte {
	r := make([]byte, len(b))
	for i, c := range b {
		r[i] = bits.Reverse8(c)
	}
	return r
}

func spiCmd(cmd, reply []byte, n int, busy bool) []conntest.IO {
	sr := []byte{0x40, 0x00} // status read 02, dummy
	var ops []conntest.IO
	ops = append(ops, conntest.IO{W: append([]byte{0x80}, rev(cmd)...)})
	if busy {
		ops = append(ops, conntest.IO{W: sr, R: []byte{0x00, 0x00}})
	}
	ops = append(ops,
		conntest.IO{W: sr, R: []byte{0x00, 0x80}},
		conntest.IO{W: append([]byte{0xC0}, make([]byte, 6)...), R: append([]byte{0x00}, rev(ack)...)},
		conntest.IO{W: sr, R: []byte{0x00, 0x80}},
		conntest.IO{W: append([]byte{0xC0}, make([]byte, n)...), R: append([]byte{0x00}, rev(padded(reply, n))...)},
	)
	return ops
}

func TestSPIReadCard(t *testing.T) {
	var ops []conntest.IO
	ops = append(ops, spiCmd(samCmd, samReply, samLen, true)...)
	ops = append(ops, spiCmd(fwCmd, fwReply, fwLen, false)...)
	ops = append(ops, spiCmd(retriesCmd, rfReply, rfLen, false)...)
	ops = append(ops, spiCmd(listCmd, listMifare, listLen, false)...)
	port := &spitest.Playback{Playback: conntest.Playback{Ops: ops, DontPanic: true}}
	d, err := NewSPI(t.Context(), port, Opts{After: now})
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.Read(t.Context())
	if err != nil || !bytes.Equal(b.UID, []byte{0xDE, 0xAD, 0xBE, 0xEF}) {
		t.Fatalf("badge %v, %v", b, err)
	}
	if err := port.Close(); err != nil {
		t.Fatal(err)
	}
}

// fakeHSU is a PN532 on the far end of a pty: it skips the wake-up
// preamble, checks each command frame against the script, and answers ACK +
// reply, as the chip does on HSU (UM §6.2.3).
func fakeHSU(t *testing.T, script [][2][]byte) *serialport.Port {
	t.Helper()
	raw := make([][2][]byte, len(script))
	for i, step := range script {
		raw[i] = [2][]byte{step[0], append(bytes.Clone(ack), step[1]...)}
	}
	return fakeHSURaw(t, raw)
}

// fakeHSURaw is fakeHSU whose answers are sent as given (ACK included or not).
func fakeHSURaw(t *testing.T, script [][2][]byte) *serialport.Port {
	t.Helper()
	master, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	p, err := serialport.Open(tty.Name(), serialport.Config{Baud: 115200})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		p.Close()
		master.Close()
		tty.Close()
		<-done
	})
	go func() {
		defer close(done)
		var in []byte
		buf := make([]byte, 128)
		for _, step := range script {
			for !bytes.Contains(in, step[0]) {
				n, err := master.Read(buf)
				if err != nil {
					t.Errorf("fake PN532: %v before % x", err, step[0])
					return
				}
				in = append(in, buf[:n]...)
			}
			in = in[bytes.Index(in, step[0])+len(step[0]):]
			if _, err := master.Write(step[1]); err != nil {
				return
			}
		}
	}()
	return p
}

func TestHSUReadCard(t *testing.T) {
	p := fakeHSU(t, [][2][]byte{
		{append(bytes.Clone(hsuWakeup), samCmd...), samReply},
		{fwCmd, fwReply},
		{retriesCmd, rfReply},
		{listCmd, listNone},
		{listCmd, listNTAG},
	})
	d, err := NewHSU(t.Context(), p, Opts{After: now})
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.Read(t.Context())
	if err != nil || !bytes.Equal(b.UID, []byte{0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66}) {
		t.Fatalf("badge %v, %v", b, err)
	}
	// No more script: a Read is cancelled by ctx.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := d.Read(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
}

func TestBuildAndParseFrame(t *testing.T) {
	if f := buildFrame(cmdInListPassiveTarget, []byte{0x01, 0x00}); !bytes.Equal(f, listCmd) {
		t.Fatalf("buildFrame = % x, want % x", f, listCmd)
	}
	// Garbage and zero padding before the start code are skipped.
	kind, data, used, err := parseFrame(append([]byte{0xAA, 0x00, 0x00}, fwReply...))
	if err != nil || kind != kindInfo || !bytes.Equal(data, []byte{0x03, 0x32, 0x01, 0x06, 0x07}) || used != 3+len(fwReply)-1 {
		t.Fatalf("parse: %v % x %d %v", kind, data, used, err)
	}
	bad := bytes.Clone(fwReply)
	bad[4] = 0xFB // LCS
	if _, _, _, err := parseFrame(bad); !errors.Is(err, ErrChecksum) || !errors.Is(err, badge.ErrBadFrame) {
		t.Fatalf("bad LCS: %v", err)
	}
	if _, _, _, err := parseFrame(fwReply[:8]); !errors.Is(err, errIncomplete) {
		t.Fatalf("truncated: %v", err)
	}
}

// BenchmarkParseTargetFrame parses one InListPassiveTarget reply frame.
func BenchmarkParseTargetFrame(b *testing.B) {
	raw := padded(listNTAG, listLen)
	b.ReportAllocs()
	for b.Loop() {
		_, data, _, err := parseFrame(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := parseTargetA(data[1:]); err != nil {
			b.Fatal(err)
		}
	}
}
