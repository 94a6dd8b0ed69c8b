package pn532

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"labelstation/drivers/badge"
)

// responseFrame builds a PN532→host normal information frame (UM0701-02 §6.2.1.1) carrying
// data after TFI D5: 00 00 FF LEN LCS D5 data… DCS 00.
func responseFrame(data []byte) []byte {
	n := 1 + len(data)
	f := []byte{0x00, 0x00, 0xFF, byte(n), byte(-n), tfiPN532}
	sum := byte(tfiPN532)
	for _, c := range data {
		sum += c
	}
	f = append(f, data...)
	return append(f, -sum, 0x00)
}

// FuzzParseFrame: parseFrame never panics, never reports more bytes than it got, always makes
// progress on a complete frame or error (so a stream reader cannot spin), and the data it
// returns lies inside the frame.
func FuzzParseFrame(f *testing.F) {
	for _, s := range [][]byte{ack, fwReply, listMifare, listNTAG, listNone, samReply,
		{0x00, 0x00, 0xFF, 0x00, 0x00, 0x00}, // LEN 0 LCS 0: an ACK that lost a byte
		{0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00}, // NACK
		{0x00, 0x00, 0xFF, 0x01, 0xFF, 0x7F, 0x81, 0x00},
		{0x00, 0x00, 0xFF, 0xFF, 0xFF, 0x00, 0x02, 0xFE, 0xD5, 0x03, 0x28, 0x00},
		append(bytes.Clone(ack), listMifare...),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rest := b
		for range len(b) + 1 {
			kind, data, used, err := parseFrame(rest)
			if used < 0 || used > len(rest) {
				t.Fatalf("used %d of %d bytes", used, len(rest))
			}
			if errors.Is(err, errIncomplete) {
				if used != 0 {
					t.Fatalf("incomplete frame consumed %d bytes", used)
				}
				return
			}
			if used == 0 {
				t.Fatalf("no progress on % x (kind %v, err %v)", rest, kind, err)
			}
			if err == nil && kind == kindInfo && len(data) > used {
				t.Fatalf("data %d bytes from a %d-byte frame", len(data), used)
			}
			rest = rest[used:]
		}
		t.Fatalf("%d bytes not consumed after %d frames", len(rest), len(b)+1)
	})
}

// FuzzResponseRoundTrip: any response the PN532 can send parses back to its data, also behind
// line noise that holds no start code.
func FuzzResponseRoundTrip(f *testing.F) {
	f.Add([]byte{0x03, 0x32, 0x01, 0x06, 0x07}, []byte{0x55, 0x00})
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, data, noise []byte) {
		if len(data) > 254 || bytes.Contains(append(bytes.Clone(noise), 0x00), []byte{0x00, 0xFF}) {
			return
		}
		noise = bytes.ReplaceAll(noise, []byte{0xFF}, []byte{0xFE})
		kind, got, used, err := parseFrame(append(bytes.Clone(noise), responseFrame(data)...))
		if err != nil || kind != kindInfo || !bytes.Equal(got, data) {
			t.Fatalf("parse of % x: %v % x %v", data, kind, got, err)
		}
		if want := len(noise) + len(responseFrame(data)) - 1; used != want {
			t.Fatalf("used %d, want %d (everything but the postamble)", used, want)
		}
	})
}

// streamPort is a UART whose far end sends the given bytes, then goes quiet with an error.
type streamPort struct{ r *bytes.Reader }

func (p *streamPort) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if err == io.EOF {
		return n, errors.New("fuzz: line quiet")
	}
	return n, err
}
func (p *streamPort) Write(b []byte) (int, error)     { return len(b), nil }
func (p *streamPort) SetReadDeadline(time.Time) error { return nil }
func (p *streamPort) String() string                  { return "fuzz" }

// FuzzHSURead feeds arbitrary bytes to a card search over HSU: the driver never panics, and
// either reads a UID of a length ISO 14443-3 allows or returns an error.
func FuzzHSURead(f *testing.F) {
	f.Add(append(bytes.Clone(ack), listMifare...))
	f.Add(append([]byte{0x00, 0x00, 0xFF, 0x00, 0x00}, listNTAG...))
	f.Add(append(bytes.Clone(ack), append(listNone, append(bytes.Clone(ack), listMifare...)...)...))
	f.Add(append(bytes.Clone(ack), 0x00, 0x00, 0xFF, 0x0C, 0xF5, 0xD5, 0x4B))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := &Dev{l: &hsuLink{p: &streamPort{r: bytes.NewReader(b)}}, opt: Opts{After: now}.withDefaults()}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for range 8 {
			got, err := d.Read(ctx)
			if err != nil {
				if ctx.Err() != nil {
					t.Fatalf("Read did not return before its deadline on % x", b)
				}
				if !errors.Is(err, badge.ErrBadFrame) {
					return
				}
				continue
			}
			if n := len(got.UID); n != 4 && n != 7 && n != 10 {
				t.Fatalf("UID of %d bytes: % x", n, got.UID)
			}
		}
	})
}
