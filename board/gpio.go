package board

import (
	"context"
	"fmt"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// InputOptions configure a GPIO button.
type InputOptions struct {
	// ActiveHigh: pressed reads High. Default false: the usual button to
	// ground with the internal pull-up, pressed reads Low.
	ActiveHigh bool
	// Debounce: an edge counts only after the line was quiet this long;
	// 0 means 30ms. Contacts bounce for a few ms (both on press and
	// release), so a glitch during release is not a press.
	Debounce time.Duration
	// Long: a press held this long is a long press; 0 means DefaultLongPress.
	Long time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Poll bounds how long WaitPress waits for an edge before re-checking
	// ctx and the line; 0 means 100ms.
	Poll time.Duration
}

// defaultDebounce outlasts the bounce of common tactile switches (a few ms).
const defaultDebounce = 30 * time.Millisecond

// GPIOInput is a button on a GPIO line with edge detection and debounce.
// The state below belongs to the one goroutine that calls WaitPress.
type GPIOInput struct {
	name     string
	pin      gpio.PinIn
	opt      InputOptions
	lastEdge time.Time
	// down: the debounced line is pressed, since pressedAt; reported: its
	// long press was already reported, so letting go reports nothing.
	down, reported bool
	pressedAt      time.Time
}

var _ Input = (*GPIOInput)(nil)

// NewGPIOInput configures pin as an input with a pull toward "released" and
// edge detection on both edges.
func NewGPIOInput(name string, pin gpio.PinIn, opt InputOptions) (*GPIOInput, error) {
	if opt.Debounce == 0 {
		opt.Debounce = defaultDebounce
	}
	if opt.Long == 0 {
		opt.Long = DefaultLongPress
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Poll == 0 {
		opt.Poll = 100 * time.Millisecond
	}
	pull := gpio.PullUp
	if opt.ActiveHigh {
		pull = gpio.PullDown
	}
	if err := pin.In(pull, gpio.BothEdges); err != nil {
		return nil, fmt.Errorf("board: input %q on %s: %w", name, pin, err)
	}
	return &GPIOInput{name: name, pin: pin, opt: opt}, nil
}

func (b *GPIOInput) String() string { return b.name + "(" + b.pin.String() + ")" }

// WaitPress implements Input. The press and release are edges that follow
// at least Debounce of quiet; edges within Debounce of the previous edge are
// bounce and only extend the quiet period. How long the button was held is
// the time between those two edges. While the button is held, the wait for
// the next edge is cut short at the long-press time, so a long press is
// reported without waiting for the release; and a line that settled without
// a countable edge (a release lost in bounce) is read once it has been
// quiet for Debounce.
func (b *GPIOInput) WaitPress(ctx context.Context) (Press, error) {
	for {
		if err := ctx.Err(); err != nil {
			return Press{}, err
		}
		wait := b.opt.Poll
		if b.down && !b.reported {
			if left := b.opt.Long - b.opt.Now().Sub(b.pressedAt); left < wait {
				wait = max(left, time.Millisecond)
			}
		}
		edge := b.pin.WaitForEdge(wait)
		t := b.opt.Now()
		if edge {
			quiet := b.lastEdge.IsZero() || t.Sub(b.lastEdge) >= b.opt.Debounce
			b.lastEdge = t
			if !quiet {
				continue
			}
			if p, ok := b.level(b.pressed(), t); ok {
				return p, nil
			}
			continue
		}
		if !b.lastEdge.IsZero() && t.Sub(b.lastEdge) >= b.opt.Debounce {
			if p, ok := b.level(b.pressed(), b.lastEdge); ok {
				return p, nil
			}
		}
		if b.down && !b.reported && t.Sub(b.pressedAt) >= b.opt.Long && b.pressed() {
			b.reported = true
			return Press{Name: b.name, Long: true}, nil
		}
	}
}

func (b *GPIOInput) pressed() bool { return (b.pin.Read() == gpio.High) == b.opt.ActiveHigh }

// level moves the debounced state to pressed as of t; letting go reports the
// press unless its long press was already reported.
func (b *GPIOInput) level(pressed bool, t time.Time) (Press, bool) {
	switch {
	case pressed && !b.down:
		b.down, b.reported, b.pressedAt = true, false, t
	case !pressed && b.down:
		b.down = false
		if !b.reported {
			return Press{Name: b.name, Long: t.Sub(b.pressedAt) >= b.opt.Long}, true
		}
	}
	return Press{}, false
}

// Halt stops edge detection.
func (b *GPIOInput) Halt() error { return b.pin.In(gpio.PullNoChange, gpio.NoEdge) }

// GPIOOutput is an LED, buzzer or relay on a GPIO line.
type GPIOOutput struct {
	name      string
	pin       gpio.PinOut
	activeLow bool
}

var _ Output = (*GPIOOutput)(nil)

// NewGPIOOutput drives pin to "off" at once, so a boot never leaves the
// buzzer sounding.
func NewGPIOOutput(name string, pin gpio.PinOut, activeLow bool) (*GPIOOutput, error) {
	o := &GPIOOutput{name: name, pin: pin, activeLow: activeLow}
	if err := o.Set(false); err != nil {
		return nil, err
	}
	return o, nil
}

func (o *GPIOOutput) String() string { return o.name + "(" + o.pin.String() + ")" }

// Set implements Output.
func (o *GPIOOutput) Set(on bool) error {
	l := gpio.Level(on != o.activeLow)
	if err := o.pin.Out(l); err != nil {
		return fmt.Errorf("board: output %q on %s: %w", o.name, o.pin, err)
	}
	return nil
}

// Halt turns the output off.
func (o *GPIOOutput) Halt() error { return o.Set(false) }
