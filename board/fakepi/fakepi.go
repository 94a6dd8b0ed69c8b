// Package fakepi is a Raspberry Pi assembled from periph.io test doubles, for
// running the whole station without hardware: gpiotest pins for the buttons,
// LED and buzzer; an I²C bus carrying a fake PN532 (0x24) and a fake SSD1306
// (0x3C) that speak the chips' byte protocols; empty spitest ports. The
// station's real drivers (badge/pn532, panel/ssd1306, board.Wired) run on
// top unchanged. A serial printer on a pty comes from simprinter.ServePTY.
package fakepi

import (
	"fmt"
	"time"

	"periph.io/x/conn/v3/conntest"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spitest"

	"labelstation/board"
)

// Options configure the fake Pi.
type Options struct {
	Serial string       // default "FAKEPI-0001"
	Config board.Config // sections left out take board.DefaultPi's
	Now    func() time.Time
}

// Pi is the fake board. Board methods come from the embedded Wired, exactly
// as on a real Pi.
type Pi struct {
	*board.Wired
	// Pins are the gpiotest pins by GPIO name ("GPIO5").
	Pins map[string]*gpiotest.Pin
	// I2C1 is the bus named "1" with PN532 and OLED on it.
	I2C1   *Bus
	PN532  *PN532
	OLED   *SSD1306
	config board.Config
}

var _ board.Board = (*Pi)(nil)

// New assembles the fake Pi and wires cfg onto it with board.Wire, the same
// path board/rpi takes.
func New(opt Options) (*Pi, error) {
	if opt.Serial == "" {
		opt.Serial = "FAKEPI-0001"
	}
	if opt.Config.Kind == "" {
		opt.Config.Kind = "rpi"
	}
	opt.Config = opt.Config.WithDefaults()
	p := &Pi{Pins: map[string]*gpiotest.Pin{}, PN532: NewPN532(), OLED: NewSSD1306(128, 64), config: opt.Config}
	p.I2C1 = NewBus("1", map[uint16]Device{0x24: p.PN532, 0x3C: p.OLED})
	for n := range 28 {
		name := fmt.Sprintf("GPIO%d", n)
		p.Pins[name] = &gpiotest.Pin{N: name, Num: n, EdgesChan: make(chan gpio.Level, 16)}
	}
	w, err := board.Wire(opt.Config, board.Host{
		Serial: func() (string, error) { return opt.Serial, nil },
		Model:  "fake Raspberry Pi (periph test doubles)",
		Pin: func(name string) gpio.PinIO {
			if pin, ok := p.Pins[name]; ok {
				return pin
			}
			return nil
		},
		OpenI2C: func(name string) (i2c.BusCloser, error) {
			if name == "1" {
				return p.I2C1, nil
			}
			return nil, fmt.Errorf("fakepi: no I²C bus %q (have \"1\")", name)
		},
		OpenSPI: func(name string) (spi.PortCloser, error) {
			return &spitest.Playback{Playback: conntest.Playback{DontPanic: true}}, nil
		},
		Now: opt.Now,
	})
	if err != nil {
		return nil, err
	}
	p.Wired = w
	return p, nil
}

// Press presses and releases the named input's button: the pressed edge
// then the released edge, as the line would show them.
func (p *Pi) Press(input string) error {
	if err := p.Hold(input); err != nil {
		return err
	}
	return p.Release(input)
}

// Hold presses the named input's button and keeps it down: held past
// board.long_press_ms on the board's clock, it is a long press.
func (p *Pi) Hold(input string) error { return p.edge(input, true) }

// Release lets go of the named input's button.
func (p *Pi) Release(input string) error { return p.edge(input, false) }

func (p *Pi) edge(input string, press bool) error {
	pc, ok := p.config.Inputs[input]
	if !ok {
		return fmt.Errorf("%w: fakepi: input %q", board.ErrNoPin, input)
	}
	pin := p.Pins[pc.Pin]
	l := gpio.Level(pc.Active == "high") // the pressed level
	if !press {
		l = !l
	}
	select {
	case pin.EdgesChan <- l:
		return nil
	default:
		return fmt.Errorf("fakepi: %s: edge queue full", pc.Pin)
	}
}

// On reports whether the named output is driven to its active level.
func (p *Pi) On(output string) (bool, error) {
	pc, ok := p.config.Outputs[output]
	if !ok {
		return false, fmt.Errorf("%w: fakepi: output %q", board.ErrNoPin, output)
	}
	l := p.Pins[pc.Pin].Read()
	return l == (pc.Active != "low"), nil
}
