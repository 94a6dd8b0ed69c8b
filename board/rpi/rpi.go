// Package rpi is the Raspberry Pi board (Zero 2 W, 3, 4, 5) on
// periph.io/x/host/v3. GPIO, I²C and SPI come from the host drivers; on the
// Pi 5, whose GPIO sits behind the RP1 south bridge, pins come from the GPIO
// character device (gpioioctl), the only driver that reaches them.
package rpi

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/spi/spireg"
	"periph.io/x/host/v3"
	"periph.io/x/host/v3/gpioioctl"
	hostrpi "periph.io/x/host/v3/rpi"

	"labelstation/board"
)

// Open initialises periph's host drivers and wires c. It fails with
// board.ErrUnknown when not running on a Raspberry Pi.
func Open(c board.Config) (*board.Wired, error) {
	if c.Kind != "rpi" {
		return nil, fmt.Errorf("%w: rpi.Open with board.kind %q", board.ErrUnknown, c.Kind)
	}
	if _, err := host.Init(); err != nil {
		return nil, fmt.Errorf("board: rpi: periph host init: %w", err)
	}
	root := os.DirFS("/")
	model := Model(root)
	if !hostrpi.Present() {
		return nil, fmt.Errorf("%w: board.kind is rpi but this is not a Raspberry Pi (model %q)", board.ErrUnknown, model)
	}
	return board.Wire(c, board.Host{
		Serial:  func() (string, error) { return Serial(root) },
		Model:   model,
		Pin:     pinLookup(model),
		OpenI2C: i2creg.Open,
		OpenSPI: spireg.Open,
	})
}

func pinLookup(model string) func(string) gpio.PinIO {
	pi5 := IsPi5(model)
	return func(name string) gpio.PinIO {
		if pi5 {
			for _, chip := range gpioioctl.Chips {
				if l := chip.ByName(name); l != nil {
					return l
				}
			}
			return nil
		}
		return gpioreg.ByName(name)
	}
}

// IsPi5 reports whether model (from Model) is a Raspberry Pi 5 or a board
// built on it (CM5, Pi 500).
func IsPi5(model string) bool {
	for _, m := range []string{"Raspberry Pi 5", "Raspberry Pi Compute Module 5", "Raspberry Pi 500"} {
		if strings.HasPrefix(model, m) {
			return true
		}
	}
	return false
}

// Model reads the device-tree model string, e.g. "Raspberry Pi 4 Model B
// Rev 1.4"; "" if absent.
func Model(root fs.FS) string {
	b, err := fs.ReadFile(root, "proc/device-tree/model")
	if err != nil {
		return ""
	}
	return string(bytes.TrimRight(b, "\x00\n"))
}

// Serial reads the SoC serial number: the device-tree serial-number
// (all models, NUL-terminated) or else the "Serial" line of /proc/cpuinfo
// (older kernels). An absent or all-zero serial is board.ErrNoSerial.
func Serial(root fs.FS) (string, error) {
	var s string
	if b, err := fs.ReadFile(root, "proc/device-tree/serial-number"); err == nil {
		s = string(bytes.TrimRight(b, "\x00\n"))
	} else if b, err := fs.ReadFile(root, "proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			k, v, ok := strings.Cut(line, ":")
			if ok && strings.TrimSpace(k) == "Serial" {
				s = strings.TrimSpace(v)
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("board: rpi: %w", err)
	}
	s = strings.TrimSpace(s)
	if strings.Trim(s, "0") == "" {
		return "", fmt.Errorf("%w: rpi serial %q", board.ErrNoSerial, s)
	}
	return s, nil
}
