package rotate

import (
	"image"
	"testing"
)

// A switch changes its turn between draws: the size follows, and a dot at the logical top-left
// lands where the new turn puts it.
func TestSwitchTurnsLive(t *testing.T) {
	f := &fake{}
	s, err := NewSwitch(f, 90, 0) // a portrait device mounted landscape
	if err != nil {
		t.Fatal(err)
	}
	dot := func() {
		t.Helper()
		b := s.Bounds()
		img := image.NewGray(b)
		img.Pix[0] = 255
		if err := s.Draw(b, img, image.Point{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		deg    int
		size   image.Point
		native image.Point
	}{
		{0, image.Pt(250, 122), image.Pt(121, 0)},
		{90, image.Pt(122, 250), image.Pt(121, 249)},
		{180, image.Pt(250, 122), image.Pt(0, 249)},
	} {
		if err := s.Set(c.deg); err != nil {
			t.Fatal(err)
		}
		if got := s.Bounds().Size(); got != c.size || s.Degrees() != c.deg {
			t.Fatalf("turn %d: size %v degrees %d, want %v", c.deg, got, s.Degrees(), c.size)
		}
		dot()
		if f.last.GrayAt(c.native.X, c.native.Y).Y != 255 {
			t.Errorf("turn %d: the dot is not at native %v", c.deg, c.native)
		}
	}
	if err := s.Set(45); err == nil || s.Degrees() != 180 {
		t.Fatalf("Set(45): %v, degrees %d", err, s.Degrees())
	}
	if b, err := s.BoundsAt(270); err != nil || b.Size() != image.Pt(122, 250) || s.Degrees() != 180 {
		t.Fatalf("BoundsAt(270): %v %v, degrees %d", b, err, s.Degrees())
	}
}
