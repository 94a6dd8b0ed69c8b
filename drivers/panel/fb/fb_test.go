package fb

import (
	"image"
	"image/color"
	"os"
	"path/filepath"
	"testing"
)

// memFB is a framebuffer in memory.
type memFB []byte

func (m memFB) WriteAt(b []byte, off int64) (int, error) { return copy(m[off:], b), nil }

// rgb565 is the usual fbtft layout: red 11..15, green 5..10, blue 0..4.
var rgb565 = Geometry{W: 4, H: 2, BPP: 16, Stride: 8, R: Field{11, 5}, G: Field{5, 6}, B: Field{0, 5}}

// xrgb8888 is the usual HDMI layout, stride padded to 20 bytes.
var xrgb8888 = Geometry{W: 4, H: 2, BPP: 32, Stride: 20, R: Field{16, 8}, G: Field{8, 8}, B: Field{0, 8}}

func TestRGB565(t *testing.T) {
	m := make(memFB, 16)
	p, err := New("mem", m, rgb565, Opts{})
	if err != nil {
		t.Fatal(err)
	}
	img := image.NewRGBA(image.Rect(0, 0, 4, 2))
	img.Set(0, 0, color.RGBA{255, 0, 0, 255})     // F800, little endian 00 F8
	img.Set(1, 0, color.RGBA{0, 255, 0, 255})     // 07E0 -> E0 07
	img.Set(2, 0, color.RGBA{0, 0, 255, 255})     // 001F -> 1F 00
	img.Set(3, 1, color.RGBA{255, 255, 255, 255}) // FFFF
	if err := p.Draw(p.Bounds(), img, image.Point{}); err != nil {
		t.Fatal(err)
	}
	want := memFB{0x00, 0xF8, 0xE0, 0x07, 0x1F, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF}
	if string(m) != string(want) {
		t.Fatalf("got % x\nwant % x", []byte(m), []byte(want))
	}
	if err := p.Halt(); err != nil {
		t.Fatal(err)
	}
	if string(m) != string(make([]byte, 16)) {
		t.Fatalf("not blank after Halt: % x", []byte(m))
	}
}

func TestXRGBRotated(t *testing.T) {
	m := make(memFB, 40)
	for i := range m {
		m[i] = 0xEE // padding must stay untouched
	}
	p, err := New("mem", m, xrgb8888, Opts{Rotate: 90})
	if err != nil {
		t.Fatal(err)
	}
	if p.Bounds() != image.Rect(0, 0, 2, 4) {
		t.Fatalf("bounds %v", p.Bounds())
	}
	img := image.NewRGBA(p.Bounds())
	// Logical (0,0), top-left, turned 90° clockwise shows at physical (W-1, 0).
	img.Set(0, 0, color.RGBA{0x12, 0x34, 0x56, 255})
	if err := p.Draw(p.Bounds(), img, image.Point{}); err != nil {
		t.Fatal(err)
	}
	// Physical (3,0): byte offset 12, XRGB little endian 56 34 12 00.
	if got := m[12:16]; string(got) != "\x56\x34\x12\x00" {
		t.Fatalf("pixel (3,0) = % x", got)
	}
	if got := m[16:20]; string(got) != "\xee\xee\xee\xee" {
		t.Fatalf("stride padding overwritten: % x", got)
	}
	if got := m[0:4]; string(got) != "\x00\x00\x00\x00" {
		t.Fatalf("pixel (0,0) = % x", got)
	}
}

func TestBadGeometry(t *testing.T) {
	g := rgb565
	g.BPP = 24
	if _, err := New("x", make(memFB, 32), g, Opts{}); err == nil {
		t.Fatal("24 bpp accepted")
	}
	if _, err := New("x", make(memFB, 32), rgb565, Opts{Rotate: 45}); err == nil {
		t.Fatal("rotate 45 accepted")
	}
	f := filepath.Join(t.TempDir(), "fb0")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(f, Opts{}); err == nil {
		t.Fatal("regular file accepted as a framebuffer")
	}
}

// BenchmarkDrawRGB565 is one full 320×240 frame on a 16-bit fbtft panel,
// the common SPI TFT; the target is well under the 100 ms tap feedback.
func BenchmarkDrawRGB565(b *testing.B) {
	g := Geometry{W: 320, H: 240, BPP: 16, Stride: 640, R: Field{11, 5}, G: Field{5, 6}, B: Field{0, 5}}
	p, err := New("mem", make(memFB, 640*240), g, Opts{Rotate: 90})
	if err != nil {
		b.Fatal(err)
	}
	img := image.NewRGBA(p.Bounds())
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Draw(p.Bounds(), img, image.Point{}); err != nil {
			b.Fatal(err)
		}
	}
}
