package simprinter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"labelstation/drivers/printer"
)

func TestLabelsAndPNG(t *testing.T) {
	dir := t.TempDir()
	s, err := Listen("127.0.0.1:0", Options{Dir: dir, WidthMm: 50, HeightMm: 25})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A ~HS inside a format is answered at once and is not part of the label.
	if _, err := c.Write([]byte("junk^XA^FO20,20^A0N,30,30~HS^FDHello^FS^XZ^xa^FO5,5^GB100,50,3^FS^xz")); err != nil {
		t.Fatal(err)
	}
	reply := make([]byte, 0, 128)
	buf := make([]byte, 128)
	for bytes.Count(reply, []byte{3}) < 3 {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		reply = append(reply, buf[:n]...)
	}
	if st, err := printer.ParseZPLHostStatus(reply); err != nil || st.Fault() != nil {
		t.Fatalf("~HS reply %q: %+v, %v", reply, st, err)
	}
	labels, err := s.WaitLabels(t.Context(), 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"^XA^FO20,20^A0N,30,30^FDHello^FS^XZ", "^xa^FO5,5^GB100,50,3^FS^xz"}
	if len(labels) != 2 || labels[0] != want[0] || labels[1] != want[1] {
		t.Fatalf("labels %q, want %q", labels, want)
	}
	for i := 1; i <= 2; i++ {
		f, err := os.Open(filepath.Join(dir, fmt.Sprintf("label-%04d.png", i)))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		// 50 × 25 mm at 8 dots/mm.
		if b := img.Bounds(); b.Dx() != 400 || b.Dy() != 200 {
			t.Errorf("label %d: %v", i, b)
		}
	}
}

func TestWaitLabelsEnds(t *testing.T) {
	s, err := Listen("127.0.0.1:0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if _, err := s.WaitLabels(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	errc := make(chan error)
	go func() {
		_, err := s.WaitLabels(t.Context(), 1)
		errc <- err
	}()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("got %v", err)
	}
}

func TestBadDPI(t *testing.T) {
	if _, err := Listen("127.0.0.1:0", Options{DPI: 150}); err == nil {
		t.Fatal("DPI 150 accepted")
	}
}

func TestServePTY(t *testing.T) {
	s, err := Listen("127.0.0.1:0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	path, err := s.ServePTY()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	ctx := t.Context()
	tr, err := printer.Dial(ctx, "serial://"+path+"?baud=9600&flow=xonxoff", printer.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := printer.New(tr, printer.ZPL)
	defer p.Close()
	s.SetStatus(printer.Status{HeadOpen: true})
	st, err := p.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Fault(); !errors.Is(err, printer.ErrFault) || err.Error() != "printer: fault: head open" {
		t.Fatalf("fault %v", err)
	}
	s.SetStatus(printer.Status{}) // a label sent with the head open would wait in the buffer
	if err := p.Send(ctx, []byte("^XA^FDpty^FS^XZ")); err != nil {
		t.Fatal(err)
	}
	l, err := s.WaitLabels(ctx, 1)
	if err != nil || l[0] != "^XA^FDpty^FS^XZ" {
		t.Fatalf("labels %q, %v", l, err)
	}
}

// BenchmarkLabelRoundTrip measures one label sent over TCP until the
// simulated printer has stored it.
func BenchmarkLabelRoundTrip(b *testing.B) {
	s, err := Listen("127.0.0.1:0", Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	tr, err := printer.Dial(b.Context(), s.URL(), printer.DialOptions{})
	if err != nil {
		b.Fatal(err)
	}
	p := printer.New(tr, printer.ZPL)
	defer p.Close()
	label := []byte("^XA^FO50,50^A0N,40,40^FDLabel station^FS^BY2^FO50,120^BCN,80,Y,N,N^FD12345678^FS^XZ")
	n := 0
	for b.Loop() {
		if err := p.Send(b.Context(), label); err != nil {
			b.Fatal(err)
		}
		n++
		if _, err := s.WaitLabels(b.Context(), n); err != nil {
			b.Fatal(err)
		}
	}
}
