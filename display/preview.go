package display

import (
	"image"
	"image/color"
	"strings"
)

// previewHint is the Preview screen's default instruction line.
const previewHint = "B print  A later"

// picItem is a picture already reduced to black and white at its panel size.
type picItem struct {
	at  image.Point
	img *image.Gray
}

func (p picItem) rect() image.Rectangle { return p.img.Rect.Sub(p.img.Rect.Min).Add(p.at) }

// previewScreen shows v.Image as large as the panel allows above one line of instructions:
// no headline bar, since every row of pixels counts for a barcode to stay readable.
func previewScreen(v View, size image.Point, k int) *frame {
	fr := &frame{size: size, k: k}
	hint := fold(or(strings.Join(v.Lines, "  "), previewHint))
	hint = clip(hint, small.cols(size.X-2*k, k))
	textY := size.Y - small.h*k - k
	area := image.Rect(k, k, size.X-k, textY-k)
	img := fitBW(v.Image, area.Size())
	at := area.Min.Add(area.Size().Sub(img.Rect.Size()).Div(2))
	fr.pic = &picItem{at: at, img: img}
	fr.texts = append(fr.texts, textItem{at: image.Pt((size.X-small.width(hint, k))/2, textY), s: hint, f: small, k: k})
	return fr
}

// fitBW scales src to fit box, turned a quarter if that makes it larger, and reduces it to
// black and white: each panel pixel is black when at least half of the label's pixels under it
// are. Averaging before the threshold keeps bars of a barcode as bars down to about one panel
// pixel per module, where picking every n-th pixel would drop or merge them.
func fitBW(src image.Image, box image.Point) *image.Gray {
	b := src.Bounds()
	w, h := b.Dx(), b.Dy()
	rot := false
	if scaleOf(h, w, box) > scaleOf(w, h, box) {
		rot, w, h = true, h, w
	}
	s := scaleOf(w, h, box)
	dw, dh := max(int(float64(w)*s), 1), max(int(float64(h)*s), 1)
	dst := image.NewGray(image.Rect(0, 0, dw, dh))
	// dark reads the label pixel at (x, y) of the possibly turned picture.
	dark := func(x, y int) bool {
		if rot {
			x, y = y, h-1-x // turned a quarter clockwise
		}
		g := color.GrayModel.Convert(src.At(b.Min.X+x, b.Min.Y+y)).(color.Gray)
		return g.Y < 0x80
	}
	for dy := range dh {
		y0, y1 := dy*h/dh, max((dy+1)*h/dh, dy*h/dh+1)
		for dx := range dw {
			x0, x1 := dx*w/dw, max((dx+1)*w/dw, dx*w/dw+1)
			n, ink := 0, 0
			for y := y0; y < y1; y++ {
				for x := x0; x < x1; x++ {
					n++
					if dark(x, y) {
						ink++
					}
				}
			}
			c := uint8(0xff)
			if 2*ink >= n {
				c = 0
			}
			dst.Pix[dy*dst.Stride+dx] = c
		}
	}
	return dst
}

// scaleOf is the factor that fits a w×h picture in box.
func scaleOf(w, h int, box image.Point) float64 {
	if w <= 0 || h <= 0 || box.X <= 0 || box.Y <= 0 {
		return 0
	}
	return min(float64(box.X)/float64(w), float64(box.Y)/float64(h))
}

// selectScreen shows a Select entry's title (v.Hero) large above its details, under a
// headline bar with v.Title, when that fits on one page; ok is false on panels too small.
func selectScreen(v View, size image.Point, k int) (*frame, bool) {
	fr := &frame{size: size, k: k}
	r := fr.body()
	body := []block{words(large, v.Hero)}
	for _, l := range v.Lines {
		if strings.TrimSpace(l) != "" {
			body = append(body, words(small, l))
		}
	}
	bs, p, ok := fits([][]block{hero(body, k), body}, r.Dx(), r.Dy(), k)
	if !ok {
		return nil, false
	}
	fr.place(bs, p, r, true)
	fr.header(or(v.Title, "Choose a job"), true, v.Online, "")
	return fr, true
}
