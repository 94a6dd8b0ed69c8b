package supervise

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestBackoffDoublesCapsAndResets(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: 400 * time.Millisecond, Rand: func(n int64) int64 { return n / 2 }}
	var got []time.Duration
	for range 5 {
		got = append(got, b.Next())
	}
	want := []time.Duration{100, 200, 400, 400, 400}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("delays = %v, want %v ms (middle of the jitter)", got, want)
		}
	}
	b.Reset()
	if d := b.Next(); d != 100*time.Millisecond {
		t.Fatalf("after Reset: %v", d)
	}
	lo := Backoff{Min: time.Second, Max: time.Second, Rand: func(int64) int64 { return 0 }}
	hi := Backoff{Min: time.Second, Max: time.Second, Rand: func(n int64) int64 { return n - 1 }}
	if d := lo.Next(); d != 500*time.Millisecond {
		t.Fatalf("lowest jitter %v, want 0.5 s", d)
	}
	if d := hi.Next(); d < 1499*time.Millisecond || d > 1500*time.Millisecond {
		t.Fatalf("highest jitter %v, want 1.5 s", d)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLoopRestartsAfterPanicAndError(t *testing.T) {
	var logs syncBuf
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runs := make(chan int, 10)
	n := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		Loop(ctx, log, "part", Backoff{Min: time.Millisecond, Max: 2 * time.Millisecond}, func(ctx context.Context) error {
			n++
			runs <- n
			switch n {
			case 1:
				panic("boom")
			case 2:
				return errors.New("broken")
			}
			<-ctx.Done()
			return ctx.Err()
		})
	}()
	for want := 1; want <= 3; want++ {
		select {
		case got := <-runs:
			if got != want {
				t.Fatalf("run %d, want %d", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("run %d never started", want)
		}
	}
	cancel()
	<-done
	out := logs.String()
	for _, want := range []string{"panic: boom", "stack=", "supervise_test.go", "broken"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestSafe(t *testing.T) {
	err := Safe(func() error { var m map[string]int; m["x"]++; return nil })
	var p *PanicError
	if !errors.As(err, &p) || len(p.Stack) == 0 {
		t.Fatalf("Safe = %v", err)
	}
	if err := Safe(func() error { return nil }); err != nil {
		t.Fatal(err)
	}
}
