package display

import (
	"image"
	"time"
)

// Care keeps an OLED from burning in: it shows the ink lit on a dark panel
// (a black-on-white screen lights about three quarters of the pixels, and
// the static ones age first), moves the picture by a pixel every Shift,
// dims after Dim without activity and goes dark after Blank. A tap or a
// button press wakes it (the station says when). The zero value of a
// duration turns that part off.
type Care struct {
	Dim, Blank time.Duration
	Shift      time.Duration
	// Contrast is the panel's full contrast (the fleet's display.contrast);
	// dimmed it is a quarter of that, at least 1.
	Contrast uint8
}

// Contraster is a panel whose brightness can be set (the SSD1306's command
// 0x81); Care dims through it.
type Contraster interface {
	SetContrast(level uint8) error
}

// shifts is the cycle of offsets: a one-pixel square, so no pixel stays lit
// in place for more than one period and the picture never wanders far.
var shifts = [...]image.Point{{0, 0}, {1, 0}, {1, 1}, {0, 1}}

// Apply returns the frame to show for img (black ink on white, as Render
// draws it) after idle without activity at now, the contrast to set, and
// how long until the result changes by time alone.
func (c Care) Apply(img *image.Gray, idle time.Duration, now time.Time) (out *image.Gray, contrast uint8, next time.Duration) {
	out = image.NewGray(img.Rect)
	contrast = c.Contrast
	next = -1
	until := func(d time.Duration) {
		if d > 0 && (next < 0 || d < next) {
			next = d
		}
	}
	if c.Blank > 0 {
		if idle >= c.Blank {
			return out, contrast, -1 // dark until woken; nothing to time
		}
		until(c.Blank - idle)
	}
	if c.Dim > 0 {
		if idle >= c.Dim {
			contrast = max(c.Contrast/4, 1)
		} else {
			until(c.Dim - idle)
		}
	}
	var off image.Point
	if c.Shift > 0 {
		pos := cyclePos(now, c.Shift*time.Duration(len(shifts)))
		off = shifts[pos/c.Shift]
		until(c.Shift - pos%c.Shift)
	}
	w, h := img.Rect.Dx(), img.Rect.Dy()
	for y := 0; y < h; y++ {
		sy := y - off.Y
		for x := 0; x < w; x++ {
			sx := x - off.X
			if sx < 0 || sy < 0 {
				continue // the edge the picture moved away from stays dark
			}
			out.Pix[y*out.Stride+x] = 0xff - img.Pix[sy*img.Stride+sx]
		}
	}
	return out, contrast, next
}
