package simprinter

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"labelstation/drivers/printer"
)

func dialZPL(t *testing.T, s *Server) *printer.Printer {
	t.Helper()
	tr, err := printer.Dial(t.Context(), s.URL(), printer.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := printer.New(tr, printer.ZPL)
	t.Cleanup(func() { p.Close() })
	return p
}

func label(i int) []byte { return []byte("^XA^FO10,10^FDlabel " + strings.Repeat("x", i%7) + "^FS^XZ") }

func TestCounterCountsCompleteLabels(t *testing.T) {
	s, err := Listen("127.0.0.1:0", Options{Counter: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := dialZPL(t, s)
	ctx := t.Context()
	if c, err := p.Counter(ctx); err != nil || c != 1000 {
		t.Fatalf("counter %d, %v; want 1000", c, err)
	}
	for i := range 5 {
		if err := p.Send(ctx, label(i)); err != nil {
			t.Fatal(err)
		}
	}
	// The getvar is answered in order, after the labels sent before it.
	if c, err := p.Counter(ctx); err != nil || c != 1005 {
		t.Fatalf("counter %d, %v; want 1005", c, err)
	}
	// A label counts once its ^XZ arrived, however it was split.
	if err := p.Send(ctx, []byte("^XA^FDhalf")); err != nil {
		t.Fatal(err)
	}
	if err := p.Send(ctx, []byte("^FS^XZ")); err != nil {
		t.Fatal(err)
	}
	if c, err := p.Counter(ctx); err != nil || c != 1006 || s.Counter() != 1006 {
		t.Fatalf("counter %d, %v (server %d); want 1006", c, err, s.Counter())
	}
}

func TestNoCounter(t *testing.T) {
	s, err := Listen("127.0.0.1:0", Options{NoCounter: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := dialZPL(t, s).Counter(t.Context()); !errors.Is(err, printer.ErrUnsupported) {
		t.Fatalf("got %v, want ErrUnsupported", err)
	}
}

// Paper out mid-job: labels received meanwhile wait in the buffer (formats in
// buffer), are not counted, and print once the paper is back.
func TestPaperOutMidJobBuffersUntilCleared(t *testing.T) {
	s, err := Listen("127.0.0.1:0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := dialZPL(t, s)
	ctx := t.Context()
	s.PaperOutAfter(2)
	for i := range 5 {
		if err := p.Send(ctx, label(i)); err != nil {
			t.Fatal(err)
		}
	}
	if c, err := p.Counter(ctx); err != nil || c != 2 {
		t.Fatalf("counter %d, %v; want 2", c, err)
	}
	st, err := p.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.PaperOut || st.FormatsInBuffer != 3 || st.Idle() {
		t.Fatalf("status %+v, want paper out with 3 formats waiting", st)
	}
	s.SetStatus(printer.Status{})
	if c, err := p.Counter(ctx); err != nil || c != 5 {
		t.Fatalf("after reloading paper: counter %d, %v; want 5", c, err)
	}
	if n := len(s.Labels()); n != 5 {
		t.Fatalf("%d labels printed, want 5", n)
	}
	s.SetStatus(printer.Status{HeadOpen: true})
	if err := p.Send(ctx, label(9)); err != nil {
		t.Fatal(err)
	}
	if st, err := p.Status(ctx); err != nil || !st.HeadOpen {
		t.Fatalf("status %+v, %v", st, err)
	}
}

// The connection closes after the first n bytes of the next label; the
// partial label is not printed, and a new connection works.
func TestDropMidLabel(t *testing.T) {
	s, err := Listen("127.0.0.1:0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := dialZPL(t, s)
	ctx := t.Context()
	if err := p.Send(ctx, label(0)); err != nil {
		t.Fatal(err)
	}
	if c, err := p.Counter(ctx); err != nil || c != 1 {
		t.Fatalf("counter %d, %v", c, err)
	}
	s.DropMidLabel(8)
	_ = p.Send(ctx, label(1)) // may succeed: the bytes sit in the socket buffer
	if _, err := p.Counter(ctx); err == nil {
		t.Fatal("the dropped connection still answers")
	}
	p2 := dialZPL(t, s)
	if c, err := p2.Counter(ctx); err != nil || c != 1 {
		t.Fatalf("counter %d, %v; want 1 (the cut label is not printed)", c, err)
	}
}

func TestStallAndRefuse(t *testing.T) {
	s, err := Listen("127.0.0.1:0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := dialZPL(t, s)
	p.StatusTimeout = 50 * time.Millisecond
	s.Stall(true)
	if _, err := p.Status(t.Context()); !errors.Is(err, printer.ErrNoStatus) {
		t.Fatalf("stalled printer: got %v, want ErrNoStatus", err)
	}
	s.Stall(false)
	p.Close()

	if err := s.Refuse(true); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", s.Addr()); err == nil {
		c.Close()
		t.Fatal("dial succeeded while refusing")
	}
	if err := s.Refuse(false); err != nil {
		t.Fatal(err)
	}
	p = dialZPL(t, s)
	if _, err := p.Status(t.Context()); err != nil {
		t.Fatal(err)
	}
}
