package label

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/boombuler/barcode/code128"
	"github.com/boombuler/barcode/code39"
	"github.com/boombuler/barcode/datamatrix"
	"github.com/boombuler/barcode/ean"
	"github.com/boombuler/barcode/pdf417"
	"github.com/boombuler/barcode/qr"
	"github.com/ingridhq/zebrash"
	"github.com/ingridhq/zebrash/drawers"
	"github.com/makiuchi-d/gozxing"
	qrdecoder "github.com/makiuchi-d/gozxing/qrcode/decoder"
	qrencoder "github.com/makiuchi-d/gozxing/qrcode/encoder"
	"golang.org/x/image/font"
	"golang.org/x/image/math/fixed"

	"labelstation/label/bitmap"
)

type imgKey struct {
	idx, dpi int
}

// maxRasterDots bounds a label bitmap (12.5 MB): a 4×6 in label at 600 dpi
// is 8.6 M dots, and a layout must not make a station allocate gigabytes.
const maxRasterDots = 100 << 20

func checkRasterSize(l *Layout, dpi int) (w, h int, err error) {
	w, h = dots(l.WidthMM, dpi), dots(l.HeightMM, dpi)
	if int64(w)*int64(h) > maxRasterDots { // int64: w*h can pass 2³¹ on 32-bit ARM
		return w, h, fmt.Errorf("%w: layout %q is %dx%d dots at %d dpi, more than %d M dots to rasterise", ErrUnsupported, l.ID, w, h, dpi, maxRasterDots>>20)
	}
	return w, h, nil
}

var rasterPool sync.Pool

func getBitmap(w, h int) *bitmap.Bitmap {
	if b, ok := rasterPool.Get().(*bitmap.Bitmap); ok && b.W == w && b.H == h {
		b.Reset()
		return b
	}
	return bitmap.New(w, h)
}

// RenderBitmap draws one label as a 1-bit bitmap at dpi, in the layout's
// design orientation (Render rotates it for the printer).
func RenderBitmap(l *Layout, rec Record, dpi int) (*bitmap.Bitmap, error) {
	return RenderBitmapTarget(l, rec, Target{DPI: dpi})
}

// RenderBitmapTarget is RenderBitmap at t's resolution with t's fonts.
func RenderBitmapTarget(l *Layout, rec Record, t Target) (*bitmap.Bitmap, error) {
	t.Lang = LangPNG
	t, err := t.normalize()
	if err != nil {
		return nil, err
	}
	w, h, err := checkRasterSize(l, t.DPI)
	if err != nil {
		return nil, err
	}
	if l.rawZPL != nil {
		return rawBitmap(l, rec, t.DPI)
	}
	bm := bitmap.New(w, h)
	return bm, drawLayout(bm, l, rec, t.DPI, t.Fonts.orDefault(), false)
}

// drawLayout draws the label into bm; dry only makes every check drawing
// would make (fields, glyphs, barcode data and sizes), for validation,
// and bm may then have no pixels.
func drawLayout(bm *bitmap.Bitmap, l *Layout, rec Record, dpi int, fs *FontSet, dry bool) error {
	return drawLayoutWarn(bm, l, rec, dpi, fs, dry, nil, nil)
}

// codeKey identifies an encoded symbol; the encoding does not depend on the dpi.
type codeKey struct{ sym, data, ecc string }

