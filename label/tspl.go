package label

import (
	"bytes"
	"fmt"
	"strconv"

	"labelstation/label/bitmap"
)

// appendTSPLHeader starts a TSPL label of wMM×hMM; dir 1 prints it turned
// by 180°. The gap or black mark of the stock is printer configuration (set
// once, stored by the printer), not part of every label.
func appendTSPLHeader(dst []byte, wMM, hMM float64, dir int) []byte {
	mm := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	return fmt.Appendf(dst, "SIZE %s mm,%s mm\r\nCODEPAGE UTF-8\r\nDIRECTION %d,0\r\nREFERENCE 0,0\r\nCLS\r\n", mm(wMM), mm(hMM), dir)
}

// tsplQuote appends s as a TSPL string literal. Inside "...", a double
// quote is written \["] (TSPL/TSPL2 Programming Manual, "TEXT": \["] for
// "). A line break would end the command, so in text newlines become
// spaces; other control bytes were made visible already (visibleControls).
// ok is false when s holds a byte TSPL cannot carry, the sequence "\[" that
// the printer would read as an escape, or "~!", the prefix of TSPL's
// immediate status commands, which some firmware acts on wherever it
// appears. Barcode data (text false) must arrive byte for byte: a newline
// or a byte beyond ASCII (QRCODE writes no ECI header) is not ok either,
// and the label takes the raster path.
func tsplQuote(dst, s []byte, text bool) ([]byte, bool) {
	if bytes.Contains(s, []byte(`\[`)) || bytes.Contains(s, []byte("~!")) {
		return dst, false
	}
	dst = append(dst, '"')
	for _, c := range s {
		switch {
		case c == '"':
			dst = append(dst, `\["]`...)
		case c == '\n' && text:
			dst = append(dst, ' ')
		case c >= 0x80 && !text:
			return dst, false
		case c < 0x20 || c == 0x7f:
			return dst, false
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"'), true
}

func appendTSPLNative(dst []byte, l *Layout, rec Record, dpi int, fs *FontSet) ([]byte, error) {
	w, h := dots(l.WidthMM, dpi), dots(l.HeightMM, dpi)
	dir := 0
	if l.Orientation == 180 {
		dir = 1
	}
	dst = appendTSPLHeader(dst, l.WidthMM, l.HeightMM, dir)
	var scratch [256]byte
	var ok bool
	for i := range l.Elements {
		e := &l.Elements[i]
		x, y := dots(e.X, dpi), dots(e.Y, dpi)
		switch e.Kind {
		case KindText:
			v, err := e.tmpl.expand(scratch[:0], rec)
			if err != nil {
				return dst, elemErr(i, e, err)
			}
			v = visibleControls(v, e.MaxWidth > 0)
			if err := fs.checkGlyphs(e, rec, v); err != nil {
				return dst, elemErr(i, e, err)
			}
			if !fs.resident(v) {
				return dst, errNeedRaster
			}
			t := layoutText(e, v, x, w, dpi, fs)
			// Font "0" is the scalable font; its x/y multipliers are points.
			pt := max(1, int(float64(t.h)*72/float64(dpi)+0.5))
			strikes := 1
			if e.Bold {
				strikes = 2
			}
			for li, line := range t.lines {
				ly := y + li*t.step
				for s := range strikes {
					xs := x + s*max(1, dpi/150)
					if e.MaxWidth > 0 {
						align := map[string]int{"left": 1, "center": 2, "right": 3}[e.Align]
						dst = fmt.Appendf(dst, "BLOCK %d,%d,%d,%d,\"0\",0,%d,%d,0,%d,", xs, ly, t.w, t.step, pt, pt, align)
					} else {
						dst = fmt.Appendf(dst, "TEXT %d,%d,\"0\",0,%d,%d,", xs, ly, pt, pt)
					}
					if dst, ok = tsplQuote(dst, line, true); !ok {
						return dst, errNeedRaster
					}
					dst = append(dst, "\r\n"...)
				}
			}
		case KindBarcode:
			v, err := e.tmpl.expand(scratch[:0], rec)
			if err != nil {
				return dst, elemErr(i, e, err)
			}
			m := moduleDots(e, dpi)
			s, err := checkBarcodeData(e.Symbology, string(v))
			if err == nil {
				err = checkLinearFits(e.Symbology, s, x, m, w)
			}
			if err != nil {
				return dst, elemErr(i, e, err)
			}
			bh := max(dots(e.Height, dpi), 1)
			hri := 0
			if e.HRI {
				hri = 1
			}
			switch e.Symbology {
			case Code128:
				dst = fmt.Appendf(dst, "BARCODE %d,%d,\"128\",%d,%d,0,%d,%d,", x, y, bh, hri, m, m)
			case EAN13:
				dst = fmt.Appendf(dst, "BARCODE %d,%d,\"EAN13\",%d,%d,0,%d,%d,", x, y, bh, hri, m, m)
				s = s[:12]
			case UPCA:
				dst = fmt.Appendf(dst, "BARCODE %d,%d,\"UPCA\",%d,%d,0,%d,%d,", x, y, bh, hri, m, m)
				s = s[:11]
			case Code39:
				dst = fmt.Appendf(dst, "BARCODE %d,%d,\"39\",%d,%d,0,%d,%d,", x, y, bh, hri, m, 2*m)
			case QR:
				dst = fmt.Appendf(dst, "QRCODE %d,%d,%s,%d,A,0,", x, y, e.ECC, m)
			case DataMatrix:
				dst = fmt.Appendf(dst, "DMATRIX %d,%d,%d,%d,x%d,", x, y, w-x, h-y, m)
			case PDF417:
				dst = fmt.Appendf(dst, "PDF417 %d,%d,%d,%d,0,W%d,H%d,", x, y, w-x, h-y, m, bh)
			}
			if dst, ok = tsplQuote(dst, []byte(s), false); !ok {
				return dst, errNeedRaster
			}
			dst = append(dst, "\r\n"...)
		case KindBox:
			t := max(1, dots(e.Thickness, dpi))
			bw, bh := max(dots(e.Width, dpi), t), max(dots(e.Height, dpi), t)
			if 2*t >= min(bw, bh) {
				dst = fmt.Appendf(dst, "BAR %d,%d,%d,%d\r\n", x, y, bw, bh)
			} else {
				dst = fmt.Appendf(dst, "BOX %d,%d,%d,%d,%d\r\n", x, y, x+bw, y+bh, t)
			}
		case KindLine:
			t := max(1, dots(e.Thickness, dpi))
			lw, lh := dots(e.X2-e.X, dpi), dots(e.Y2-e.Y, dpi)
			if lw == 0 {
				lw = t
			} else {
				lh = t
			}
			dst = fmt.Appendf(dst, "BAR %d,%d,%d,%d\r\n", x, y, lw, lh)
		case KindImage:
			img, err := cachedImage(l, i, dpi)
			if err != nil {
				return dst, err
			}
			dst = bitmap.AppendTSPL(dst, x, y, img)
		}
	}
	return append(dst, "PRINT 1,1\r\n"...), nil
}
