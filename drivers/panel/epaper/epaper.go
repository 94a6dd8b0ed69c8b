// Package epaper drives the Waveshare 2.13" e-paper panels (V2, V3, V4) via
// periph.io/x/devices/v3 and decides between partial and full refresh.
//
// Waveshare's panel notes: a full refresh flashes and takes ~2 s; partial
// refresh is fast but leaves ghosting, so do a full refresh after several
// partial ones; and keep at least 180 s between refreshes that the panel
// is stressed by (full refresh). Panel policy here: partial whenever the
// model supports it, a full refresh at the first draw and then only once
// MaxPartial partial refreshes have accumulated AND MinFullInterval has
// passed since the last full one. An unchanged frame is not sent at all.
package epaper

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"time"

	"periph.io/x/conn/v3/display"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/devices/v3/waveshare2in13v2"
	"periph.io/x/devices/v3/waveshare2in13v3"
	"periph.io/x/devices/v3/waveshare2in13v4"
)

// Device is what the panel needs from a periph e-paper driver.
type Device interface {
	display.Drawer
	Clear(color.Color) error
	Sleep() error
}

// Opts configure the refresh policy.
type Opts struct {
	// Model is "2in13v2", "2in13v3" (partial refresh) or "2in13v4" (periph
	// supports full refresh only).
	Model string
	// MaxPartial partial refreshes before a full one is due; 0 means
	// DefaultMaxPartial.
	MaxPartial int
	// MinFullInterval between full refreshes; 0 means DefaultMinFullInterval.
	MinFullInterval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// The refresh policy's defaults: Waveshare asks for a full refresh after
// several partial ones (ghosting builds up) and at most one stressful full
// refresh every 180 s.
const (
	DefaultMaxPartial      = 20
	DefaultMinFullInterval = 180 * time.Second
)

func (o Opts) withDefaults() Opts {
	if o.MaxPartial == 0 {
		o.MaxPartial = DefaultMaxPartial
	}
	if o.MinFullInterval == 0 {
		o.MinFullInterval = DefaultMinFullInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Panel is an e-paper panel with the refresh policy.
type Panel struct {
	dev         Device
	setPartial  func(bool) error // nil: full refresh only
	opt         Opts
	want, shown *image.Gray
	drawn       bool
	lastFull    time.Time
	partials    int
}

var _ display.Drawer = (*Panel)(nil)

// Open initialises a Waveshare 2.13" panel of o.Model on SPI with its
// control pins (docs/wiring.md: DC GPIO25, CS CE0, RST GPIO17, BUSY GPIO24).
func Open(port spi.Port, dc, cs, rst gpio.PinOut, busy gpio.PinIn, o Opts) (*Panel, error) {
	switch o.Model {
	case "2in13v2":
		opts := waveshare2in13v2.EPD2in13v2
		d, err := waveshare2in13v2.New(port, dc, cs, rst, busy, &opts)
		if err == nil {
			err = d.Init()
		}
		if err != nil {
			return nil, fmt.Errorf("epaper: %s: %w", o.Model, err)
		}
		return New(d, func(p bool) error { return d.SetUpdateMode(waveshare2in13v2.PartialUpdate(p)) }, o), nil
	case "2in13v3":
		opts := waveshare2in13v3.EPD2in13v3
		d, err := waveshare2in13v3.New(port, dc, cs, rst, busy, &opts)
		if err == nil {
			err = d.Init()
		}
		if err != nil {
			return nil, fmt.Errorf("epaper: %s: %w", o.Model, err)
		}
		return New(d, func(p bool) error { return d.SetUpdateMode(waveshare2in13v3.PartialUpdate(p)) }, o), nil
	case "2in13v4":
		opts := waveshare2in13v4.EPD2in13v4
		d, err := waveshare2in13v4.New(port, dc, cs, rst, busy, &opts)
		if err == nil {
			err = d.Init()
		}
		if err != nil {
			return nil, fmt.Errorf("epaper: %s: %w", o.Model, err)
		}
		return New(d, nil, o), nil
	}
	return nil, fmt.Errorf("epaper: model %q: want 2in13v2, 2in13v3 or 2in13v4", o.Model)
}

// New wraps an initialised device; setPartial selects the update mode, nil
// if the device only refreshes fully.
func New(dev Device, setPartial func(bool) error, o Opts) *Panel {
	b := dev.Bounds()
	return &Panel{dev: dev, setPartial: setPartial, opt: o.withDefaults(), want: image.NewGray(b), shown: image.NewGray(b)}
}

func (p *Panel) String() string          { return "epaper(" + p.dev.String() + ")" }
func (p *Panel) ColorModel() color.Model { return p.dev.ColorModel() }
func (p *Panel) Bounds() image.Rectangle { return p.dev.Bounds() }

// Draw composes src into the frame and refreshes the panel per the policy.
func (p *Panel) Draw(r image.Rectangle, src image.Image, sp image.Point) error {
	draw.Draw(p.want, r, src, sp, draw.Src)
	// Threshold like the 1-bit panel will, so that invisible changes do
	// not cost a refresh.
	for i, v := range p.want.Pix {
		if v >= 128 {
			p.want.Pix[i] = 255
		} else {
			p.want.Pix[i] = 0
		}
	}
	if p.drawn && string(p.want.Pix) == string(p.shown.Pix) {
		return nil
	}
	now := p.opt.Now()
	full := p.setPartial == nil || !p.drawn ||
		(p.partials >= p.opt.MaxPartial && now.Sub(p.lastFull) >= p.opt.MinFullInterval)
	if p.setPartial != nil {
		if err := p.setPartial(!full); err != nil {
			return fmt.Errorf("epaper: update mode: %w", err)
		}
	}
	if err := p.dev.Draw(p.dev.Bounds(), p.want, p.want.Bounds().Min); err != nil {
		return fmt.Errorf("epaper: draw: %w", err)
	}
	copy(p.shown.Pix, p.want.Pix)
	p.drawn = true
	if full {
		p.lastFull, p.partials = now, 0
	} else {
		p.partials++
	}
	return nil
}

// Halt blanks the panel with a full white refresh (an e-paper keeps its
// last picture without power) and puts the controller in deep sleep.
func (p *Panel) Halt() error {
	if p.setPartial != nil {
		if err := p.setPartial(false); err != nil {
			return fmt.Errorf("epaper: update mode: %w", err)
		}
	}
	if err := p.dev.Clear(color.White); err != nil {
		return fmt.Errorf("epaper: clear: %w", err)
	}
	if err := p.dev.Sleep(); err != nil {
		return fmt.Errorf("epaper: sleep: %w", err)
	}
	return nil
}
