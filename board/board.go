// Package board is the station's view of the computer it runs on: serial
// number, model, named inputs (buttons) and outputs (status LED, buzzer),
// and the I²C/SPI buses the badge reader and display hang off. Every pin and
// bus is named in the config file; the defaults are in docs/wiring.md.
package board

import (
	"context"
	"errors"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/spi"
)

// Board is one board: the Raspberry Pi (board/rpi), the development sim
// (board/sim) or the fake Pi built from periph test doubles (board/fakepi).
type Board interface {
	// Serial is the hardware serial number sent with enrollment so that a
	// reset station gets its identity back.
	Serial() (string, error)
	// Model is a human-readable model, e.g. "Raspberry Pi 4 Model B Rev 1.4".
	Model() string
	// Input returns the named input; errors wrap ErrNoPin.
	Input(name string) (Input, error)
	// Output returns the named output; errors wrap ErrNoPin.
	Output(name string) (Output, error)
	// I2C returns the named I²C bus; errors wrap ErrNoBus.
	I2C(name string) (i2c.Bus, error)
	// SPI returns the named SPI port; errors wrap ErrNoBus.
	SPI(name string) (spi.Port, error)
	// GPIO returns a raw line a driver controls itself (a reader's reset
	// and IRQ, an e-paper's DC/RST/BUSY); errors wrap ErrNoPin.
	GPIO(name string) (gpio.PinIO, error)
	// Halt turns every output off and releases the buses.
	Halt() error
}

// Input is a button: debounced presses, short or long.
type Input interface {
	String() string
	// WaitPress blocks until the next press (after debounce) or ctx ends. A short press is
	// reported when the button is let go; a long one as soon as it has been held long enough,
	// so the user feels it act while still holding.
	WaitPress(ctx context.Context) (Press, error)
}

// Press is one press of the named button. Long: it was held at least the long-press time
// (board.long_press_ms), which lets two buttons carry a third meaning such as "back".
type Press struct {
	Name string
	Long bool
}

// DefaultLongPress is how long a button is held for a long press when the config says
// nothing: long enough that a firm ordinary press never counts, short enough not to feel stuck.
const DefaultLongPress = 800 * time.Millisecond

// Output is an on/off line: status LED, buzzer, relay.
type Output interface {
	String() string
	Set(on bool) error
}

var (
	// ErrNoPin: the configured input or output does not exist on this board.
	ErrNoPin = errors.New("board: no such pin")
	// ErrNoBus: the configured bus does not exist on this board.
	ErrNoBus = errors.New("board: no such bus")
	// ErrUnknown: the configured board kind is not supported, or the
	// configured board is not the one we run on.
	ErrUnknown = errors.New("board: unknown board")
	// ErrNoSerial: the board has no readable serial number.
	ErrNoSerial = errors.New("board: no serial number")
)

// Pattern is an on/off rhythm for an Output: on for p[0], off for p[1], on
// for p[2], …; the output is off at the end.
type Pattern []time.Duration

// Common buzzer and LED patterns.
var (
	BeepOK    = Pattern{80 * time.Millisecond}
	BeepError = Pattern{80 * time.Millisecond, 80 * time.Millisecond, 80 * time.Millisecond, 80 * time.Millisecond, 300 * time.Millisecond}
)

// Play runs p on o. after is the timer (time.After in production, a fake
// in tests). The output is left off even when ctx ends early.
func Play(ctx context.Context, o Output, p Pattern, after func(time.Duration) <-chan time.Time) (err error) {
	if after == nil {
		after = time.After
	}
	defer func() {
		if oerr := o.Set(false); err == nil {
			err = oerr
		}
	}()
	for i, d := range p {
		if err := o.Set(i%2 == 0); err != nil {
			return err
		}
		select {
		case <-after(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
