package pn532

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"periph.io/x/conn/v3/i2c/i2ctest"

	"labelstation/drivers/badge"
)

// Edge frames, each derived from the frame layout of the PN532 User Manual UM0701-02 §6.2.1:
// 00 00 FF LEN LCS TFI PD… DCS 00 with LEN+LCS ≡ 0 and TFI+PD…+DCS ≡ 0 (mod 256).
func TestParseFrameEdges(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		kind    frameKind
		data    []byte
		used    int
		wantErr error // nil: no error
	}{
		// The ACK 00 00 FF 00 FF 00 with its LCS byte (FF) lost on UART: LEN 00, LCS 00.
		// LEN+LCS ≡ 0 holds, but a normal frame has LEN ≥ 1 (TFI). It must be a bad frame,
		// consuming only the start code 00 FF found at index 1.
		{"ack without LCS", []byte{0x00, 0x00, 0xFF, 0x00, 0x00}, 0, nil, 3, ErrMalformed},
		{"LEN 0 LCS 0 alone", []byte{0x00, 0xFF, 0x00, 0x00}, 0, nil, 2, badge.ErrBadFrame},
		// The ACK without its postamble still reads as an ACK: 00 00 FF 00 FF.
		{"ack without postamble", []byte{0x00, 0x00, 0xFF, 0x00, 0xFF}, kindACK, nil, 5, nil},
		{"ack", ack, kindACK, nil, 5, nil},
		// NACK (§6.2.1.4): 00 00 FF FF 00 00.
		{"nack", []byte{0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00}, kindNACK, nil, 5, nil},
		// Error frame (§6.2.1.5): 00 00 FF 01 FF 7F 81 00; 7F+81 = 100.
		{"error frame", []byte{0x00, 0x00, 0xFF, 0x01, 0xFF, 0x7F, 0x81, 0x00}, kindError, nil, 7, ErrSyntax},
		// LEN 1 (TFI only): 00 00 FF 01 FF D5 2B 00; D5+2B = 100. Parses with no data; the
		// caller rejects it for lacking a response code.
		{"TFI only", []byte{0x00, 0x00, 0xFF, 0x01, 0xFF, 0xD5, 0x2B, 0x00}, kindInfo, []byte{}, 7, nil},
		// LEN 06 with LCS FB: 06+FB = 101, off by one.
		{"LCS off by one", []byte{0x00, 0x00, 0xFF, 0x06, 0xFB, 0xD5, 0x03, 0x32, 0x01, 0x06, 0x07, 0xE8, 0x00}, 0, nil, 3, ErrChecksum},
		// Extended frame (§6.2.1.2): 00 00 FF FF FF LENM LENL LCS TFI…; never asked for.
		{"extended", []byte{0x00, 0x00, 0xFF, 0xFF, 0xFF, 0x00, 0x02, 0xFE, 0xD5, 0x03, 0x28, 0x00}, 0, nil, 3, ErrMalformed},
		// Our own command echoed back (TFI D4): GetFirmwareVersion 00 00 FF 02 FE D4 02 2A 00.
		{"host TFI", fwCmd, 0, nil, 8, errors.New("TFI")},
		// LEN FF, LCS 01 (FF+01 = 100) announces 255 bytes; only 2 follow.
		{"LEN 255 truncated", []byte{0x00, 0x00, 0xFF, 0xFF, 0x01, 0xD5, 0x03}, 0, nil, 0, errIncomplete},
		{"empty", nil, 0, nil, 0, errIncomplete},
		{"start code only", []byte{0x00, 0xFF}, 0, nil, 0, errIncomplete},
		{"header without LCS", []byte{0x00, 0x00, 0xFF, 0x06}, 0, nil, 0, errIncomplete},
		{"noise", []byte{0x55, 0xAA, 0x13, 0x37}, 0, nil, 0, errIncomplete},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kind, data, used, err := parseFrame(tc.in)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("error %v", err)
			case tc.wantErr != nil && err == nil:
				t.Fatalf("no error, want %v", tc.wantErr)
			case tc.wantErr != nil && tc.wantErr.Error() == "TFI":
				if errors.Is(err, badge.ErrBadFrame) {
					t.Fatalf("%v: a well-formed frame from the wrong side is not a line glitch", err)
				}
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if err == nil && (kind != tc.kind || !bytes.Equal(data, tc.data)) {
				t.Fatalf("kind %v data % x, want %v % x", kind, data, tc.kind, tc.data)
			}
			if used != tc.used {
				t.Fatalf("used %d, want %d", used, tc.used)
			}
		})
	}
}

