package label

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"labelstation/label/bitmap"
)

// ZPL II field data rules (ZPL II Programming Guide, ^FD and ^FH): '^' and
// '~' start commands anywhere, so data containing them is written as _XX
// hex after ^FH (whose default escape character is '_'; '_' itself is
// therefore escaped too). Control bytes are escaped so a printer never sees
// a raw byte from the data; '\' is escaped because ^FB gives it a meaning.
// Bytes >= 0x80 pass through: ^CI28 selects UTF-8.
func zplEscByte(c byte) bool {
	return c == '^' || c == '~' || c == '_' || c == '\\' || c < 0x20 || c == 0x7f
}

func zplNeedsEsc(s []byte, nl bool) bool {
	for _, c := range s {
		if zplEscByte(c) && !(nl && c == '\n') {
			return true
		}
	}
	return false
}

const hexDigits = "0123456789ABCDEF"

// appendFD appends one field's data: ^FD, with ^FH in front only when the
// value needs escaping, so ordinary values stay readable in the output.
// With block set the field is a ^FB text block, where "\&" is a line break
// and "\\" a backslash (ZPL II Programming Guide, ^FB): a newline becomes
// "\&" and a backslash "\\", both after hex escaping.
func appendFD(dst []byte, prefix string, v []byte, block bool) []byte {
	nl := block
	if zplNeedsEsc(v, nl) {
		dst = append(dst, "^FH^FD"...)
	} else {
		dst = append(dst, "^FD"...)
	}
	dst = append(dst, prefix...)
	for _, c := range v {
		switch {
		case nl && c == '\n':
			dst = append(dst, '\\', '&')
		case block && c == '\\':
			dst = append(dst, "_5C_5C"...)
		case zplEscByte(c):
			dst = append(dst, '_', hexDigits[c>>4], hexDigits[c&15])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, "^FS\n"...)
}

// zplProgram is a layout compiled for one dpi: everything that does not
// depend on the record is formatted once.
type zplProgram struct {
	head []byte
	w, h int // label size in dots
	ops  []zplOp
}

type zplOp struct {
	idx    int
	el     *Element
	static []byte // box, line, image: the whole command
	pre    string // barcode: command(s) before ^FD
	fdPfx  string // prefix inside ^FD (QR mode)
	x, m   int    // barcode: origin and module width in dots
}

// progKey keys a compiled ZPL program in Layout.cache.
type progKey struct {
	dpi int
}

func zplProg(l *Layout, dpi int) (*zplProgram, error) {
	key := progKey{dpi}
	if p, ok := l.cache.Load(key); ok {
		return p.(*zplProgram), nil
	}
	w, h := dots(l.WidthMM, dpi), dots(l.HeightMM, dpi)
	p := &zplProgram{w: w, h: h}
	po := "N"
	if l.Orientation == 180 {
		po = "I"
	}
	p.head = fmt.Appendf(nil, "^XA\n^CI28\n^PW%d\n^LL%d\n^LH0,0\n^PO%s\n", w, h, po)
	for i := range l.Elements {
		e := &l.Elements[i]
		op := zplOp{idx: i, el: e}
		x, y := dots(e.X, dpi), dots(e.Y, dpi)
		switch e.Kind {
		case KindText: // laid out per record (layoutText)
		case KindBarcode:
			op.pre, op.fdPfx = zplBarcodePre(x, y, dpi, e)
			op.x, op.m = x, moduleDots(e, dpi)
		case KindBox:
			t := max(1, dots(e.Thickness, dpi))
			op.static = fmt.Appendf(nil, "^FO%d,%d^GB%d,%d,%d^FS\n", x, y, max(dots(e.Width, dpi), t), max(dots(e.Height, dpi), t), t)
		case KindLine:
			t := max(1, dots(e.Thickness, dpi))
			lw, lh := dots(e.X2-e.X, dpi), dots(e.Y2-e.Y, dpi)
			if lw == 0 {
				lw = t
			} else {
				lh = t
			}
			op.static = fmt.Appendf(nil, "^FO%d,%d^GB%d,%d,%d^FS\n", x, y, lw, lh, t)
		case KindImage:
			img, err := cachedImage(l, i, dpi)
			if err != nil {
				return nil, err
			}
			op.static = fmt.Appendf(nil, "^FO%d,%d", x, y)
			op.static = bitmap.AppendZPL(op.static, img, bitmap.ZPLAuto)
			op.static = append(op.static, "^FS\n"...)
		}
		p.ops = append(p.ops, op)
	}
	l.cache.Store(key, p)
	return p, nil
}

func zplJustify(align string) byte {
	switch align {
	case "center":
		return 'C'
	case "right":
		return 'R'
	}
	return 'L'
}

// moduleDots is the element's module width in dots, 1..10 as ^BY allows.
func moduleDots(e *Element, dpi int) int {
	return min(max(dots(e.Module, dpi), 1), 10)
}

func zplBarcodePre(x, y, dpi int, e *Element) (pre, fdPfx string) {
	m := moduleDots(e, dpi)
	h := max(dots(e.Height, dpi), 1)
	hri := "N"
	if e.HRI {
		hri = "Y"
	}
	fo := "^FO" + strconv.Itoa(x) + "," + strconv.Itoa(y)
	switch e.Symbology {
	case Code128:
		// Mode A (automatic subset selection): the data is taken literally,
		// so a '>' in it is not an invocation code.
		return fo + fmt.Sprintf("^BY%d,3,%d^BCN,%d,%s,N,N,A", m, h, h, hri), ""
	case EAN13:
		return fo + fmt.Sprintf("^BY%d,3,%d^BEN,%d,%s,N", m, h, h, hri), ""
	case UPCA:
		return fo + fmt.Sprintf("^BY%d,3,%d^BUN,%d,%s,N,Y", m, h, h, hri), ""
	case Code39:
		// Wide:narrow 2:1, the same as the raster encoder.
		return fo + fmt.Sprintf("^BY%d,2,%d^B3N,N,%d,%s,N", m, h, h, hri), ""
	case QR:
		// Model 2; the ^FD prefix is "<ecc>A," (automatic data mode).
		// ^BQ is moved down by the current ^BY bar height, so that is
		// reset to its power-on default of 10 dots first.
		return fo + fmt.Sprintf("^BY2,3,10^BQN,2,%d", m), e.ECC + "A,"
	case DataMatrix:
		return fo + fmt.Sprintf("^BXN,%d,200", m), ""
	case PDF417:
		return fo + fmt.Sprintf("^BY%d^B7N,%d,0,0,0,N", m, h), ""
	}
	return fo, ""
}

func appendZPL(dst []byte, l *Layout, rec Record, dpi int, fs *FontSet) ([]byte, error) {
	p, err := zplProg(l, dpi)
	if err != nil {
		return dst, err
	}
	var scratch [256]byte
	var lines [8][]byte
	dst = append(dst, p.head...)
	for i := range p.ops {
		op := &p.ops[i]
		if op.static != nil {
			dst = append(dst, op.static...)
			continue
		}
		e := op.el
		v, err := e.tmpl.expand(scratch[:0], rec)
		if err != nil {
			return dst, elemErr(op.idx, e, err)
		}
		switch e.Kind {
		case KindText:
			v = visibleControls(v, e.MaxWidth > 0)
			if err := fs.checkGlyphs(e, rec, v); err != nil {
				return dst, elemErr(op.idx, e, err)
			}
			if !fs.resident(v) {
				return dst, errNeedRaster
			}
			x, y := dots(e.X, dpi), dots(e.Y, dpi)
			t := layoutTextInto(lines[:0], e, v, x, p.w, dpi, fs)
			strikes := 1
			if e.Bold {
				strikes = 2
			}
			block := e.MaxWidth > 0 || len(t.lines) > 1
			for s := range strikes {
				dst = append(dst, "^FO"...)
				dst = strconv.AppendInt(dst, int64(x+s*max(1, dpi/150)), 10)
				dst = append(dst, ',')
				dst = strconv.AppendInt(dst, int64(y), 10)
				dst = append(dst, "^A0N,"...)
				dst = strconv.AppendInt(dst, int64(t.h), 10)
				dst = append(dst, ',')
				dst = strconv.AppendInt(dst, int64(t.h), 10)
				if block {
					// ^FB line spacing adds dots between lines: the Go
					// fonts' line step, as in the preview.
					dst = append(dst, "^FB"...)
					dst = strconv.AppendInt(dst, int64(t.w), 10)
					dst = append(dst, ',')
					dst = strconv.AppendInt(dst, int64(len(t.lines)), 10)
					dst = append(dst, ',')
					dst = strconv.AppendInt(dst, int64(t.step-t.h), 10)
					dst = append(dst, ',', zplJustify(e.Align), ',', '0')
				}
				text := t.lines[0]
				if len(t.lines) > 1 {
					text = bytes.Join(t.lines, []byte{'\n'})
				}
				dst = appendFD(dst, "", text, block)
			}
		case KindBarcode:
			s, err := checkBarcodeData(e.Symbology, string(v))
			if err == nil {
				err = checkLinearFits(e.Symbology, s, op.x, op.m, p.w)
			}
			if err != nil {
				return dst, elemErr(op.idx, e, err)
			}
			if e.Symbology == QR && !isASCII(s) {
				// ^BQ has no way to write the UTF-8 ECI header: send the
				// symbol as a graphic, the same modules as the preview.
				bm, err := qrBitmap(s, e.ECC, op.m)
				if err == nil && (op.x+bm.W > p.w || dots(e.Y, dpi)+bm.H > p.h) {
					err = fmt.Errorf("%w: qr of %q is %dx%d dots at (%d,%d), beyond the %dx%d-dot label", ErrBarcodeData, s, bm.W, bm.H, op.x, dots(e.Y, dpi), p.w, p.h)
				}
				if err != nil {
					return dst, elemErr(op.idx, e, err)
				}
				dst = fmt.Appendf(dst, "^FO%d,%d", op.x, dots(e.Y, dpi))
				dst = bitmap.AppendZPL(dst, bm, bitmap.ZPLAuto)
				dst = append(dst, "^FS\n"...)
				continue
			}
			// ^BE and ^BU compute the check digit themselves.
			switch e.Symbology {
			case EAN13:
				s = s[:12]
			case UPCA:
				s = s[:11]
			}
			dst = append(dst, op.pre...)
			dst = appendFD(dst, op.fdPfx, []byte(s), false)
		}
	}
	return append(dst, "^XZ\n"...), nil
}

// visibleControls replaces control characters in text with their visible
// "\xHH" spelling, so a stray ESC or NUL in data prints as text on every
// printer language alike. A newline starts a new line in a text block
// (keepNewline, a text with max_width) and is a space elsewhere.
func visibleControls(v []byte, keepNewline bool) []byte {
	clean := true
	for _, c := range v {
		if c < 0x20 || c == 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return v
	}
	out := make([]byte, 0, len(v)+8)
	for _, c := range v {
		switch {
		case c == '\n' && keepNewline:
			out = append(out, c)
		case c == '\n':
			out = append(out, ' ')
		case c < 0x20 || c == 0x7f:
			out = append(out, '\\', 'x', hexDigits[c>>4], hexDigits[c&15])
		default:
			out = append(out, c)
		}
	}
	return out
}

// rawPart is a piece of a raw ZPL template: literal ZPL or a placeholder
// inside a ^FD field, with the ^FH escape character in effect there.
type rawPart struct {
	lit    string
	field  string
	def    string
	hasDef bool
	esc    byte
}

// parseRawZPL checks a ZebraDesigner-style template: one ^XA..^XZ label
// whose {field} placeholders all sit inside ^FD..^FS. A field that has a
// placeholder but no ^FH gets one, so data is always hex-escaped.
func parseRawZPL(src string) ([]rawPart, error) {
	s := strings.TrimSpace(src)
	up := asciiUpper(s)
	if !strings.HasPrefix(up, "^XA") || !strings.HasSuffix(up, "^XZ") || strings.Count(up, "^XA") != 1 || strings.Count(up, "^XZ") != 1 {
		return nil, errors.New("must be exactly one label: start with ^XA and end with ^XZ")
	}
	t, err := parseTemplate(s)
	if err != nil {
		return nil, err
	}
	var out []rawPart
	var sofar strings.Builder // literal ZPL emitted so far
	for _, p := range t.parts {
		if p.field == "" {
			sofar.WriteString(p.lit)
			out = append(out, rawPart{lit: p.lit})
			continue
		}
		z := asciiUpper(sofar.String())
		fd := strings.LastIndex(z, "^FD")
		if fd < 0 || strings.LastIndex(z, "^FS") > fd {
			return nil, fmt.Errorf("placeholder {%s} is outside a ^FD...^FS field", p.field)
		}
		fieldStart := max(strings.LastIndex(z[:fd], "^FS"), 0)
		esc := byte('_')
		if fh := strings.LastIndex(z[:fd], "^FH"); fh >= fieldStart {
			if c := sofar.String()[fh+3]; c != '^' {
				esc = c
			}
		} else {
			// Insert ^FH right before this field's ^FD in the literal parts.
			if err := insertFH(out, fd); err != nil {
				return nil, err
			}
			sofar.Reset()
			for _, q := range out {
				sofar.WriteString(q.lit)
			}
		}
		out = append(out, rawPart{field: p.field, def: p.def, hasDef: p.hasDef, esc: esc})
	}
	return out, nil
}

// insertFH inserts "^FH" at byte offset off of the concatenated literals.
func insertFH(parts []rawPart, off int) error {
	for i := range parts {
		if parts[i].field != "" {
			continue
		}
		if off <= len(parts[i].lit) {
			parts[i].lit = parts[i].lit[:off] + "^FH" + parts[i].lit[off:]
			return nil
		}
		off -= len(parts[i].lit)
	}
	return errors.New("internal: ^FD offset not found")
}

func appendRawZPL(dst []byte, l *Layout, rec Record) ([]byte, error) {
	for _, p := range l.rawZPL {
		if p.field == "" {
			dst = append(dst, p.lit...)
			continue
		}
		v, ok := rec[p.field]
		if !ok {
			if !p.hasDef {
				return dst, fmt.Errorf("label: zpl: %w: %q (write {%s|} for an empty default)", ErrMissingField, p.field, p.field)
			}
			v = p.def
		}
		for i := 0; i < len(v); i++ {
			c := v[i]
			if zplEscByte(c) || c == p.esc {
				dst = append(dst, p.esc, hexDigits[c>>4], hexDigits[c&15])
			} else {
				dst = append(dst, c)
			}
		}
	}
	if !bytes.HasSuffix(dst, []byte("\n")) {
		dst = append(dst, '\n')
	}
	return dst, nil
}

// asciiUpper upper-cases ASCII letters only, keeping byte offsets intact.
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}
