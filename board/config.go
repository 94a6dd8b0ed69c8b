package board

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/spi"
)

// Config names the board and its wiring; it is the "board" section of the
// station config. Pin and bus names are periph.io names ("GPIO17", I²C "1",
// SPI "SPI0.1"); defaults are in DefaultPi and docs/wiring.md.
type Config struct {
	Kind    string               `json:"kind"`             // "sim" or "rpi"
	Serial  string               `json:"serial,omitempty"` // sim only
	Inputs  map[string]PinConfig `json:"inputs,omitempty"`
	Outputs map[string]PinConfig `json:"outputs,omitempty"`
	I2C     map[string]string    `json:"i2c,omitempty"` // name → periph I²C bus name
	SPI     map[string]string    `json:"spi,omitempty"` // name → periph SPI port name
	// GPIO names raw lines for drivers: name → periph pin name.
	GPIO map[string]string `json:"gpio,omitempty"`
	// LongPressMs is how long a button is held for a long press; 0 means
	// DefaultLongPress.
	LongPressMs int `json:"long_press_ms,omitempty"`
}

// maxLongPressMs bounds board.long_press_ms: a hold longer than this reads as a stuck button.
const maxLongPressMs = 10000

// LongPress is the configured long-press time.
func (c Config) LongPress() time.Duration {
	if c.LongPressMs == 0 {
		return DefaultLongPress
	}
	return time.Duration(c.LongPressMs) * time.Millisecond
}

// PinConfig is one input or output.
type PinConfig struct {
	Pin string `json:"pin"`
	// Active is "low" or "high": the level meaning pressed / on. Inputs
	// default to "low" (button to ground, internal pull-up), outputs to
	// "high".
	Active string `json:"active,omitempty"`
	// DebounceMs is the input debounce window; 0 means 30.
	DebounceMs int `json:"debounce_ms,omitempty"`
}

// DefaultPi is the wiring in docs/wiring.md: two buttons, a status LED and
// a buzzer on pins no supported HAT or reader uses, I²C bus 1 for the
// PN532 and the SSD1306, SPI0 CE0 for e-paper and CE1 for the MFRC522.
func DefaultPi() Config {
	return Config{
		Kind: "rpi",
		Inputs: map[string]PinConfig{
			"ok":     {Pin: "GPIO5"},
			"cancel": {Pin: "GPIO6"},
		},
		Outputs: map[string]PinConfig{
			"led":    {Pin: "GPIO13"},
			"buzzer": {Pin: "GPIO26"},
		},
		I2C: map[string]string{"main": "1"},
		SPI: map[string]string{"panel": "SPI0.0", "reader": "SPI0.1"},
		GPIO: map[string]string{
			"mfrc522_rst": "GPIO22", "mfrc522_irq": "GPIO23",
			"panel_dc": "GPIO25", "panel_rst": "GPIO17", "panel_busy": "GPIO24", "panel_cs": "GPIO8",
		},
	}
}

// WithDefaults fills the sections a config leaves out (nil maps) from
// DefaultPi, for kinds other than "sim"; an empty map keeps a section empty.
func (c Config) WithDefaults() Config {
	if c.Kind == "sim" {
		return c
	}
	d := DefaultPi()
	if c.Inputs == nil {
		c.Inputs = d.Inputs
	}
	if c.Outputs == nil {
		c.Outputs = d.Outputs
	}
	if c.I2C == nil {
		c.I2C = d.I2C
	}
	if c.SPI == nil {
		c.SPI = d.SPI
	}
	if c.GPIO == nil {
		c.GPIO = d.GPIO
	}
	return c
}

// Validate checks the config's shape; whether the pins exist is checked
// when the board is opened.
func (c Config) Validate() error {
	switch c.Kind {
	case "sim", "rpi":
	case "":
		return fmt.Errorf("%w: board.kind is empty (want sim or rpi)", ErrUnknown)
	default:
		return fmt.Errorf("%w: board.kind %q (want sim or rpi)", ErrUnknown, c.Kind)
	}
	if c.LongPressMs < 0 || c.LongPressMs > maxLongPressMs {
		return fmt.Errorf("board: board.long_press_ms %d: want 0 (default %d) to %d", c.LongPressMs, DefaultLongPress.Milliseconds(), maxLongPressMs)
	}
	check := func(kind string, m map[string]PinConfig) error {
		for _, name := range slices.Sorted(maps.Keys(m)) {
			p := m[name]
			if p.Pin == "" && c.Kind != "sim" {
				return fmt.Errorf("board: board.%s.%s.pin is empty", kind, name)
			}
			switch p.Active {
			case "", "low", "high":
			default:
				return fmt.Errorf("board: board.%s.%s.active %q: want low or high", kind, name, p.Active)
			}
			if p.DebounceMs < 0 {
				return fmt.Errorf("board: board.%s.%s.debounce_ms %d: must be >= 0", kind, name, p.DebounceMs)
			}
			if kind != "inputs" {
				continue
			}
			debounce := time.Duration(p.DebounceMs) * time.Millisecond
			if debounce == 0 {
				debounce = defaultDebounce
			}
			if debounce >= c.LongPress() {
				return fmt.Errorf("board: board.long_press_ms %d: must be longer than board.inputs.%s's debounce (%d ms)", c.LongPress().Milliseconds(), name, debounce.Milliseconds())
			}
		}
		return nil
	}
	if err := check("inputs", c.Inputs); err != nil {
		return err
	}
	return check("outputs", c.Outputs)
}