// One byte of the ACK lost on UART: the damaged ACK is skipped and the response read; before,
// a LEN 0 LCS 0 header crashed the parser.
func TestHSULostACKByte(t *testing.T) {
	ackNoLCS := []byte{0x00, 0x00, 0xFF, 0x00, 0x00}
	p := fakeHSURaw(t, [][2][]byte{
		{append(bytes.Clone(hsuWakeup), samCmd...), append(bytes.Clone(ack), samReply...)},
		{fwCmd, append(bytes.Clone(ack), fwReply...)},
		{retriesCmd, append(bytes.Clone(ack), rfReply...)},
		{listCmd, append(bytes.Clone(ackNoLCS), listMifare...)},
		{listCmd, listNTAG}, // the ACK lost entirely: the response comes first
	})
	d, err := NewHSU(t.Context(), p, Opts{After: now})
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.Read(t.Context())
	if err != nil || !bytes.Equal(b.UID, []byte{0xDE, 0xAD, 0xBE, 0xEF}) {
		t.Fatalf("after a damaged ACK: %v, %v", b, err)
	}
	b, err = d.Read(t.Context())
	if err != nil || !bytes.Equal(b.UID, []byte{0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66}) {
		t.Fatalf("after a lost ACK: %v, %v", b, err)
	}
}

// On I²C the read length is fixed; a response whose LEN was damaged upward ends inside the
// read. That is a bad frame: NACKed and resent (UM §6.2.1.4), not a dead reader.
func TestI2CDamagedLEN(t *testing.T) {
	bad := bytes.Clone(listMifare)
	bad[3], bad[4] = 0x7F, 0x81 // LEN 7F, LCS 81: consistent, but far beyond the read
	ops := i2cInit()
	ops = append(ops, i2ctest.IO{Addr: 0x24, W: listCmd},
		i2ctest.IO{Addr: 0x24, R: []byte{0x01}},
		i2ctest.IO{Addr: 0x24, R: append([]byte{0x01}, ack...)},
		i2ctest.IO{Addr: 0x24, R: []byte{0x01}},
		i2ctest.IO{Addr: 0x24, R: append([]byte{0x01}, padded(bad, listLen)...)},
		i2ctest.IO{Addr: 0x24, W: []byte{0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00}},
		i2ctest.IO{Addr: 0x24, R: []byte{0x01}},
		i2ctest.IO{Addr: 0x24, R: append([]byte{0x01}, padded(listMifare, listLen)...)},
	)
	bus := &i2ctest.Playback{Ops: ops, DontPanic: true}
	d, err := NewI2C(t.Context(), bus, Opts{After: now})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := d.Read(t.Context()); err != nil || !bytes.Equal(b.UID, []byte{0xDE, 0xAD, 0xBE, 0xEF}) {
		t.Fatalf("after a damaged LEN: %v, %v", b, err)
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
}

// An I²C error kills one reader; Supervise opens a new one on the bus and the next tap is read.
func TestSuperviseI2CErrorThenWorks(t *testing.T) {
	// The first PN532 initialises, then the bus fails on the first card search (the
	// playback has no more operations and returns an error, as a NAKed transfer would).
	bus1 := &i2ctest.Playback{Ops: i2cInit(), DontPanic: true}
	first, err := NewI2C(t.Context(), bus1, Opts{After: now})
	if err != nil {
		t.Fatal(err)
	}
	ops := i2cInit()
	ops = append(ops, i2cCmd(listCmd, listMifare, listLen, false)...)
	// Status polls are immediate; the idle wait after the card never ends, so the second
	// reader stays quiet until ctx ends.
	quietAfterCard := func(d time.Duration) <-chan time.Time {
		if d == (Opts{}).withDefaults().Idle {
			return nil
		}
		return now(d)
	}
	bus2 := &i2ctest.Playback{Ops: ops, DontPanic: true}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := make(chan badge.Badge, 1)
	opens := 0
	done := make(chan error, 1)
	go func() {
		done <- badge.Supervise(ctx, first, out, badge.SuperviseOptions{
			Open: func(ctx context.Context) (badge.Reader, error) {
				opens++
				return NewI2C(ctx, bus2, Opts{After: quietAfterCard})
			},
			Wait: func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
			Log:  slog.New(slog.NewTextHandler(t.Output(), nil)),
		})
	}()
	select {
	case b := <-out:
		if !bytes.Equal(b.UID, []byte{0xDE, 0xAD, 0xBE, 0xEF}) {
			t.Fatalf("badge %v", b)
		}
	case err := <-done:
		t.Fatalf("Supervise returned %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no badge after the reader restarted")
	}
	cancel()
	<-done
	if opens != 1 {
		t.Fatalf("reader opened %d times, want 1", opens)
	}
}
