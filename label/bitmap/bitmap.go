// Package bitmap is a 1-bit image (1 = black dot, rows packed MSB first, as
// thermal print heads take them) and its encoders: ZPL ^GF (Z64, ACS, hex),
// TSPL BITMAP, ESC/POS GS v 0 and PNG.
package bitmap

import (
	"image"
	"image/color"
)

// Bitmap is a 1-bit image. Bit 7 of Pix[y*Stride] is the dot (0, y).
type Bitmap struct {
	W, H   int
	Stride int // bytes per row: (W+7)/8
	Pix    []byte
}

var _ image.Image = (*Bitmap)(nil)

// New returns a white w×h bitmap.
func New(w, h int) *Bitmap {
	s := (w + 7) / 8
	return &Bitmap{W: w, H: h, Stride: s, Pix: make([]byte, s*h)}
}

// Reset clears b to white, for reuse across labels.
func (b *Bitmap) Reset() { clear(b.Pix) }

// Set blackens the dot (x, y); dots outside are ignored.
func (b *Bitmap) Set(x, y int) {
	if uint(x) < uint(b.W) && uint(y) < uint(b.H) {
		b.Pix[y*b.Stride+x>>3] |= 0x80 >> (x & 7)
	}
}

// Black reports whether (x, y) is black.
func (b *Bitmap) Black(x, y int) bool {
	if uint(x) >= uint(b.W) || uint(y) >= uint(b.H) {
		return false
	}
	return b.Pix[y*b.Stride+x>>3]&(0x80>>(x&7)) != 0
}

// FillRect blackens r, clipped to the bitmap. The byte masks of the span
// are computed once and ORed into every row.
func (b *Bitmap) FillRect(r image.Rectangle) {
	r = r.Intersect(image.Rect(0, 0, b.W, b.H))
	if r.Empty() {
		return
	}
	b0, b1 := r.Min.X>>3, (r.Max.X-1)>>3
	first := byte(0xff >> (r.Min.X & 7))
	last := byte(0xff << (7 - (r.Max.X-1)&7))
	if b0 == b1 {
		first &= last
	}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		row := b.Pix[y*b.Stride : (y+1)*b.Stride]
		row[b0] |= first
		if b1 > b0 {
			for i := b0 + 1; i < b1; i++ {
				row[i] = 0xff
			}
			row[b1] |= last
		}
	}
}

// Rotate returns b turned clockwise by deg (0, 90, 180 or 270).
func (b *Bitmap) Rotate(deg int) *Bitmap {
	switch deg {
	case 90, 270:
		out := New(b.H, b.W)
		for y := 0; y < b.H; y++ {
			for x := 0; x < b.W; x++ {
				if b.Black(x, y) {
					if deg == 90 {
						out.Set(b.H-1-y, x)
					} else {
						out.Set(y, b.W-1-x)
					}
				}
			}
		}
		return out
	case 180:
		out := New(b.W, b.H)
		for y := 0; y < b.H; y++ {
			for x := 0; x < b.W; x++ {
				if b.Black(x, y) {
					out.Set(b.W-1-x, b.H-1-y)
				}
			}
		}
		return out
	}
	return b
}

// ColorModel implements image.Image.
func (b *Bitmap) ColorModel() color.Model { return color.GrayModel }

// Bounds implements image.Image.
func (b *Bitmap) Bounds() image.Rectangle { return image.Rect(0, 0, b.W, b.H) }

// At implements image.Image: black or white.
func (b *Bitmap) At(x, y int) color.Color {
	if b.Black(x, y) {
		return color.Gray{}
	}
	return color.Gray{Y: 0xff}
}

// FromImage thresholds img (luminance below 50 %, alpha above 50 %) into a
// w×h bitmap, scaling with nearest-neighbour sampling.
func FromImage(img image.Image, w, h int) *Bitmap {
	out := New(w, h)
	if w <= 0 || h <= 0 {
		return out
	}
	sb := img.Bounds()
	for y := 0; y < h; y++ {
		sy := sb.Min.Y + y*sb.Dy()/h
		for x := 0; x < w; x++ {
			sx := sb.Min.X + x*sb.Dx()/w
			r, g, bl, a := img.At(sx, sy).RGBA()
			if a < 0x8000 {
				continue
			}
			// Rec. 601 luma on premultiplied values; white background.
			lum := (299*r + 587*g + 114*bl) / 1000
			lum += 0xffff - a
			if lum < 0x8000 {
				out.Set(x, y)
			}
		}
	}
	return out
}
