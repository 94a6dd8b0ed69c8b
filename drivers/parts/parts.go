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
	"labelstation/drivers/panel/rotate"
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
	// Bus is the SSD1306's bus: "i2c" (default) or "spi".
	Bus string
	// Model selects the e-paper generation: "2in13v2", "2in13v3",
	// "2in13v4" (default).
	Model string
}

// OpenPanel opens display.kind "ssd1306" (Bus "i2c": I²C bus "main"; Bus
// "spi": 4-wire SPI on port "panel" with GPIO panel_dc), "epaper" (SPI port
// "panel", GPIOs panel_dc, panel_cs, panel_rst, panel_busy) or "fb"
// (Device, default /dev/fb0), turned by Rotate degrees clockwise. An
// e-paper's controller is portrait (122×250); at Rotate 0 it shows
// landscape (250×122), the way the screens are designed.
func OpenPanel(kind string, o PanelOpts, b board.Board) (display.Drawer, error) {
	switch kind {
	case "ssd1306":
		so := ssd1306.Opts{W: o.Width, H: o.Height, Rotate180: o.Rotate == 180 || o.Rotate == 270, Contrast: o.Contrast}
		var d display.Drawer
		var err error
		switch o.Bus {
		case "spi":
			port, perr := b.SPI("panel")
			if perr != nil {
				return nil, fmt.Errorf("parts: ssd1306: %w", perr)
			}
			dc, perr := b.GPIO("panel_dc")
			if perr != nil {
				return nil, fmt.Errorf("parts: ssd1306: %w", perr)
			}
			d, err = ssd1306.NewSPI(port, dc, so)
		case "", "i2c":
			bus, perr := b.I2C("main")
			if perr != nil {
				return nil, fmt.Errorf("parts: ssd1306: %w", perr)
			}
			d, err = ssd1306.NewI2C(bus, so)
		default:
			return nil, fmt.Errorf("parts: ssd1306: display.bus %q: want i2c or spi", o.Bus)
		}
		if err != nil {
			return nil, err
		}
		// The controller flips (180); a quarter turn is done in software.
		if o.Rotate == 90 || o.Rotate == 270 {
			return rotate.New(d, 90)
		}
		return d, nil
	case "epaper":
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
		d, err := epaper.Open(port, pins[0], pins[1], pins[2], pins[3], epaper.Opts{Model: model})
		if err != nil {
			return nil, err
		}
		return rotate.New(d, (o.Rotate+90)%360)
	case "fb":
		dev := o.Device
		if dev == "" {
			dev = DefaultFB
		}
		return fb.Open(dev, fb.Opts{Rotate: o.Rotate})
	}
	return nil, fmt.Errorf("parts: display.kind %q: want ssd1306, epaper or fb", kind)
}
