// Package sim is the development board: no hardware, a serial number from
// the config, buttons pressed from code (or a web page), outputs recorded.
package sim

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/spi"

	"labelstation/board"
)

// Options configure the sim board.
type Options struct {
	Serial  string   // default "SIM-0001"
	Model   string   // default "sim"
	Inputs  []string // button names
	Outputs []string // LED, buzzer names
}

// Board is the sim board.
type Board struct {
	opt     Options
	inputs  map[string]*Input
	outputs map[string]*Output
}

var _ board.Board = (*Board)(nil)

// New returns a sim board with the named inputs and outputs.
func New(opt Options) *Board {
	if opt.Serial == "" {
		opt.Serial = "SIM-0001"
	}
	if opt.Model == "" {
		opt.Model = "sim"
	}
	b := &Board{opt: opt, inputs: map[string]*Input{}, outputs: map[string]*Output{}}
	for _, n := range opt.Inputs {
		b.inputs[n] = &Input{name: n, presses: make(chan board.Press, 16)}
	}
	for _, n := range opt.Outputs {
		b.outputs[n] = &Output{name: n}
	}
	return b
}

func (b *Board) Serial() (string, error) { return b.opt.Serial, nil }
func (b *Board) Model() string           { return b.opt.Model }

func (b *Board) Input(name string) (board.Input, error) {
	if in, ok := b.inputs[name]; ok {
		return in, nil
	}
	return nil, fmt.Errorf("%w: sim has no input %q (have %q)", board.ErrNoPin, name, b.opt.Inputs)
}

func (b *Board) Output(name string) (board.Output, error) {
	if o, ok := b.outputs[name]; ok {
		return o, nil
	}
	return nil, fmt.Errorf("%w: sim has no output %q (have %q)", board.ErrNoPin, name, b.opt.Outputs)
}

func (b *Board) I2C(name string) (i2c.Bus, error) {
	return nil, fmt.Errorf("%w: sim has no I²C bus %q", board.ErrNoBus, name)
}

func (b *Board) SPI(name string) (spi.Port, error) {
	return nil, fmt.Errorf("%w: sim has no SPI port %q", board.ErrNoBus, name)
}

func (b *Board) GPIO(name string) (gpio.PinIO, error) {
	return nil, fmt.Errorf("%w: sim has no GPIO %q", board.ErrNoPin, name)
}

// Press presses the named button once, briefly. Up to 16 presses queue while
// nobody waits; more are dropped, as a real button pressed in a busy moment is.
func (b *Board) Press(name string) error { return b.push(name, false) }

// LongPress holds the named button down for a long press.
func (b *Board) LongPress(name string) error { return b.push(name, true) }

func (b *Board) push(name string, long bool) error {
	in, ok := b.inputs[name]
	if !ok {
		return fmt.Errorf("%w: sim has no input %q", board.ErrNoPin, name)
	}
	select {
	case in.presses <- board.Press{Name: name, Long: long}:
	default:
	}
	return nil
}

// Halt turns every output off.
func (b *Board) Halt() error {
	for _, o := range b.outputs {
		_ = o.Set(false)
	}
	return nil
}

// Input is a sim button.
type Input struct {
	name    string
	presses chan board.Press
}

func (in *Input) String() string { return "sim:" + in.name }

// WaitPress implements board.Input.
func (in *Input) WaitPress(ctx context.Context) (board.Press, error) {
	select {
	case p := <-in.presses:
		return p, nil
	case <-ctx.Done():
		return board.Press{}, ctx.Err()
	}
}

// Output is a sim output that records every Set.
type Output struct {
	name    string
	mu      sync.Mutex
	on      bool
	history []bool
}

func (o *Output) String() string { return "sim:" + o.name }

// Set implements board.Output.
func (o *Output) Set(on bool) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.on = on
	o.history = append(o.history, on)
	return nil
}

// On reports the current state.
func (o *Output) On() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.on
}

// History returns every value Set so far, in order.
func (o *Output) History() []bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.history)
}