// drawLayoutWarn is drawLayout telling warn about text cut to fit; codes,
// when not nil, keeps encoded symbols for the next dpi of the same record.
func drawLayoutWarn(bm *bitmap.Bitmap, l *Layout, rec Record, dpi int, fs *FontSet, dry bool, warn func(string), codes map[codeKey]image.Image) error {
	var scratch [256]byte
	for i := range l.Elements {
		e := &l.Elements[i]
		x, y := dots(e.X, dpi), dots(e.Y, dpi)
		switch e.Kind {
		case KindText:
			v, err := e.tmpl.expand(scratch[:0], rec)
			if err != nil {
				return elemErr(i, e, err)
			}
			v = visibleControls(v, e.MaxWidth > 0)
			if err := fs.checkGlyphs(e, rec, v); err != nil {
				return elemErr(i, e, err)
			}
			t := layoutText(e, v, x, bm.W, dpi, fs)
			if t.cut && warn != nil {
				warn(cutWarning(i, e, rec, t, dpi))
			}
			if !dry {
				drawText(bm, e, t, x, y, fs)
			}
		case KindBarcode:
			v, err := e.tmpl.expand(scratch[:0], rec)
			if err != nil {
				return elemErr(i, e, err)
			}
			if err := drawBarcode(bm, e, string(v), x, y, dpi, dry, codes); err != nil {
				return elemErr(i, e, err)
			}
		case KindBox:
			if dry {
				continue
			}
			t := max(1, dots(e.Thickness, dpi))
			w, h := max(dots(e.Width, dpi), t), max(dots(e.Height, dpi), t)
			bm.FillRect(image.Rect(x, y, x+w, y+t))
			bm.FillRect(image.Rect(x, y+h-t, x+w, y+h))
			bm.FillRect(image.Rect(x, y, x+t, y+h))
			bm.FillRect(image.Rect(x+w-t, y, x+w, y+h))
		case KindLine:
			if dry {
				continue
			}
			t := max(1, dots(e.Thickness, dpi))
			lw, lh := dots(e.X2-e.X, dpi), dots(e.Y2-e.Y, dpi)
			if lw == 0 {
				lw = t
			} else {
				lh = t
			}
			bm.FillRect(image.Rect(x, y, x+lw, y+lh))
		case KindImage:
			img, err := cachedImage(l, i, dpi)
			if err != nil {
				return err
			}
			if dry {
				continue
			}
			for yy := 0; yy < img.H; yy++ {
				for xx := 0; xx < img.W; xx++ {
					if img.Black(xx, yy) {
						bm.Set(x+xx, y+yy)
					}
				}
			}
		}
	}
	return nil
}

// cachedImage is image element i's PNG thresholded and scaled to dots at
// dpi, computed once per layout and dpi.
func cachedImage(l *Layout, i, dpi int) (*bitmap.Bitmap, error) {
	k := imgKey{i, dpi}
	if b, ok := l.cache.Load(k); ok {
		return b.(*bitmap.Bitmap), nil
	}
	e := &l.Elements[i]
	w, h := max(1, dots(e.Width, dpi)), max(1, dots(e.Height, dpi))
	if int64(w)*int64(h) > maxRasterDots {
		return nil, elemErr(i, e, fmt.Errorf("%w: image of %dx%d dots at %d dpi is too large", ErrUnsupported, w, h, dpi))
	}
	b := bitmap.FromImage(e.img, w, h)
	l.cache.Store(k, b)
	return b, nil
}

// wrapLines splits v into lines no wider than w dots (greedy, at spaces).
// A word wider than w gets a line of its own; layoutText shortens it.
func wrapLines(v []byte, f textFaces, w int) [][]byte {
	var out [][]byte
	limit := fixed.I(w)
	for para := range bytes.SplitSeq(v, []byte{'\n'}) {
		var line []byte
		var lm textMeasure
		for i, word := range bytes.Split(para, []byte{' '}) {
			if i == 0 {
				line = word
				f.extend(&lm, word)
				continue
			}
			cand := lm
			f.extend(&cand, []byte{' '})
			f.extend(&cand, word)
			if cand.w.Ceil() > limit.Ceil() {
				out = append(out, line)
				line = word
				lm = textMeasure{}
				f.extend(&lm, word)
				continue
			}
			line = append(append(line[:len(line):len(line)], ' '), word...)
			lm = cand
		}
		out = append(out, line)
	}
	return out
}

func drawText(bm *bitmap.Bitmap, e *Element, t textLayout, x, y int, fs *FontSet) {
	// Text never leaves its box: max_width when given, else the label.
	clip := image.Rect(0, 0, bm.W, bm.H)
	if e.MaxWidth > 0 {
		clip.Min.X, clip.Max.X = x, x+t.w
	}
	for i, line := range t.lines {
		lx := t.lineX(e, fs, x, line)
		faceMu.Lock()
		drawLine(bm, textFaces{fs, e.Bold, t.h}, line, lx, y+t.ascent+i*t.step, clip)
		faceMu.Unlock()
	}
}

// glyph is a thresholded glyph image as horizontal runs of ink, relative
// to the integer dot position it was rendered at.
type glyph struct {
	runs []image.Rectangle
	adv  fixed.Int26_6
}

