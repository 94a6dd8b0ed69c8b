package rdm6300

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"labelstation/drivers/badge"
)

// streamPort is a UART whose far end sends the given bytes, then goes quiet with an error.
type streamPort struct{ r *bytes.Reader }

func (p *streamPort) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if err == io.EOF {
		return n, errors.New("fuzz: line quiet")
	}
	return n, err
}
func (p *streamPort) Close() error                    { return nil }
func (p *streamPort) SetReadDeadline(time.Time) error { return nil }
func (p *streamPort) String() string                  { return "fuzz" }

// FuzzRead feeds arbitrary bytes to the reader: it never panics, every card it reports has a
// 5-byte id whose XOR the frame carried, every bad frame is ErrBadFrame (the reader stays
// usable), and it works through the input in at most one Read per byte.
func FuzzRead(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("\x00\xff" + "\x026200E3D2E4B8\x03" + "\x026200E3ZZE4B7\x03" + good + good))
	f.Add([]byte("\x02\x02" + good))
	f.Add([]byte("\x026200E3D2E4B7\x02" + good))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := New(&streamPort{r: bytes.NewReader(b)})
		for range len(b) + 2 {
			got, err := d.Read(context.Background())
			if err != nil {
				if errors.Is(err, badge.ErrBadFrame) {
					continue
				}
				return // the line went quiet
			}
			if len(got.UID) != 5 || got.Tech != badge.TechEM4100 {
				t.Fatalf("badge %v", got)
			}
			if !bytes.Contains(b, []byte(string(rune(stx)))) {
				t.Fatalf("a card without a frame start in % x", b)
			}
		}
		t.Fatalf("more reads than bytes in % x", b)
	})
}
