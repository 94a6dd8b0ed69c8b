package badge

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"labelstation/internal/supervise"
)

// failing is a reader whose Read fails with err (or panics with panicking) at once.
type failing struct {
	err      error
	panicVal any
	mu       sync.Mutex
	halted   bool
}

func (f *failing) Read(ctx context.Context) (Badge, error) {
	if f.panicVal != nil {
		panic(f.panicVal)
	}
	return Badge{}, f.err
}
func (f *failing) String() string { return "failing" }
func (f *failing) Halt() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.halted = true
	return nil
}
func (f *failing) wasHalted() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.halted
}

// rig runs Supervise and records what it reports.
type rig struct {
	out     chan Badge
	faults  chan error
	recover chan struct{}
	waits   chan time.Duration
	done    chan error
	cancel  context.CancelFunc
	log     *bytes.Buffer
	logMu   *sync.Mutex
}

type lockedBuf struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedBuf) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func startSupervise(t *testing.T, first Reader, opens []func() (Reader, error), mod func(*SuperviseOptions)) *rig {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	r := &rig{
		out: make(chan Badge, 4), faults: make(chan error, 8), recover: make(chan struct{}, 8),
		waits: make(chan time.Duration, 64), done: make(chan error, 1), cancel: cancel,
		log: &bytes.Buffer{}, logMu: &sync.Mutex{},
	}
	var mu sync.Mutex
	opt := SuperviseOptions{
		Open: func(context.Context) (Reader, error) {
			mu.Lock()
			defer mu.Unlock()
			if len(opens) == 0 {
				t.Error("Open called more often than scripted")
				return nil, errors.New("no more readers")
			}
			o := opens[0]
			opens = opens[1:]
			return o()
		},
		Backoff:   supervise.Backoff{Min: time.Second, Max: 8 * time.Second, Rand: func(int64) int64 { return 0 }},
		Healthy:   time.Hour,
		OnFault:   func(err error) { r.faults <- err },
		OnRecover: func() { r.recover <- struct{}{} },
		Log:       slog.New(slog.NewTextHandler(lockedBuf{r.logMu, r.log}, nil)),
		Wait: func(ctx context.Context, d time.Duration) error {
			r.waits <- d
			return ctx.Err()
		},
	}
	if mod != nil {
		mod(&opt)
	}
	go func() { r.done <- Supervise(ctx, first, r.out, opt) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-r.done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Supervise returned %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Supervise did not return after cancel")
		}
	})
	return r
}

const deadline = 10 * time.Second

func recv[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(deadline):
		t.Fatalf("no %s within %v", what, deadline)
	}
	panic("unreachable")
}

func none[T any](t *testing.T, c <-chan T, what string) {
	t.Helper()
	select {
	case v := <-c:
		t.Fatalf("unexpected %s: %v", what, v)
	default:
	}
}

func tap(t *testing.T, s *Sim, uid string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	if err := s.Tap(ctx, []byte(uid)); err != nil {
		t.Fatalf("tap %s: %v", uid, err)
	}
}

func TestSuperviseRestartsAfterOneError(t *testing.T) {
	bad := &failing{err: errors.New("i2c: remote I/O error")}
	good := NewSim("second")
	r := startSupervise(t, bad, []func() (Reader, error){func() (Reader, error) { return good, nil }}, nil)
	if d := recv(t, r.waits, "backoff"); d != 500*time.Millisecond {
		t.Fatalf("first backoff %v, want 500ms (Min, bottom of jitter)", d)
	}
	tap(t, good, "A")
	if b := recv(t, r.out, "badge"); string(b.UID) != "A" {
		t.Fatalf("badge %v", b)
	}
	if !bad.wasHalted() {
		t.Fatal("the failed reader was not halted before reopening")
	}
	none(t, r.faults, "fault after a single error")
	none(t, r.recover, "recovery without a fault")
}

func TestSuperviseFaultAfterNThenRecovers(t *testing.T) {
	busErr := errors.New("i2c: remote I/O error")
	good := NewSim("good")
	opens := []func() (Reader, error){
		func() (Reader, error) { return nil, errors.New("pn532: no ACK") }, // failure 2
		func() (Reader, error) { return &failing{err: busErr}, nil },       // failure 3: fault
		func() (Reader, error) { return nil, errors.New("pn532: no ACK") }, // failure 4: no second fault
		func() (Reader, error) { return good, nil },
	}
	r := startSupervise(t, &failing{err: busErr}, opens, nil)
	var waits []time.Duration
	for range 4 {
		waits = append(waits, recv(t, r.waits, "backoff"))
	}
	ms := time.Millisecond
	if want := []time.Duration{500 * ms, 1000 * ms, 2000 * ms, 4000 * ms}; !slices.Equal(waits, want) {
		t.Fatalf("backoff %v, want %v", waits, want)
	}
	if err := recv(t, r.faults, "fault"); !errors.Is(err, busErr) {
		t.Fatalf("fault %v, want the bus error", err)
	}
	none(t, r.recover, "recovery before a card was read")
	tap(t, good, "B")
	recv(t, r.out, "badge")
	recv(t, r.recover, "recovery")
	none(t, r.faults, "second fault")
}

func TestSuperviseRecoversAfterHealthyRun(t *testing.T) {
	busErr := errors.New("uart: read: input/output error")
	opens := []func() (Reader, error){
		func() (Reader, error) { return &failing{err: busErr}, nil },
		func() (Reader, error) { return NewSim("quiet"), nil }, // nobody taps
	}
	r := startSupervise(t, &failing{err: busErr}, opens, func(o *SuperviseOptions) {
		o.FaultAfter = 2
		o.Healthy = time.Millisecond
	})
	recv(t, r.faults, "fault")
	recv(t, r.recover, "recovery after a healthy run")
}

func TestSupervisePanicRestartsReader(t *testing.T) {
	good := NewSim("after-panic")
	r := startSupervise(t, &failing{panicVal: "index out of range [0] with length 0"},
		[]func() (Reader, error){func() (Reader, error) { return good, nil }}, nil)
	recv(t, r.waits, "backoff")
	tap(t, good, "C")
	recv(t, r.out, "badge")
	r.logMu.Lock()
	log := r.log.String()
	r.logMu.Unlock()
	for _, want := range []string{"reader panicked", "index out of range", "supervise_test.go"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q (the panic and its stack):\n%s", want, log)
		}
	}
}

func TestSuperviseHaltsOnCancel(t *testing.T) {
	s := NewSim("x")
	r := startSupervise(t, s, nil, nil)
	r.cancel()
	if err := recv(t, r.done, "return"); !errors.Is(err, context.Canceled) {
		t.Fatalf("returned %v", err)
	}
	r.done <- context.Canceled // for the cleanup check
	if err := s.Tap(t.Context(), []byte("x")); !errors.Is(err, ErrHalted) {
		t.Fatalf("reader not halted after cancel: tap gave %v", err)
	}
}

func TestSuperviseReportsExternalHalt(t *testing.T) {
	s := NewSim("x")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Supervise(ctx, s, make(chan Badge), SuperviseOptions{}) }()
	s.Halt()
	if err := recv(t, done, "return"); !errors.Is(err, ErrHalted) {
		t.Fatalf("returned %v, want ErrHalted", err)
	}
}
