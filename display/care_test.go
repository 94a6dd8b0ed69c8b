package display

import (
	"image"
	"testing"
	"time"
)

func lit(img *image.Gray) int {
	n := 0
	for _, p := range img.Pix {
		if p >= 0x80 {
			n++
		}
	}
	return n
}

// The idle screen lights only its ink, moves a pixel each period, dims after
// Dim and goes dark after Blank; the returned wait says when to look again.
func TestCare(t *testing.T) {
	img, err := Render(View{Kind: Idle, Station: "Dock 3", Online: true}, image.Pt(128, 64))
	if err != nil {
		t.Fatal(err)
	}
	c := Care{Dim: time.Minute, Blank: 10 * time.Minute, Shift: time.Minute, Contrast: 200}
	t0 := time.Unix(1_800_000_000, 0) // a whole number of shift cycles since the epoch
	out, contrast, next := c.Apply(img, 0, t0)
	black := 0
	for _, p := range img.Pix {
		if p == 0 {
			black++
		}
	}
	if lit(out) != black || contrast != 200 || next != time.Minute {
		t.Errorf("awake: %d lit (ink %d of %d), contrast %d, next %v", lit(out), black, len(img.Pix), contrast, next)
	}
	if share := float64(lit(out)) / float64(len(out.Pix)); share > 0.35 {
		t.Errorf("awake: %.0f%% of pixels lit", share*100)
	}
	// A period later the picture has moved one pixel right.
	moved, _, _ := c.Apply(img, 30*time.Second, t0.Add(time.Minute))
	for y := 0; y < 64; y++ {
		for x := 1; x < 128; x++ {
			if moved.GrayAt(x, y) != out.GrayAt(x-1, y) {
				t.Fatalf("shifted frame differs at (%d,%d)", x, y)
			}
		}
	}
	// Four periods bring it back.
	back, _, _ := c.Apply(img, 0, t0.Add(4*time.Minute))
	if string(back.Pix) != string(out.Pix) {
		t.Error("the shift does not cycle back after four periods")
	}
	_, contrast, next = c.Apply(img, 2*time.Minute, t0.Add(10*time.Second))
	if contrast != 50 || next != 50*time.Second {
		t.Errorf("idle 2 min: contrast %d, next %v; want 50 and the next shift in 50s", contrast, next)
	}
	dark, _, next := c.Apply(img, 10*time.Minute, t0)
	if lit(dark) != 0 || next >= 0 {
		t.Errorf("idle 10 min: %d pixels lit, next %v", lit(dark), next)
	}
	if _, contrast, _ := (Care{Dim: time.Minute, Contrast: 3}).Apply(img, time.Hour, t0); contrast != 1 {
		t.Errorf("dimmed contrast %d, want at least 1", contrast)
	}
}
