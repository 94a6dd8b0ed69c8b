package board

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// linePin is a gpiotest pin whose edges come at scripted times on a fake
// clock: WaitForEdge jumps the clock to the next edge if it comes within the
// timeout, else by the timeout. Waiting past the last edge cancels the test's
// context, so a press that never comes fails instead of hanging.
type linePin struct {
	*gpiotest.Pin
	now    time.Time
	edges  []timedEdge
	cancel context.CancelFunc
}

type timedEdge struct {
	ms int // since t0
	l  gpio.Level
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newLinePin(t *testing.T, idle gpio.Level, edges ...timedEdge) (*linePin, context.Context) {
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	return &linePin{Pin: &gpiotest.Pin{N: "GPIO17", Num: 17, L: idle, EdgesChan: make(chan gpio.Level)}, now: t0, edges: edges, cancel: cancel}, ctx
}

func (p *linePin) Now() time.Time { return p.now }

func (p *linePin) WaitForEdge(timeout time.Duration) bool {
	if len(p.edges) == 0 {
		p.cancel()
		p.now = p.now.Add(timeout)
		return false
	}
	e := p.edges[0]
	at := t0.Add(time.Duration(e.ms) * time.Millisecond)
	if at.After(p.now.Add(timeout)) {
		p.now = p.now.Add(timeout)
		return false
	}
	p.now, p.edges = at, p.edges[1:]
	_ = p.Out(e.l)
	return true
}

func (p *linePin) In(pull gpio.Pull, e gpio.Edge) error {
	p.P = pull
	return nil
}

type pressAt struct {
	press Press
	ms    int // fake clock when reported
}

// presses reads presses until the line's script is done.
func presses(t *testing.T, ctx context.Context, in *GPIOInput, p *linePin) []pressAt {
	var got []pressAt
	for {
		pr, err := in.WaitPress(ctx)
		if errors.Is(err, context.Canceled) {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, pressAt{pr, int(p.now.Sub(t0) / time.Millisecond)})
	}
}

func TestGPIOInputShortAndLong(t *testing.T) {
	L, H := gpio.Low, gpio.High // button to ground: Low is pressed
	short, long := Press{Name: "ok"}, Press{Name: "ok", Long: true}
	for _, tc := range []struct {
		name  string
		edges []timedEdge
		want  []pressAt
	}{
		{"short with bounce and a release glitch",
			[]timedEdge{{0, L}, {2, H}, {4, L}, {200, H}, {203, L}, {205, H}},
			[]pressAt{{short, 200}}},
		{"long press reported while held, release ignored",
			[]timedEdge{{0, L}, {3, H}, {5, L}, {2000, H}, {2004, L}, {2006, H}},
			[]pressAt{{long, 800}}},
		{"just under the long-press time is short",
			[]timedEdge{{0, L}, {799, H}},
			[]pressAt{{short, 799}}},
		{"exactly the long-press time is long",
			[]timedEdge{{0, L}, {800, H}},
			[]pressAt{{long, 800}}},
		{"two presses",
			[]timedEdge{{0, L}, {150, H}, {500, L}, {1400, H}, {1700, L}, {1750, H}},
			[]pressAt{{short, 150}, {long, 1300}, {short, 1750}}},
		{"release lost in bounce: read once the line settles",
			[]timedEdge{{0, L}, {20, H}},
			[]pressAt{{short, 120}}},
		{"a release edge alone is no press",
			[]timedEdge{{0, H}},
			nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pin, ctx := newLinePin(t, H, tc.edges...)
			in, err := NewGPIOInput("ok", pin, InputOptions{Debounce: 30 * time.Millisecond, Now: pin.Now})
			if err != nil {
				t.Fatal(err)
			}
			if pin.P != gpio.PullUp {
				t.Fatalf("pull = %v, want PullUp", pin.P)
			}
			if got := presses(t, ctx, in, pin); !slices.Equal(got, tc.want) {
				t.Fatalf("presses %v, want %v", got, tc.want)
			}
		})
	}
}

func TestGPIOInputLongPressConfigured(t *testing.T) {
	pin, ctx := newLinePin(t, gpio.High, timedEdge{0, gpio.Low}, timedEdge{400, gpio.High}, timedEdge{1000, gpio.Low}, timedEdge{1200, gpio.High})
	w, err := Wire(Config{Kind: "rpi", LongPressMs: 300, Inputs: map[string]PinConfig{"ok": {Pin: "GPIO17"}}}, Host{
		Serial: func() (string, error) { return "x", nil },
		Pin:    func(string) gpio.PinIO { return pin },
		Now:    pin.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	in, err := w.Input("ok")
	if err != nil {
		t.Fatal(err)
	}
	got := presses(t, ctx, in.(*GPIOInput), pin)
	want := []pressAt{{Press{Name: "ok", Long: true}, 300}, {Press{Name: "ok"}, 1200}}
	if !slices.Equal(got, want) {
		t.Fatalf("presses %v, want %v", got, want)
	}
}

func TestGPIOInputCancel(t *testing.T) {
	pin := &gpiotest.Pin{N: "GPIO17", EdgesChan: make(chan gpio.Level)}
	in, err := NewGPIOInput("ok", pin, InputOptions{Poll: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := in.WaitPress(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

func TestGPIOInputActiveHigh(t *testing.T) {
	pin, ctx := newLinePin(t, gpio.Low, timedEdge{0, gpio.Low}, timedEdge{50, gpio.High}, timedEdge{300, gpio.Low})
	in, err := NewGPIOInput("cancel", pin, InputOptions{ActiveHigh: true, Now: pin.Now})
	if err != nil {
		t.Fatal(err)
	}
	if pin.P != gpio.PullDown {
		t.Fatalf("pull = %v", pin.P)
	}
	// The low edge first is a release-like edge, not a press.
	got := presses(t, ctx, in, pin)
	if want := []pressAt{{Press{Name: "cancel"}, 300}}; !slices.Equal(got, want) {
		t.Fatalf("presses %v, want %v", got, want)
	}
}

func TestLongPressValidation(t *testing.T) {
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{Kind: "sim", LongPressMs: -1}, "board.long_press_ms -1"},
		{Config{Kind: "sim", LongPressMs: 60000}, "board.long_press_ms 60000"},
		{Config{Kind: "rpi", LongPressMs: 20, Inputs: map[string]PinConfig{"ok": {Pin: "GPIO5"}}}, "board.long_press_ms 20: must be longer than board.inputs.ok's debounce (30 ms)"},
		{Config{Kind: "rpi", LongPressMs: 40, Inputs: map[string]PinConfig{"ok": {Pin: "GPIO5", DebounceMs: 50}}}, "board.long_press_ms 40: must be longer than board.inputs.ok's debounce (50 ms)"},
	} {
		err := tc.c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.c, err, tc.want)
		}
	}
	if err := (Config{Kind: "sim", LongPressMs: 1200}).Validate(); err != nil {
		t.Fatal(err)
	}
	if d := (Config{}).LongPress(); d != DefaultLongPress {
		t.Fatalf("default long press %v", d)
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
