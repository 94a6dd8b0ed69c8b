package badge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// script is a Reader that returns its reads in order, then blocks until ctx ends.
type script struct {
	reads []read
}

type read struct {
	uid string
	err error
}

func (s *script) Read(ctx context.Context) (Badge, error) {
	if len(s.reads) == 0 {
		<-ctx.Done()
		return Badge{}, ctx.Err()
	}
	r := s.reads[0]
	s.reads = s.reads[1:]
	if r.err != nil {
		return Badge{}, r.err
	}
	return Badge{UID: []byte(r.uid), Tech: TechSim}, nil
}
func (s *script) String() string { return "script" }
func (s *script) Halt() error    { return nil }

// clockAt returns a clock that yields the given offsets (ms) from t0, one per call.
func clockAt(t *testing.T, ms ...int) func() time.Time {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return func() time.Time {
		if len(ms) == 0 {
			t.Fatal("clock called more often than scripted")
		}
		d := time.Duration(ms[0]) * time.Millisecond
		ms = ms[1:]
		return t0.Add(d)
	}
}

func TestPumpDebounce(t *testing.T) {
	bad := fmt.Errorf("rdm6300: checksum: %w", ErrBadFrame)
	r := &script{reads: []read{
		{uid: "A"}, // 0ms: new -> event
		{uid: "A"}, // 100ms: held -> dropped
		{err: bad}, // skipped
		{uid: "A"}, // 1900ms: still held (100ms apart... 1800 since last) -> dropped
		{uid: "B"}, // 2000ms: other card -> event
		{uid: "A"}, // 2100ms: A again, last A sighting was at 1900 but last UID is B -> event
		{uid: "A"}, // 4200ms: 2100 since last sighting >= Repeat -> event
		{uid: "A"}, // 6199ms: 1999ms < Repeat -> dropped
	}}
	out := make(chan Badge, 10)
	ctx, cancel := context.WithCancel(t.Context())
	var badFrames int
	done := make(chan error, 1)
	go func() {
		done <- Pump(ctx, r, out, PumpOptions{
			Repeat:     2 * time.Second,
			Now:        clockAt(t, 0, 100, 1900, 2000, 2100, 4200, 6199),
			OnBadFrame: func(error) { badFrames++ },
		})
	}()
	want := []string{"A", "B", "A", "A"}
	for i, w := range want {
		select {
		case b := <-out:
			if string(b.UID) != w {
				t.Fatalf("event %d: got %q, want %q", i, b.UID, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d: none", i)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Pump returned %v, want context.Canceled", err)
	}
	if len(out) != 0 {
		t.Fatalf("extra event %v", <-out)
	}
	if badFrames != 1 {
		t.Fatalf("badFrames = %d, want 1", badFrames)
	}
}

func TestPumpReturnsReaderError(t *testing.T) {
	r := &script{reads: []read{{err: io.ErrUnexpectedEOF}}}
	err := Pump(t.Context(), r, make(chan Badge), PumpOptions{})
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %v, want wrapped io.ErrUnexpectedEOF", err)
	}
}

func TestSim(t *testing.T) {
	s := NewSim("desk")
	go func() { _ = s.Tap(t.Context(), []byte{1, 2}) }()
	b, err := s.Read(t.Context())
	if err != nil || b.Tech != TechSim || string(b.UID) != "\x01\x02" {
		t.Fatalf("Read = %v, %v", b, err)
	}
	if err := s.Halt(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(t.Context()); !errors.Is(err, ErrHalted) {
		t.Fatalf("Read after Halt = %v", err)
	}
}

func TestNumberFormat(t *testing.T) {
	uid4 := []byte{0x04, 0xA2, 0x3B, 0x91}
	uid7 := []byte{0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66}
	tests := []struct {
		f    NumberFormat
		uid  []byte
		want string
	}{
		{NumberFormat{}, uid4, "04A23B91"},
		{NumberFormat{Lower: true}, uid4, "04a23b91"},
		{NumberFormat{ByteOrder: "lsb"}, uid4, "913BA204"},
		// 0x04A23B91 = 77740945
		{NumberFormat{Encoding: "dec"}, uid4, "77740945"},
		// reversed 0x913BA204 = 2436604420
		{NumberFormat{Encoding: "dec", ByteOrder: "lsb"}, uid4, "2436604420"},
		// low 24 bits 0xA23B91 = 10632081
		{NumberFormat{Encoding: "dec", Bits: 24}, uid4, "10632081"},
		{NumberFormat{Bits: 24}, uid4, "A23B91"},
		{NumberFormat{Bits: 10}, uid4, "391"},
		{NumberFormat{Encoding: "dec", Width: 10}, uid4, "0077740945"},
		// 7-byte UID 0x04112233445566 = 1144738493519206
		{NumberFormat{Encoding: "dec"}, uid7, "1144738493519206"},
		{NumberFormat{Encoding: "dec", Bits: 32}, uid7, fmt.Sprint(0x33445566)},
	}
	for _, tt := range tests {
		got, err := tt.f.Format(tt.uid)
		if err != nil {
			t.Errorf("%+v.Format(% x): %v", tt.f, tt.uid, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%+v.Format(% x) = %q, want %q", tt.f, tt.uid, got, tt.want)
		}
	}
}

func TestNumberFormatErrors(t *testing.T) {
	tests := []struct {
		f    NumberFormat
		uid  []byte
		want string
	}{
		{NumberFormat{Encoding: "base64"}, []byte{1}, "encoding"},
		{NumberFormat{ByteOrder: "big"}, []byte{1}, "byte_order"},
		{NumberFormat{Bits: -1}, []byte{1}, "bits -1"},
		{NumberFormat{Bits: 40}, []byte{1, 2, 3, 4}, "exceeds the 32-bit UID"},
		{NumberFormat{}, nil, "empty UID"},
	}
	for _, tt := range tests {
		_, err := tt.f.Format(tt.uid)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v.Format(% x) error = %v, want it to mention %q", tt.f, tt.uid, err, tt.want)
		}
	}
}

func BenchmarkNumberFormatDec7Byte(b *testing.B) {
	f := NumberFormat{Encoding: "dec", ByteOrder: "lsb", Width: 20}
	uid := []byte{0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Format(uid); err != nil {
			b.Fatal(err)
		}
	}
}
