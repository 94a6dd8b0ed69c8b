package display

import (
	"errors"
	"image"
	"image/draw"
	"slices"
	"strings"
	"testing"
)

// fakeDrawer is a framebuffer with periph.io's Drawer shape.
type fakeDrawer struct {
	fb     *image.Gray
	halted bool
	err    error
}

func (f *fakeDrawer) Bounds() image.Rectangle { return f.fb.Rect }
func (f *fakeDrawer) String() string          { return "fake" }
func (f *fakeDrawer) Halt() error             { f.halted = true; return nil }
func (f *fakeDrawer) Draw(r image.Rectangle, src image.Image, sp image.Point) error {
	if f.err != nil {
		return f.err
	}
	draw.Draw(f.fb, r, src, sp, draw.Src)
	return nil
}

func TestOnDrawer(t *testing.T) {
	d := &fakeDrawer{fb: image.NewGray(image.Rect(0, 0, 128, 64))}
	p := OnDrawer(d)
	img, err := Render(View{Kind: Idle, Station: "LS-0042"}, p.Bounds().Size())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Show(img); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.fb.Pix, img.Pix) {
		t.Error("panel does not hold the frame")
	}
	if err := p.Show(image.NewGray(image.Rect(0, 0, 250, 122))); err == nil || !strings.Contains(err.Error(), "250x122 does not match fake (128x64)") {
		t.Errorf("wrong size: %v", err)
	}
	d.err = errors.New("i2c: nack")
	if err := p.Show(img); !errors.Is(err, d.err) {
		t.Errorf("driver error not wrapped: %v", err)
	}
	if err := p.Halt(); err != nil || !d.halted {
		t.Errorf("Halt = %v, driver halted = %v", err, d.halted)
	}
}
