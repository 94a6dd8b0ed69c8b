// Package rotate turns a panel by quarter turns in software, for panels
// whose controller cannot: a 2.13" e-paper is 122×250 portrait in its
// controller's RAM but mounted landscape, and an SSD1306 can only flip.
package rotate

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"

	"periph.io/x/conn/v3/display"
)

// Drawer shows a logical frame of Bounds on the device d turned by Degrees
// clockwise: what is at the logical top is at the device's right for 90.
type Drawer struct {
	d       display.Drawer
	degrees int
	frame   *image.Gray // the logical picture, kept for partial draws
	native  *image.Gray
}

var _ display.Drawer = (*Drawer)(nil)

// New wraps d; degrees is 0, 90, 180 or 270. At 0 it returns d itself.
func New(d display.Drawer, degrees int) (display.Drawer, error) {
	switch degrees {
	case 0:
		return d, nil
	case 90, 180, 270:
	default:
		return nil, fmt.Errorf("rotate: %d degrees: want 0, 90, 180 or 270", degrees)
	}
	nb := d.Bounds()
	lb := image.Rect(0, 0, nb.Dx(), nb.Dy())
	if degrees != 180 {
		lb = image.Rect(0, 0, nb.Dy(), nb.Dx())
	}
	return &Drawer{d: d, degrees: degrees, frame: image.NewGray(lb), native: image.NewGray(nb)}, nil
}

func (r *Drawer) String() string          { return fmt.Sprintf("%s rotated %d", r.d, r.degrees) }
func (r *Drawer) ColorModel() color.Model { return r.d.ColorModel() }
func (r *Drawer) Halt() error             { return r.d.Halt() }

// SetContrast passes through to a device that can set its contrast.
func (r *Drawer) SetContrast(level uint8) error {
	c, ok := r.d.(interface{ SetContrast(uint8) error })
	if !ok {
		return fmt.Errorf("rotate: %s cannot set its contrast", r.d)
	}
	return c.SetContrast(level)
}

// Bounds is the logical (turned) size.
func (r *Drawer) Bounds() image.Rectangle { return r.frame.Rect }

// Draw composes src into the logical frame and sends the whole turned frame:
// the device drivers diff or refresh as they need.
func (r *Drawer) Draw(dst image.Rectangle, src image.Image, sp image.Point) error {
	draw.Draw(r.frame, dst, src, sp, draw.Src)
	w, h := r.frame.Rect.Dx(), r.frame.Rect.Dy()
	nb := r.native.Rect
	for y := 0; y < h; y++ {
		row := r.frame.Pix[y*r.frame.Stride : y*r.frame.Stride+w]
		for x, c := range row {
			var nx, ny int
			switch r.degrees {
			case 90: // logical top → native right
				nx, ny = h-1-y, x
			case 180:
				nx, ny = w-1-x, h-1-y
			case 270: // logical top → native left
				nx, ny = y, w-1-x
			}
			r.native.Pix[(ny+nb.Min.Y)*r.native.Stride+nx+nb.Min.X] = c
		}
	}
	return r.d.Draw(nb, r.native, nb.Min)
}
