// Package ssd1306 is the station's SSD1306 128×64 OLED panel on I²C or SPI:
// periph.io/x/devices/v3/ssd1306 configured from the station config
// (rotation, contrast, inversion), blanked by Halt on shutdown.
package ssd1306

import (
	"fmt"
	"image"
	"image/color"

	"periph.io/x/conn/v3/display"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/devices/v3/ssd1306"
)

// Opts configure the panel. The zero value is a 128×64 panel, upright, full
// contrast.
type Opts struct {
	W, H int // default 128×64
	// Rotate180 flips the picture for a panel mounted upside down; the
	// controller does it (segment and COM remap), free of CPU.
	Rotate180 bool
	// Contrast 1..255 sets command 0x81 (datasheet §10.1.7); 0 keeps the
	// driver's 0xFF. OLEDs age faster at high contrast.
	Contrast int
	// Invert shows dark pixels on a lit background.
	Invert bool
}

// Panel is an SSD1306 panel.
type Panel struct {
	dev *ssd1306.Dev
}

var _ display.Drawer = (*Panel)(nil)

// NewI2C opens the panel at I²C address 0x3C.
func NewI2C(bus i2c.Bus, o Opts) (*Panel, error) {
	po, err := o.periph()
	if err != nil {
		return nil, err
	}
	d, err := ssd1306.NewI2C(bus, po)
	if err != nil {
		return nil, fmt.Errorf("ssd1306: %w", err)
	}
	return configure(d, o)
}

// NewSPI opens the panel on 4-wire SPI with its D/C pin.
func NewSPI(port spi.Port, dc gpio.PinOut, o Opts) (*Panel, error) {
	po, err := o.periph()
	if err != nil {
		return nil, err
	}
	d, err := ssd1306.NewSPI(port, dc, po)
	if err != nil {
		return nil, fmt.Errorf("ssd1306: %w", err)
	}
	return configure(d, o)
}

func (o Opts) periph() (*ssd1306.Opts, error) {
	if o.Contrast < 0 || o.Contrast > 255 {
		return nil, fmt.Errorf("ssd1306: contrast %d: want 0..255", o.Contrast)
	}
	po := ssd1306.DefaultOpts
	if o.W != 0 {
		po.W = o.W
	}
	if o.H != 0 {
		po.H = o.H
	}
	if o.Rotate180 {
		po.MirrorHorizontal, po.MirrorVertical = true, true
	}
	return &po, nil
}

func configure(d *ssd1306.Dev, o Opts) (*Panel, error) {
	if o.Contrast != 0 {
		if err := d.SetContrast(byte(o.Contrast)); err != nil {
			return nil, fmt.Errorf("ssd1306: contrast: %w", err)
		}
	}
	if o.Invert {
		if err := d.Invert(true); err != nil {
			return nil, fmt.Errorf("ssd1306: invert: %w", err)
		}
	}
	return &Panel{dev: d}, nil
}

func (p *Panel) String() string { return p.dev.String() }

// ColorModel is 1 bit; Draw thresholds any image.
func (p *Panel) ColorModel() color.Model { return p.dev.ColorModel() }

// Bounds is the panel size.
func (p *Panel) Bounds() image.Rectangle { return p.dev.Bounds() }

// Draw sends the changed part of the frame (the driver diffs pages and
// columns, so an unchanged screen costs no bus traffic).
func (p *Panel) Draw(r image.Rectangle, src image.Image, sp image.Point) error {
	return p.dev.Draw(r, src, sp)
}

// SetContrast sets command 0x81 (datasheet §10.1.7): the brightness of
// every lit pixel, which the station lowers when idle.
func (p *Panel) SetContrast(level uint8) error {
	if err := p.dev.SetContrast(level); err != nil {
		return fmt.Errorf("ssd1306: contrast: %w", err)
	}
	return nil
}

// Halt switches the display off (command 0xAE, datasheet §10.1.12): the
// panel goes dark; the next Draw turns it on again.
func (p *Panel) Halt() error { return p.dev.Halt() }
