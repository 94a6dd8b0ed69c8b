package printer_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"labelstation/drivers/printer"
	"labelstation/drivers/printer/simprinter"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// The first query after the printer dropped the connection succeeds: the dead
// connection is noticed and replaced within the same call.
func TestRedialerFirstQueryAfterDropWorks(t *testing.T) {
	s, err := simprinter.Listen("127.0.0.1:0", simprinter.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := printer.NewRedialer(s.URL(), printer.ZPL)
	defer r.Close()
	ctx := t.Context()
	for i := range 3 {
		if _, err := r.Status(ctx); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if _, err := r.Counter(ctx); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		s.DropConnections()
	}
	if n := r.Dials(); n != 3 {
		t.Fatalf("%d dials, want 3 (one per dropped connection)", n)
	}
}

// A switched-off printer is redialled with capped backoff; once it is back,
// the next call after the backoff connects.
func TestRedialerBacksOff(t *testing.T) {
	s, err := simprinter.Listen("127.0.0.1:0", simprinter.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	r := printer.NewRedialer(s.URL(), printer.ZPL)
	r.Now = clk.Now
	r.MinBackoff, r.MaxBackoff = time.Second, 4*time.Second
	defer r.Close()
	ctx := t.Context()
	if err := s.Refuse(true); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Status(ctx); err == nil {
		t.Fatal("status from a refusing printer")
	}
	// Within the backoff no dial is tried; the error names the cause.
	if err := s.Refuse(false); err != nil {
		t.Fatal(err)
	}
	_, err = r.Status(ctx)
	if err == nil || !errors.Is(err, errors.Unwrap(err)) || r.Dials() != 0 {
		t.Fatalf("within backoff: %v, %d dials", err, r.Dials())
	}
	clk.Add(time.Second)
	if _, err := r.Status(ctx); err != nil {
		t.Fatalf("after backoff: %v", err)
	}
	// Backoff doubles up to the cap while the printer stays away: calls
	// within it fail at once without dialling, the first one after it dials.
	if err := s.Refuse(true); err != nil {
		t.Fatal(err)
	}
	r.Close()
	for i := range 6 {
		_, err := r.Status(ctx)
		if err == nil || isBackoff(err) {
			t.Fatalf("attempt %d: %v, want a dial error", i, err)
		}
		if _, err := r.Status(ctx); !isBackoff(err) {
			t.Fatalf("attempt %d: %v, want to wait", i, err)
		}
		clk.Add(r.MaxBackoff) // never more than the cap
	}
}

func isBackoff(err error) bool { return err != nil && strings.Contains(err.Error(), "next dial in") }