type glyphKey struct {
	face font.Face
	r    rune
	frac fixed.Int26_6 // sub-pixel x offset, quantised to 1/4 dot
}

// glyphCache avoids rasterising the outline of the same glyph for every
// label; it is guarded by faceMu and emptied when it grows large.
var glyphCache = map[glyphKey]*glyph{}

func cachedGlyph(f font.Face, r rune, frac fixed.Int26_6) *glyph {
	k := glyphKey{f, r, frac}
	if g, ok := glyphCache[k]; ok {
		return g
	}
	if len(glyphCache) > 50000 {
		clear(glyphCache)
	}
	dr, mask, mp, adv, ok := f.Glyph(fixed.Point26_6{X: frac}, r)
	if !ok {
		dr, mask, mp, adv, _ = f.Glyph(fixed.Point26_6{X: frac}, '?')
	}
	g := &glyph{adv: adv}
	if a, isAlpha := mask.(*image.Alpha); isAlpha {
		for yy := dr.Min.Y; yy < dr.Max.Y; yy++ {
			row := a.Pix[(mp.Y+yy-dr.Min.Y-a.Rect.Min.Y)*a.Stride:]
			start := -1
			for xx := dr.Min.X; xx <= dr.Max.X; xx++ {
				ink := xx < dr.Max.X && row[mp.X+xx-dr.Min.X-a.Rect.Min.X] >= 0x80
				if ink && start < 0 {
					start = xx
				} else if !ink && start >= 0 {
					g.runs = append(g.runs, image.Rect(start, yy, xx, yy+1))
					start = -1
				}
			}
		}
	}
	glyphCache[k] = g
	return g
}

// drawLine draws s with its baseline at base, clipped to clip; the caller
// holds faceMu.
func drawLine(bm *bitmap.Bitmap, ff textFaces, s []byte, x, base int, clip image.Rectangle) {
	dot := fixed.P(x, base)
	prev := rune(-1)
	var prevFace font.Face
	for len(s) > 0 {
		r, n := utf8.DecodeRune(s)
		s = s[n:]
		if invisible(r) {
			continue
		}
		f := ff.face(r)
		if prev >= 0 && f == prevFace {
			dot.X += f.Kern(prev, r)
		}
		prevFace = f
		frac := dot.X & 63 &^ 15
		g := cachedGlyph(f, r, frac)
		off := image.Pt(dot.X.Floor(), dot.Y.Floor())
		for _, run := range g.runs {
			bm.FillRect(run.Add(off).Intersect(clip))
		}
		dot.X += g.adv
		prev = r
	}
}

// encodeBarcode builds the symbol with github.com/boombuler/barcode; one
// image pixel is one module (PDF417: two pixels per row). A QR code whose
// data is not ASCII is built with gozxing's encoder instead, which writes
// the UTF-8 ECI header (ISO/IEC 18004 §7.4.2): without it readers guess
// the charset, and many guess Shift JIS.
func encodeBarcode(sym, s string, ecc string) (image.Image, error) {
	if sym == QR && !isASCII(s) {
		return encodeQRECI(s, ecc)
	}
	switch sym {
	case Code128:
		return code128.Encode(s)
	case EAN13:
		return ean.Encode(s)
	case UPCA:
		// UPC-A is EAN-13 with a leading 0: the bars are identical.
		return ean.Encode("0" + s)
	case Code39:
		return code39.Encode(s, false, false)
	case QR:
		lvl := map[string]qr.ErrorCorrectionLevel{"L": qr.L, "M": qr.M, "Q": qr.Q, "H": qr.H}[ecc]
		return qr.Encode(s, lvl, qr.Auto)
	case DataMatrix:
		return datamatrix.Encode(s)
	case PDF417:
		return pdf417.Encode(s, 2)
	}
	return nil, fmt.Errorf("%w: symbology %q", ErrUnsupported, sym)
}

