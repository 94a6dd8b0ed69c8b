// Package parts opens the configured badge reader and display panel on a
// board: the wiring diagram of docs/wiring.md in code, so cmd/stationd only
// names kinds.
package parts

import (
	"context"
	"fmt"

	"periph.io/x/conn/v3/display"
	"periph.io/x/conn/v3/gpio"

	"labelstation/board"
	"labelstation/drivers/badge"
	"labelstation/drivers/badge/mfrc522"
	"labelstation/drivers/badge/pn532"
	"labelstation/drivers/badge/rdm6300"
	"labelstation/drivers/badge/wedge"
	"labelstation/drivers/panel/epaper"
	"labelstation/drivers/panel/fb"
	"labelstation/drivers/panel/ssd1306"
	"labelstation/drivers/serialport"
)

// Default devices when the config leaves badge.device / display.device empty.
const (
	DefaultUART = "/dev/serial0"
	DefaultFB   = "/dev/fb0"
)

// OpenReader opens badge.reader kind. device is the board bus name for I²C
// and SPI readers (default "main" / "reader"), or a device path for UART
// readers (default /dev/serial0) and wedges (required).
func OpenReader(ctx context.Context, kind, device string, b board.Board) (badge.Reader, error) {
	or := func(def string) string {
		if device == "" {
			return def
		}
		return device
	}
	switch kind {
	case "sim":
		return badge.NewSim(or("sim")), nil
	case "pn532-i2c":
		bus, err := b.I2C(or("main"))
		if err != nil {
			return nil, fmt.Errorf("parts: pn532-i2c: %w", err)
		}
		return pn532.NewI2C(ctx, bus, pn532.Opts{})
	case "pn532-spi":
		port, err := b.SPI(or("reader"))
		if err != nil {
			return nil, fmt.Errorf("parts: pn532-spi: %w", err)
		}
		return pn532.NewSPI(ctx, port, pn532.Opts{})
	case "pn532-uart":
		p, err := serialport.Open(or(DefaultUART), serialport.Config{Baud: 115200})
		if err != nil {
			return nil, fmt.Errorf("parts: pn532-uart: %w", err)
		}
		r, err := pn532.NewHSU(ctx, p, pn532.Opts{})
		if err != nil {
			p.Close()
			return nil, err
		}
		return r, nil
	case "mfrc522":
		port, err := b.SPI(or("reader"))
		if err != nil {
			return nil, fmt.Errorf("parts: mfrc522: %w", err)
		}
		rst, err := b.GPIO("mfrc522_rst")
		if err != nil {
			return nil, fmt.Errorf("parts: mfrc522: %w", err)
		}
		irq, err := b.GPIO("mfrc522_irq")
		if err != nil {
			return nil, fmt.Errorf("parts: mfrc522: %w", err)
		}
		return mfrc522.New(port, rst, irq, mfrc522.Opts{})
	case "rdm6300":
		return rdm6300.Open(or(DefaultUART))
	case "wedge":
		if device == "" {
			return nil, fmt.Errorf("parts: wedge: badge.device must name the event device (/dev/input/by-id/...-event-kbd)")
		}
		return wedge.Open(device, wedge.Opts{})
	}
	return nil, fmt.Errorf("parts: badge.reader %q: want sim, pn532-i2c, pn532-spi, pn532-uart, mfrc522, rdm6300 or wedge", kind)
}

// PanelOpts are the display section's panel settings.
type PanelOpts struct {
	Width, Height int
	Rotate        int // 0, 90, 180, 270
	Contrast      int // 0..255; SSD1306 only
	Device        string
	// Model selects the e-paper generation: "2in13v2", "2in13v3",
	// "2in13v4" (default).
	Model string
}

// OpenPanel opens display.kind "ssd1306" (I²C bus "main"; Device "spi" for
// 4-wire SPI on port "panel" with GPIO panel_dc), "epaper" (SPI port
// "panel", GPIOs panel_dc, panel_cs, panel_rst, panel_busy) or "fb"
// (Device, default /dev/fb0).
func OpenPanel(kind string, o PanelOpts, b board.Board) (display.Drawer, error) {
	switch kind {
	case "ssd1306":
		if o.Rotate != 0 && o.Rotate != 180 {
			return nil, fmt.Errorf("parts: ssd1306: display.rotate %d: want 0 or 180", o.Rotate)
		}
		so := ssd1306.Opts{W: o.Width, H: o.Height, Rotate180: o.Rotate == 180, Contrast: o.Contrast}
		if o.Device == "spi" {
			port, err := b.SPI("panel")
			if err != nil {
				return nil, fmt.Errorf("parts: ssd1306: %w", err)
			}
			dc, err := b.GPIO("panel_dc")
			if err != nil {
				return nil, fmt.Errorf("parts: ssd1306: %w", err)
			}
			return ssd1306.NewSPI(port, dc, so)
		}
		bus, err := b.I2C("main")
		if err != nil {
			return nil, fmt.Errorf("parts: ssd1306: %w", err)
		}
		return ssd1306.NewI2C(bus, so)
	case "epaper":
		if o.Rotate != 0 {
			return nil, fmt.Errorf("parts: epaper: display.rotate %d: only 0 is supported", o.Rotate)
		}
		port, err := b.SPI("panel")
		if err != nil {
			return nil, fmt.Errorf("parts: epaper: %w", err)
		}
		var pins [4]gpio.PinIO
		for i, n := range []string{"panel_dc", "panel_cs", "panel_rst", "panel_busy"} {
			if pins[i], err = b.GPIO(n); err != nil {
				return nil, fmt.Errorf("parts: epaper: %w", err)
			}
		}
		model := o.Model
		if model == "" {
			model = "2in13v4"
		}
		return epaper.Open(port, pins[0], pins[1], pins[2], pins[3], epaper.Opts{Model: model})
	case "fb":
		dev := o.Device
		if dev == "" {
			dev = DefaultFB
		}
		return fb.Open(dev, fb.Opts{Rotate: o.Rotate})
	}
	return nil, fmt.Errorf("parts: display.kind %q: want ssd1306, epaper or fb", kind)
}