// Wired is a Board assembled from periph pins and buses: board/rpi builds
// one from the host drivers, board/fakepi from periph's test doubles, so the
// station code runs unchanged on both.
type Wired struct {
	serial  string
	model   string
	inputs  map[string]*GPIOInput
	outputs map[string]*GPIOOutput
	i2c     map[string]i2c.BusCloser
	spi     map[string]spi.PortCloser
	gpio    map[string]gpio.PinIO
}

var _ Board = (*Wired)(nil)

// Host resolves names to hardware.
type Host struct {
	Serial  func() (string, error)
	Model   string
	Pin     func(name string) gpio.PinIO // nil if absent
	OpenI2C func(name string) (i2c.BusCloser, error)
	OpenSPI func(name string) (spi.PortCloser, error)
	Now     func() time.Time // for debounce; nil means time.Now
}

// Wire resolves every pin and bus of c on h. Errors name the config field,
// e.g. "board: board.inputs.ok.pin "GPIO99": no such pin".
func Wire(c Config, h Host) (_ *Wired, err error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	w := &Wired{
		model: h.Model, inputs: map[string]*GPIOInput{}, outputs: map[string]*GPIOOutput{},
		i2c: map[string]i2c.BusCloser{}, spi: map[string]spi.PortCloser{}, gpio: map[string]gpio.PinIO{},
	}
	defer func() {
		if err != nil {
			_ = w.Halt()
		}
	}()
	if w.serial, err = h.Serial(); err != nil {
		return nil, err
	}
	for _, name := range slices.Sorted(maps.Keys(c.Inputs)) {
		pc := c.Inputs[name]
		p := h.Pin(pc.Pin)
		if p == nil {
			return nil, fmt.Errorf("%w: board.inputs.%s.pin %q", ErrNoPin, name, pc.Pin)
		}
		in, err := NewGPIOInput(name, p, InputOptions{
			ActiveHigh: pc.Active == "high",
			Debounce:   time.Duration(pc.DebounceMs) * time.Millisecond,
			Long:       c.LongPress(),
			Now:        h.Now,
		})
		if err != nil {
			return nil, fmt.Errorf("board: board.inputs.%s: %w", name, err)
		}
		w.inputs[name] = in
	}
	for _, name := range slices.Sorted(maps.Keys(c.Outputs)) {
		pc := c.Outputs[name]
		p := h.Pin(pc.Pin)
		if p == nil {
			return nil, fmt.Errorf("%w: board.outputs.%s.pin %q", ErrNoPin, name, pc.Pin)
		}
		o, err := NewGPIOOutput(name, p, pc.Active == "low")
		if err != nil {
			return nil, fmt.Errorf("board: board.outputs.%s: %w", name, err)
		}
		w.outputs[name] = o
	}
	for _, name := range slices.Sorted(maps.Keys(c.GPIO)) {
		p := h.Pin(c.GPIO[name])
		if p == nil {
			return nil, fmt.Errorf("%w: board.gpio.%s %q", ErrNoPin, name, c.GPIO[name])
		}
		w.gpio[name] = p
	}
	for _, name := range slices.Sorted(maps.Keys(c.I2C)) {
		b, err := h.OpenI2C(c.I2C[name])
		if err != nil {
			return nil, fmt.Errorf("%w: board.i2c.%s %q: %v", ErrNoBus, name, c.I2C[name], err)
		}
		w.i2c[name] = b
	}
	for _, name := range slices.Sorted(maps.Keys(c.SPI)) {
		p, err := h.OpenSPI(c.SPI[name])
		if err != nil {
			return nil, fmt.Errorf("%w: board.spi.%s %q: %v", ErrNoBus, name, c.SPI[name], err)
		}
		w.spi[name] = p
	}
	return w, nil
}

func (w *Wired) Serial() (string, error) { return w.serial, nil }
func (w *Wired) Model() string           { return w.model }

func (w *Wired) Input(name string) (Input, error) {
	if in, ok := w.inputs[name]; ok {
		return in, nil
	}
	return nil, fmt.Errorf("%w: input %q is not in board.inputs", ErrNoPin, name)
}

func (w *Wired) Output(name string) (Output, error) {
	if o, ok := w.outputs[name]; ok {
		return o, nil
	}
	return nil, fmt.Errorf("%w: output %q is not in board.outputs", ErrNoPin, name)
}

func (w *Wired) I2C(name string) (i2c.Bus, error) {
	if b, ok := w.i2c[name]; ok {
		return b, nil
	}
	return nil, fmt.Errorf("%w: I²C bus %q is not in board.i2c", ErrNoBus, name)
}

func (w *Wired) SPI(name string) (spi.Port, error) {
	if p, ok := w.spi[name]; ok {
		return p, nil
	}
	return nil, fmt.Errorf("%w: SPI port %q is not in board.spi", ErrNoBus, name)
}

func (w *Wired) GPIO(name string) (gpio.PinIO, error) {
	if p, ok := w.gpio[name]; ok {
		return p, nil
	}
	return nil, fmt.Errorf("%w: GPIO %q is not in board.gpio", ErrNoPin, name)
}

// Halt turns outputs off, stops edge detection and closes the buses.
func (w *Wired) Halt() error {
	var errs []error
	for _, o := range w.outputs {
		errs = append(errs, o.Halt())
	}
	for _, in := range w.inputs {
		errs = append(errs, in.Halt())
	}
	for _, b := range w.i2c {
		errs = append(errs, b.Close())
	}
	for _, p := range w.spi {
		errs = append(errs, p.Close())
	}
	w.i2c, w.spi = nil, nil
	return errors.Join(errs...)
}
