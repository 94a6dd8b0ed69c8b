package board

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// scripted returns a clock yielding t0+ms[i] on the i-th call.
func scripted(t *testing.T, ms ...int) func() time.Time {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return func() time.Time {
		if len(ms) == 0 {
			t.Fatal("clock read more often than edges were scripted")
		}
		d := ms[0]
		ms = ms[1:]
		return t0.Add(time.Duration(d) * time.Millisecond)
	}
}

func TestGPIOInputDebounce(t *testing.T) {
	pin := &gpiotest.Pin{N: "GPIO17", Num: 17, EdgesChan: make(chan gpio.Level, 16)}
	// Edges and the clock reading taken for each, button to ground:
	edges := []gpio.Level{gpio.Low, gpio.High, gpio.Low, gpio.High, gpio.Low, gpio.High, gpio.Low}
	at := []int{0, 2, 4, 200, 203, 205, 500}
	//          press, bounce, bounce, release, release glitch, release, press
	in, err := NewGPIOInput("ok", pin, InputOptions{Debounce: 30 * time.Millisecond, Now: scripted(t, at...)})
	if err != nil {
		t.Fatal(err)
	}
	if pin.P != gpio.PullUp {
		t.Fatalf("pull = %v, want PullUp", pin.P)
	}
	for _, e := range edges {
		pin.EdgesChan <- e
	}
	ctx := t.Context()
	if err := in.WaitPress(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(pin.EdgesChan); n != 6 {
		t.Fatalf("first press consumed %d edges, want 1", 7-n)
	}
	if err := in.WaitPress(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(pin.EdgesChan); n != 0 {
		t.Fatalf("second press left %d edges", n)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := in.WaitPress(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

func TestGPIOInputActiveHigh(t *testing.T) {
	pin := &gpiotest.Pin{N: "GPIO27", EdgesChan: make(chan gpio.Level, 4)}
	in, err := NewGPIOInput("cancel", pin, InputOptions{ActiveHigh: true, Now: scripted(t, 0, 100)})
	if err != nil {
		t.Fatal(err)
	}
	if pin.P != gpio.PullDown {
		t.Fatalf("pull = %v", pin.P)
	}
	pin.EdgesChan <- gpio.Low // a release-like edge first: not a press
	pin.EdgesChan <- gpio.High
	if err := in.WaitPress(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(pin.EdgesChan) != 0 {
		t.Fatal("press returned before the high edge")
	}
}

func TestGPIOInputNeedsEdges(t *testing.T) {
	_, err := NewGPIOInput("x", &gpiotest.Pin{N: "GPIO5"}, InputOptions{})
	if err == nil {
		t.Fatal("no error for a pin without edge detection")
	}
}

func TestGPIOOutputAndPlay(t *testing.T) {
	pin := &gpiotest.Pin{N: "GPIO22", L: gpio.High}
	o, err := NewGPIOOutput("buzzer", pin, true) // active low
	if err != nil {
		t.Fatal(err)
	}
	if pin.Read() != gpio.High {
		t.Fatal("active-low output not driven off (high) at start")
	}
	var levels []gpio.Level
	var waits []time.Duration
	after := func(d time.Duration) <-chan time.Time {
		levels = append(levels, pin.Read())
		waits = append(waits, d)
		c := make(chan time.Time, 1)
		c <- time.Time{}
		return c
	}
	if err := Play(t.Context(), o, BeepError, after); err != nil {
		t.Fatal(err)
	}
	wantLevels := []gpio.Level{gpio.Low, gpio.High, gpio.Low, gpio.High, gpio.Low}
	if !slices.Equal(levels, wantLevels) || !slices.Equal(waits, BeepError) {
		t.Fatalf("levels %v waits %v", levels, waits)
	}
	if pin.Read() != gpio.High {
		t.Fatal("buzzer left on after pattern")
	}

	// Cancelled mid-pattern: still off.
	ctx, cancel := context.WithCancel(t.Context())
	block := func(time.Duration) <-chan time.Time { cancel(); return nil }
	if err := Play(ctx, o, BeepOK, block); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	if pin.Read() != gpio.High {
		t.Fatal("buzzer left on after cancel")
	}
}
