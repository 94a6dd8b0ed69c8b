package epaper

import (
	"image"
	"image/color"
	"slices"
	"testing"
	"time"

	"periph.io/x/devices/v3/ssd1306/image1bit"
)

// fakeEPD records what the panel asked of the controller.
type fakeEPD struct {
	log     []string
	partial bool
}

func (f *fakeEPD) String() string          { return "fake" }
func (f *fakeEPD) Halt() error             { return nil }
func (f *fakeEPD) ColorModel() color.Model { return image1bit.BitModel }
func (f *fakeEPD) Bounds() image.Rectangle { return image.Rect(0, 0, 122, 250) }
func (f *fakeEPD) Draw(image.Rectangle, image.Image, image.Point) error {
	if f.partial {
		f.log = append(f.log, "partial")
	} else {
		f.log = append(f.log, "full")
	}
	return nil
}
func (f *fakeEPD) Clear(color.Color) error { f.log = append(f.log, "clear"); return nil }
func (f *fakeEPD) Sleep() error            { f.log = append(f.log, "sleep"); return nil }

func TestRefreshPolicy(t *testing.T) {
	f := &fakeEPD{}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	p := New(f, func(partial bool) error { f.partial = partial; return nil },
		Opts{MaxPartial: 2, MinFullInterval: 180 * time.Second, Now: func() time.Time { return now }})
	frame := func(x int) {
		t.Helper()
		img := image.NewGray(p.Bounds())
		img.SetGray(x, 0, color.Gray{Y: 255})
		if err := p.Draw(p.Bounds(), img, image.Point{}); err != nil {
			t.Fatal(err)
		}
	}
	frame(1)                        // first draw: full
	frame(1)                        // unchanged: nothing
	frame(2)                        // partial 1
	frame(3)                        // partial 2
	now = t0.Add(100 * time.Second) //
	frame(4)                        // 2 partials but only 100s since full: partial
	now = t0.Add(181 * time.Second) //
	frame(5)                        // due and allowed: full
	frame(6)                        // partial again
	if err := p.Halt(); err != nil {
		t.Fatal(err)
	}
	want := []string{"full", "partial", "partial", "partial", "full", "partial", "clear", "sleep"}
	if !slices.Equal(f.log, want) {
		t.Fatalf("got %v\nwant %v", f.log, want)
	}
	if f.partial {
		t.Fatal("Halt left partial mode on")
	}
}

func TestFullOnlyModel(t *testing.T) {
	f := &fakeEPD{}
	p := New(f, nil, Opts{})
	for x := range 3 {
		img := image.NewGray(p.Bounds())
		img.Set(x, 0, color.White)
		if err := p.Draw(p.Bounds(), img, image.Point{}); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(f.log, []string{"full", "full", "full"}) {
		t.Fatalf("got %v", f.log)
	}
	if _, err := Open(nil, nil, nil, nil, nil, Opts{Model: "7in5"}); err == nil {
		t.Fatal("unknown model accepted")
	}
}
