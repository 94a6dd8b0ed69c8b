package epaper

import (
	"bytes"
	"image"
	"image/color"
	"testing"

	"periph.io/x/conn/v3/conntest"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/conn/v3/spi/spitest"
)

// Byte-level proof of the 2.13" V4 panel (SSD1680 controller, Solomon
// SSD1680 datasheet rev 0.14 §7 command table) through periph's driver.
// Each command byte is its own SPI transfer with D/C# low, each parameter
// block one transfer with D/C# high.
func cmd(c byte, data ...byte) []conntest.IO {
	ops := []conntest.IO{{W: []byte{c}}}
	if len(data) > 0 {
		ops = append(ops, conntest.IO{W: data})
	}
	return ops
}

// v4Init: SW reset 12; driver output control 01: MUX 0xF9 = 250 gate lines;
// data entry mode 11: 03 = X and Y increment; RAM X window 44: bytes 0..15
// (122 px / 8, rounded up); RAM Y window 45: 0..249 (F9 00); RAM X counter
// 4E = 0; RAM Y counter 4F = 0; border waveform 3C = 05; display update
// control 1 21 = 80 80; temperature sensor 18 = 80 (internal).
func v4Init() []conntest.IO {
	var ops []conntest.IO
	for _, c := range [][]conntest.IO{
		cmd(0x12),
		cmd(0x01, 0xF9, 0x00, 0x00),
		cmd(0x11, 0x03),
		cmd(0x44, 0x00, 0x0F),
		cmd(0x45, 0x00, 0x00, 0xF9, 0x00),
		cmd(0x4E, 0x00),
		cmd(0x4F, 0x00, 0x00),
		cmd(0x3C, 0x05),
		cmd(0x21, 0x80, 0x80),
		cmd(0x18, 0x80),
	} {
		ops = append(ops, c...)
	}
	return ops
}

// v4Frame writes the picture to both RAMs (24 black/white, 26 "red", kept
// equal), one 16-byte row per gate line; a RAM bit 1 is white and the MSB
// is the leftmost pixel. Then 22 F7 + 20 (display update, full waveform)
// and periph's updateDisplay 21 00, 22 C7, 20.
func v4Frame(row func(y int) []byte) []conntest.IO {
	var ops []conntest.IO
	for _, ram := range []byte{0x24, 0x26} {
		ops = append(ops, cmd(ram)...)
		for y := range 250 {
			ops = append(ops, conntest.IO{W: row(y)})
		}
	}
	ops = append(ops, cmd(0x22, 0xF7)...)
	ops = append(ops, cmd(0x20)...)
	ops = append(ops, cmd(0x21, 0x00)...)
	ops = append(ops, cmd(0x22, 0xC7)...)
	ops = append(ops, cmd(0x20)...)
	return ops
}

func white(int) []byte { return bytes.Repeat([]byte{0xFF}, 16) }

func TestWaveshareV4Playback(t *testing.T) {
	var ops []conntest.IO
	ops = append(ops, v4Init()...)
	// The frame: white with the top-left pixel black -> row 0 starts 7F.
	ops = append(ops, v4Frame(func(y int) []byte {
		r := white(y)
		if y == 0 {
			r[0] = 0x7F
		}
		return r
	})...)
	// Halt: clear to white, then deep sleep mode 10 with 01.
	ops = append(ops, v4Frame(white)...)
	ops = append(ops, cmd(0x10, 0x01)...)
	port := &spitest.Playback{Playback: conntest.Playback{Ops: ops, DontPanic: true}}
	dc := &gpiotest.Pin{N: "GPIO25"}
	cs := &gpiotest.Pin{N: "GPIO8"}
	rst := &gpiotest.Pin{N: "GPIO17"}
	busy := &gpiotest.Pin{N: "GPIO24", EdgesChan: make(chan gpio.Level)} // low: idle
	p, err := Open(port, dc, cs, rst, busy, Opts{Model: "2in13v4"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Bounds() != image.Rect(0, 0, 122, 250) {
		t.Fatalf("bounds %v", p.Bounds())
	}
	img := image.NewGray(p.Bounds())
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	img.SetGray(0, 0, color.Gray{})
	if err := p.Draw(p.Bounds(), img, image.Point{}); err != nil {
		t.Fatal(err)
	}
	if err := p.Halt(); err != nil {
		t.Fatal(err)
	}
	if err := port.Close(); err != nil {
		t.Fatal(err)
	}
	if rst.Read() != gpio.High || cs.Read() != gpio.High {
		t.Fatal("RST or CS left low")
	}
}