func drawBarcode(bm *bitmap.Bitmap, e *Element, v string, x, y, dpi int, dry bool, codes map[codeKey]image.Image) error {
	s, err := checkBarcodeData(e.Symbology, v)
	if err != nil {
		return err
	}
	k := codeKey{e.Symbology, s, e.ECC}
	code, ok := codes[k]
	if !ok && dry && e.Symbology == QR {
		// Only the size matters: skip choosing a mask.
		side, err := qrSide(s, e.ECC)
		if err != nil {
			return fmt.Errorf("%w: %s %q: %v", ErrBarcodeData, e.Symbology, s, err)
		}
		code, ok = &image.Gray{Rect: image.Rect(0, 0, side, side)}, true
		if codes != nil {
			codes[k] = code
		}
	}
	if !ok {
		if code, err = encodeBarcode(e.Symbology, s, e.ECC); err != nil {
			return fmt.Errorf("%w: %s %q: %v", ErrBarcodeData, e.Symbology, s, err)
		}
		if codes != nil {
			codes[k] = code
		}
	}
	m := moduleDots(e, dpi)
	b := code.Bounds()
	cols, rows := b.Dx(), b.Dy()
	var cellH int
	switch e.Symbology {
	case QR, DataMatrix:
		cellH = m
	case PDF417:
		rows /= 2
		cellH = max(dots(e.Height, dpi), 1)
	default:
		rows = 1
		cellH = max(dots(e.Height, dpi), 1)
	}
	if x+cols*m > bm.W || y+rows*cellH > bm.H {
		return fmt.Errorf("%w: %s of %q is %dx%d dots at (%d,%d), beyond the %dx%d-dot label", ErrBarcodeData, e.Symbology, s, cols*m, rows*cellH, x, y, bm.W, bm.H)
	}
	if dry {
		return nil
	}
	for r := 0; r < rows; r++ {
		py := r
		if e.Symbology == PDF417 {
			py = 2 * r
		}
		for c := 0; c < cols; {
			if !isDark(code, b.Min.X+c, b.Min.Y+py) {
				c++
				continue
			}
			c0 := c
			for c < cols && isDark(code, b.Min.X+c, b.Min.Y+py) {
				c++
			}
			bm.FillRect(image.Rect(x+c0*m, y+r*cellH, x+c*m, y+(r+1)*cellH))
		}
	}
	if e.HRI {
		hri := s
		faceMu.Lock()
		f := textFaces{defaultFonts, false, max(dots(2.5, dpi), 10)}
		tw := f.measure([]byte(hri)).Ceil()
		drawLine(bm, f, []byte(hri), x+(cols*m-tw)/2, y+cellH+f.primary().Metrics().Ascent.Ceil()+1, image.Rect(0, 0, bm.W, bm.H))
		faceMu.Unlock()
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func encodeQRECI(s, ecc string) (image.Image, error) {
	lvl := map[string]qrdecoder.ErrorCorrectionLevel{"L": qrdecoder.ErrorCorrectionLevel_L, "M": qrdecoder.ErrorCorrectionLevel_M, "Q": qrdecoder.ErrorCorrectionLevel_Q, "H": qrdecoder.ErrorCorrectionLevel_H}[ecc]
	code, err := qrencoder.Encoder_encode(s, lvl, map[gozxing.EncodeHintType]any{gozxing.EncodeHintType_CHARACTER_SET: "UTF-8"})
	if err != nil {
		return nil, err
	}
	return qrModules{code.GetMatrix()}, nil
}

// qrModules shows a gozxing module matrix as an image, one pixel a module.
type qrModules struct{ m *qrencoder.ByteMatrix }

func (q qrModules) ColorModel() color.Model { return color.GrayModel }
func (q qrModules) Bounds() image.Rectangle {
	return image.Rect(0, 0, q.m.GetWidth(), q.m.GetHeight())
}
func (q qrModules) At(x, y int) color.Color {
	if q.m.Get(x, y) == 1 {
		return color.Black
	}
	return color.White
}

// qrBitmap is a QR symbol with m-dot modules, for printer languages whose
// own QR command cannot carry an ECI header.
func qrBitmap(s, ecc string, m int) (*bitmap.Bitmap, error) {
	code, err := encodeBarcode(QR, s, ecc)
	if err != nil {
		return nil, fmt.Errorf("%w: qr %q: %v", ErrBarcodeData, s, err)
	}
	b := code.Bounds()
	bm := bitmap.New(b.Dx()*m, b.Dy()*m)
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			if isDark(code, b.Min.X+x, b.Min.Y+y) {
				bm.FillRect(image.Rect(x*m, y*m, (x+1)*m, (y+1)*m))
			}
		}
	}
	return bm, nil
}

