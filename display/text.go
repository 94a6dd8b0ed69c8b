package display

import (
	"image"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/font/inconsolata"
	"golang.org/x/image/math/fixed"
	"golang.org/x/text/unicode/norm"
)

// bitmapFont is a monospaced bitmap face with its measured ink box. Both
// faces are bitmaps scaled by whole pixels only, so text stays crisp on a
// 1-bit panel: basicfont is already 1-bit and Inconsolata's pre-rendered
// coverage is thresholded at 50%.
type bitmapFont struct {
	face *basicfont.Face
	adv  int // advance per rune, pixels at scale 1
	top  int // rows of ink above the baseline (ink starts at baseline-top)
	h    int // rows of ink, ascender to descender
}

// The ink boxes below were measured over ASCII 0x20-0x7e after thresholding
// (basicfont: rows -10..1; Inconsolata Bold 8x16: rows -11..2, columns 0..7).
var (
	small = &bitmapFont{face: basicfont.Face7x13, adv: 7, top: 10, h: 12}
	large = &bitmapFont{face: inconsolata.Bold8x16, adv: 8, top: 11, h: 14}
)

// width returns the pixel width of s at scale k (runes after fold).
func (f *bitmapFont) width(s string, k int) int {
	return utf8.RuneCountInString(s) * f.adv * k
}

// cols returns how many runes fit in w pixels at scale k.
func (f *bitmapFont) cols(w, k int) int {
	if w <= 0 {
		return 0
	}
	return w / (f.adv * k)
}

// draw paints s with its ink box's top-left corner at p, scaled by k.
// white selects the colour (for text on the inverted headline bar).
func (f *bitmapFont) draw(dst *image.Gray, p image.Point, s string, k int, white bool) {
	c := uint8(0)
	if white {
		c = 0xff
	}
	x := p.X
	for _, r := range s {
		dr, mask, mp, _, ok := f.face.Glyph(fixed.P(0, 0), r)
		if !ok {
			dr, mask, mp, _, _ = f.face.Glyph(fixed.P(0, 0), '?')
		}
		a := mask.(*image.Alpha)
		for gy := 0; gy < dr.Dy(); gy++ {
			row := dr.Min.Y + gy + f.top // 0 = first ink row
			if row < 0 || row >= f.h {
				continue
			}
			for gx := 0; gx < dr.Dx(); gx++ {
				col := dr.Min.X + gx
				if col < 0 || col >= f.adv {
					continue
				}
				if a.Pix[(mp.Y+gy)*a.Stride+mp.X+gx] < 0x80 {
					continue
				}
				fill(dst, image.Rect(x+col*k, p.Y+row*k, x+(col+1)*k, p.Y+(row+1)*k), c)
			}
		}
		x += f.adv * k
	}
}

// fill sets every pixel of r (clipped to dst) to c.
func fill(dst *image.Gray, r image.Rectangle, c uint8) {
	r = r.Intersect(dst.Rect)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		i := dst.PixOffset(r.Min.X, y)
		row := dst.Pix[i : i+r.Dx()]
		for j := range row {
			row[j] = c
		}
	}
}

// fold maps s to the runes the bitmap fonts carry: accents are dropped
// (NFD, then combining marks removed: "Müller" → "Muller"; see latin), control
// characters become spaces and anything else outside ASCII becomes '?'.
// A name with a missing glyph must still read, never draw a blank box.
func fold(s string) string {
	if isPrintableASCII(s) {
		return s
	}
	var b strings.Builder
	for _, r := range norm.NFD.String(s) {
		if t, ok := latin[r]; ok {
			b.WriteString(t)
			continue
		}
		switch {
		case unicode.Is(unicode.Mn, r):
		case r == '\t' || r == '\n' || r == '\r':
			b.WriteByte(' ')
		case r < 0x20 || r == 0x7f:
		case r < 0x7f:
			b.WriteRune(r)
		default:
			b.WriteByte('?')
		}
	}
	return b.String()
}

// latin spells the Latin letters that do not decompose under NFD the way
// their writers do without them, for names like "Øster" or "Łukasz".
var latin = map[rune]string{
	'Ø': "O", 'ø': "o", 'Ł': "L", 'ł': "l", 'ß': "ss", 'Æ': "AE", 'æ': "ae",
	'Œ': "OE", 'œ': "oe", 'Đ': "D", 'đ': "d", 'Þ': "Th", 'þ': "th", 'ı': "i",
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// wrap breaks s into lines of at most n runes, at spaces where it can and
// inside words longer than a line. s must already be folded (ASCII).
func wrap(s string, n int) []string {
	if n <= 0 {
		return nil
	}
	var out []string
	line := ""
	for _, w := range strings.Fields(s) {
		for len(w) > n {
			if line != "" {
				out = append(out, line)
				line = ""
			}
			out = append(out, w[:n])
			w = w[n:]
		}
		switch {
		case line == "":
			line = w
		case len(line)+1+len(w) <= n:
			line += " " + w
		default:
			out = append(out, line)
			line = w
		}
	}
	if line != "" {
		out = append(out, line)
	}
	return out
}

// clip shortens s to n runes, marking the cut with "..".
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 2 {
		return s[:max(n, 0)]
	}
	return strings.TrimRight(s[:n-2], " ") + ".."
}
