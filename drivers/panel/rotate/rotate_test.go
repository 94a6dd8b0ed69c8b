package rotate

import (
	"image"
	"image/color"
	"image/draw"
	"testing"

	"periph.io/x/conn/v3/display"
)

// fake is a portrait device recording the last frame.
type fake struct{ last *image.Gray }

func (f *fake) String() string          { return "fake" }
func (f *fake) ColorModel() color.Model { return color.GrayModel }
func (f *fake) Bounds() image.Rectangle { return image.Rect(0, 0, 122, 250) }
func (f *fake) Halt() error             { return nil }
func (f *fake) Draw(r image.Rectangle, src image.Image, sp image.Point) error {
	f.last = image.NewGray(f.Bounds())
	draw.Draw(f.last, r, src, sp, draw.Src)
	return nil
}

// A dot at the logical top-left lands where a person turning the panel expects it.
func TestQuarterTurns(t *testing.T) {
	for _, c := range []struct {
		deg    int
		size   image.Point
		native image.Point // where logical (0,0) lands
	}{
		{90, image.Pt(250, 122), image.Pt(121, 0)},
		{180, image.Pt(122, 250), image.Pt(121, 249)},
		{270, image.Pt(250, 122), image.Pt(0, 249)},
	} {
		f := &fake{}
		d, err := New(f, c.deg)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.Bounds().Size(); got != c.size {
			t.Errorf("%d: logical size %v, want %v", c.deg, got, c.size)
		}
		img := image.NewGray(d.Bounds())
		draw.Draw(img, img.Rect, image.White, image.Point{}, draw.Src)
		img.SetGray(0, 0, color.Gray{})
		if err := d.Draw(d.Bounds(), img, image.Point{}); err != nil {
			t.Fatal(err)
		}
		for y := 0; y < 250; y++ {
			for x := 0; x < 122; x++ {
				want := uint8(0xff)
				if (image.Pt(x, y)) == c.native {
					want = 0
				}
				if got := f.last.GrayAt(x, y).Y; got != want {
					t.Fatalf("%d: native (%d,%d) = %#x, want %#x", c.deg, x, y, got, want)
				}
			}
		}
	}
	f := &fake{}
	if d, _ := New(f, 0); d != display.Drawer(f) {
		t.Error("0 degrees must not wrap")
	}
	if _, err := New(f, 45); err == nil {
		t.Error("45 degrees accepted")
	}
}
