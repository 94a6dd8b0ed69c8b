package ssd1306

import (
	"bytes"
	"image"
	"image/color"
	"image/draw"
	"testing"

	"periph.io/x/conn/v3/conntest"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/conn/v3/i2c/i2ctest"
	"periph.io/x/conn/v3/spi/spitest"
)

// Recordings derived from the Solomon SSD1306 datasheet rev 1.1. On I²C
// (§8.1.5.2) each write to address 0x3C starts with a control byte:
// 0x00 = Co 0, D/C# 0: a stream of commands; 0x40 = D/C# 1: GDDRAM data.

// initUpright is the power-on sequence (§10 command table, application
// note flow on p.64) for a 128×64 panel.
var initUpright = []byte{
	0x00,       // control: commands
	0xAE,       // display off (§10.1.12)
	0xD3, 0x00, // display offset 0 (§10.1.15)
	0x40,       // start line 0 (§10.1.6)
	0xA1,       // segment remap: column 127 is SEG0 (§10.1.8)
	0xC8,       // COM scan remapped, COM[N-1]..COM0 (§10.1.14)
	0xDA, 0x12, // COM pins: alternative, no left/right remap (§10.1.18)
	0x81, 0xFF, // contrast 255 (§10.1.7)
	0xA4,       // output follows RAM (§10.1.9)
	0xA6,       // normal, 1 = lit (§10.1.10)
	0xD5, 0xF0, // clock divide 1, oscillator max (§10.1.16)
	0x8D, 0x14, // charge pump on (application note, p.62)
	0xD9, 0xF1, // pre-charge 1/15 (§10.1.17)
	0xDB, 0x40, // VCOMH deselect (§10.1.19)
	0x2E,       // deactivate scroll (§10.2.3)
	0xA8, 0x3F, // multiplex ratio 64 (§10.1.11)
	0x20, 0x00, // horizontal addressing mode (§10.1.3)
	0x21, 0x00, 0x7F, // column address 0..127 (§10.1.4)
	0x22, 0x00, 0x07, // page address 0..7 (§10.1.5)
	0xAF, // display on
}

// initRotated differs by segment remap A0 (column 0 is SEG0) and COM scan
// C0 (normal): the picture turned by 180°.
func initRotated() []byte {
	b := bytes.Clone(initUpright)
	b[5], b[6] = 0xA0, 0xC0
	return b
}

func TestI2CDrawContrastHalt(t *testing.T) {
	ops := []i2ctest.IO{
		{Addr: 0x3C, W: initRotated()},
		{Addr: 0x3C, W: []byte{0x00, 0x81, 0x7F}}, // contrast 127
		{Addr: 0x3C, W: []byte{0x00, 0xA7}},       // inverse display (§10.1.10)
	}
	// First frame: everything is sent, page by page (§10.1.1-2 set column
	// start 00/10, §10.1.13 page start B0+page). A white 8×8 square at
	// (8,8) is page 1, columns 8..15: bytes 0xFF there (bit 0 = top row of
	// the page, §8.7 GDDRAM), zeros elsewhere.
	for page := range 8 {
		data := make([]byte, 128)
		if page == 1 {
			for c := 8; c < 16; c++ {
				data[c] = 0xFF
			}
		}
		ops = append(ops,
			i2ctest.IO{Addr: 0x3C, W: []byte{0x00, 0xB0 | byte(page), 0x00, 0x10}},
			i2ctest.IO{Addr: 0x3C, W: append([]byte{0x40}, data...)},
		)
	}
	// Second frame differs only in column 20 of page 7 (pixel (20,63),
	// bit 7): only that byte is sent, at column 20 = low nibble 4, high 1.
	ops = append(ops,
		i2ctest.IO{Addr: 0x3C, W: []byte{0x00, 0xB7, 0x04, 0x11}},
		i2ctest.IO{Addr: 0x3C, W: []byte{0x40, 0x80}},
		i2ctest.IO{Addr: 0x3C, W: []byte{0x00, 0xAE}}, // Halt: display off
	)
	bus := &i2ctest.Playback{Ops: ops, DontPanic: true}
	p, err := NewI2C(bus, Opts{Rotate180: true, Contrast: 127, Invert: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.Bounds() != image.Rect(0, 0, 128, 64) {
		t.Fatalf("bounds %v", p.Bounds())
	}
	img := image.NewGray(p.Bounds())
	draw.Draw(img, image.Rect(8, 8, 16, 16), image.NewUniform(color.White), image.Point{}, draw.Src)
	if err := p.Draw(p.Bounds(), img, image.Point{}); err != nil {
		t.Fatal(err)
	}
	img.SetGray(20, 63, color.Gray{Y: 255})
	if err := p.Draw(p.Bounds(), img, image.Point{}); err != nil {
		t.Fatal(err)
	}
	// The same frame again costs nothing.
	if err := p.Draw(p.Bounds(), img, image.Point{}); err != nil {
		t.Fatal(err)
	}
	if err := p.Halt(); err != nil {
		t.Fatal(err)
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestI2CUpright(t *testing.T) {
	bus := &i2ctest.Playback{Ops: []i2ctest.IO{{Addr: 0x3C, W: initUpright}}, DontPanic: true}
	if _, err := NewI2C(bus, Opts{}); err != nil {
		t.Fatal(err)
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := NewI2C(bus, Opts{Contrast: 300}); err == nil {
		t.Fatal("contrast 300 accepted")
	}
}

func TestSPI(t *testing.T) {
	// 4-wire SPI (datasheet §8.1.3): no control byte; D/C# low marks
	// command bytes, high marks GDDRAM data.
	ops := []conntest.IO{{W: initUpright[1:]}}
	for page := range 8 {
		ops = append(ops, conntest.IO{W: []byte{0xB0 | byte(page), 0x00, 0x10}}, conntest.IO{W: make([]byte, 128)})
	}
	ops = append(ops, conntest.IO{W: []byte{0xAE}})
	port := &spitest.Playback{Playback: conntest.Playback{Ops: ops, DontPanic: true}}
	dc := &gpiotest.Pin{N: "GPIO25"}
	p, err := NewSPI(port, dc, Opts{})
	if err != nil {
		t.Fatal(err)
	}
	if dc.Read() != gpio.Low {
		t.Fatal("D/C# not low after commands")
	}
	if err := p.Draw(p.Bounds(), image.NewGray(p.Bounds()), image.Point{}); err != nil {
		t.Fatal(err)
	}
	if dc.Read() != gpio.High {
		t.Fatal("D/C# not high after data")
	}
	if err := p.Halt(); err != nil {
		t.Fatal(err)
	}
	if err := port.Close(); err != nil {
		t.Fatal(err)
	}
}