func isDark(img image.Image, x, y int) bool {
	r, _, _, _ := img.At(x, y).RGBA()
	return r < 0x8000
}

// appendRaster renders through the bitmap and encodes it for t.Lang.
func appendRaster(dst []byte, l *Layout, rec Record, t Target) ([]byte, error) {
	w, h, err := checkRasterSize(l, t.DPI)
	if err != nil {
		return dst, err
	}
	if l.rawZPL != nil {
		bm, err := rawBitmap(l, rec, t.DPI)
		if err != nil {
			return dst, err
		}
		return appendBitmap(dst, bm, l, t)
	}
	bm := getBitmap(w, h)
	defer rasterPool.Put(bm)
	if err := drawLayout(bm, l, rec, t.DPI, t.Fonts.orDefault(), false); err != nil {
		return dst, err
	}
	return appendBitmap(dst, bm.Rotate(l.Orientation), l, t)
}

// appendBitmap encodes a finished (already rotated) label bitmap.
func appendBitmap(dst []byte, out *bitmap.Bitmap, l *Layout, t Target) ([]byte, error) {
	switch t.Lang {
	case LangZPL:
		dst = append(dst, "^XA\n^PW"...)
		dst = strconv.AppendInt(dst, int64(out.W), 10)
		dst = append(dst, "\n^LL"...)
		dst = strconv.AppendInt(dst, int64(out.H), 10)
		dst = append(dst, "\n^LH0,0\n^FO0,0"...)
		dst = bitmap.AppendZPL(dst, out, bitmap.ZPLZ64)
		return append(dst, "^FS\n^XZ\n"...), nil
	case LangTSPL:
		wmm, hmm := l.WidthMM, l.HeightMM
		if l.Orientation == 90 || l.Orientation == 270 {
			wmm, hmm = hmm, wmm
		}
		dst = appendTSPLHeader(dst, wmm, hmm, 0)
		dst = bitmap.AppendTSPL(dst, 0, 0, out)
		return append(dst, "PRINT 1,1\r\n"...), nil
	case LangESCPOS:
		dst = append(dst, 0x1b, '@') // ESC @: initialise
		dst = bitmap.AppendESCPOS(dst, out)
		return append(dst, 0x1d, 'V', 66, 0), nil // GS V 66 0: feed to the cutter and cut
	case LangPNG:
		buf := bytes.NewBuffer(dst)
		if err := bitmap.EncodePNG(buf, out); err != nil {
			return dst, fmt.Errorf("label: png: %w", err)
		}
		return buf.Bytes(), nil
	}
	return dst, fmt.Errorf("%w: %s", ErrUnsupported, t.Lang)
}

// rawBitmap draws a raw ZPL template with zebrash, an independent ZPL
// renderer, so a ZebraDesigner template also prints on TSPL and ESC/POS
// printers and has a PNG preview. zebrash works in whole dots per mm, so
// 203 dpi is drawn at 8 dots/mm (203.2 dpi).
func rawBitmap(l *Layout, rec Record, dpi int) (*bitmap.Bitmap, error) {
	zpl, err := appendRawZPL(nil, l, rec)
	if err != nil {
		return nil, err
	}
	labels, err := zebrash.NewParser().Parse(zpl)
	if err != nil {
		return nil, fmt.Errorf("label: zpl template %q: %w", l.ID, err)
	}
	if len(labels) != 1 {
		return nil, fmt.Errorf("label: zpl template %q draws %d labels, want 1", l.ID, len(labels))
	}
	var buf bytes.Buffer
	opt := drawers.DrawerOptions{LabelWidthMm: l.WidthMM, LabelHeightMm: l.HeightMM, Dpmm: int(math.Round(float64(dpi) / 25.4))}
	if err := zebrash.NewDrawer().DrawLabelAsPng(labels[0], &buf, opt); err != nil {
		return nil, fmt.Errorf("label: zpl template %q: %w", l.ID, err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		return nil, fmt.Errorf("label: zpl template %q: %w", l.ID, err)
	}
	b := img.Bounds()
	return bitmap.FromImage(img, b.Dx(), b.Dy()), nil
}
