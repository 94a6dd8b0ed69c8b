package simprinter

import (
	"context"
	"net"
	"testing"
	"time"
)

// With a print time, labels sent in one burst wait in the buffer: ~HS reports them as formats
// in buffer and the counter counts only the labels that are out, as on a real printer whose
// host died right after sending. They all print, in order, even after the host hangs up.
func TestPrintTimeKeepsLabelsInBuffer(t *testing.T) {
	s, err := Listen("127.0.0.1:0", Options{Counter: 10, PrintTime: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := c.Write(label(i)); err != nil {
			t.Fatal(err)
		}
	}
	c.Close() // the host is gone; what the printer received still prints
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// Wait on the buffer filling up (the reads are asynchronous), not on time.
	for s.Status().FormatsInBuffer+len(s.Labels()) < 3 {
		select {
		case <-ctx.Done():
			t.Fatalf("labels never reached the buffer: %+v", s.Status())
		case <-time.After(5 * time.Millisecond):
		}
	}
	if st, n := s.Status(), len(s.Labels()); st.FormatsInBuffer == 0 || int64(n) != s.Counter()-10 || n == 3 {
		t.Fatalf("while printing: %d in buffer, %d printed, counter %d", st.FormatsInBuffer, n, s.Counter())
	}
	got, err := s.WaitLabels(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range got {
		if l != string(label(i)) {
			t.Errorf("label %d = %q, want %q", i, l, label(i))
		}
	}
	if s.Counter() != 13 || s.Status().FormatsInBuffer != 0 {
		t.Fatalf("after printing: counter %d, %d in buffer", s.Counter(), s.Status().FormatsInBuffer)
	}
}
