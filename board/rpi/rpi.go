// Package rpi is the Raspberry Pi board (Zero 2 W, 3, 4, 5) on
// periph.io/x/host/v3. I²C and SPI come from the host drivers; GPIO lines
// come from the GPIO character device (gpioioctl), the only driver that
// reaches the Pi 5's pins behind its RP1 south bridge and the one current
// kernels support on the older models too.
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

// Open initialises periph's host drivers and wires c (sections left out
// take board.DefaultPi's wiring). It fails with board.ErrUnknown when not
// running on a Raspberry Pi.
func Open(c board.Config) (*board.Wired, error) {
	c = c.WithDefaults()
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
		Pin:     pinLookup(),
		OpenI2C: i2creg.Open,
		OpenSPI: spireg.Open,
	})
}

// pinLookup prefers the GPIO character device on every model: periph's
// bcm283x driver detects edges through sysfs GPIO, which current kernels
// deprecate, and on the Pi 5 the chardev is the only way to the pins. When
// the bcm283x driver registered "GPIO17" first, gpioioctl registers its line
// as "<chip>-GPIO17", so both names are tried. Kernels without the chardev
// fall back to the periph registry.
func pinLookup() func(string) gpio.PinIO {
	return func(name string) gpio.PinIO {
		for _, chip := range gpioioctl.Chips {
			for _, n := range []string{name, chip.Name() + "-" + name} {
				if l := chip.ByName(n); l != nil {
					return l
				}
			}
		}
		if p := gpioreg.ByName(name); p != nil {
			return p
		}
		return nil
	}
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
// (older kernels), and falls back to systemd's /etc/machine-id, which
// survives reboots but not re-imaging. An absent or all-zero serial is
// board.ErrNoSerial.
func Serial(root fs.FS) (string, error) {
	s, err := socSerial(root)
	if errors.Is(err, board.ErrNoSerial) {
		if b, rerr := fs.ReadFile(root, "etc/machine-id"); rerr == nil {
			if id := strings.TrimSpace(string(b)); strings.Trim(id, "0") != "" && !strings.ContainsAny(id, " \t") {
				return id, nil
			}
		}
	}
	return s, err
}

func socSerial(root fs.FS) (string, error) {
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
