// Package label is the label engine of the station: layouts, data records
// (CSV, JSON, XML, XLSX), and the renderers that turn one layout plus one
// record into printer bytes (ZPL II, TSPL, ESC/POS) or a PNG preview.
//
// The layout document is specified in docs/layouts.md.
package label

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// ErrInvalidLayout is wrapped by every ParseLayout error, so callers can
// tell a bad layout (the user's fault, HTTP 400) from an I/O failure.
var ErrInvalidLayout = errors.New("label: invalid layout")

// MaxCopies bounds the copies field of one record; a typo such as 1000000
// must not tie up a printer for a day.
const MaxCopies = 10000

// Element kinds.
const (
	KindText    = "text"
	KindBarcode = "barcode"
	KindBox     = "box"
	KindLine    = "line"
	KindImage   = "image"
)

// Barcode symbologies.
const (
	Code128    = "code128"
	EAN13      = "ean13"
	UPCA       = "upca"
	Code39     = "code39"
	QR         = "qr"
	DataMatrix = "datamatrix"
	PDF417     = "pdf417"
)

// Layout is a parsed, validated layout document (the "format" of the Submit
// Print Job API). All lengths are millimetres; renderers convert to dots for
// the printer's resolution. A Layout may be rendered from several goroutines
// at once; treat it as read-only after ParseLayout, since renderers cache
// per-dpi programs in it.
type Layout struct {
	Version     int       `json:"version"`
	ID          string    `json:"id"`
	Name        string    `json:"name,omitempty"`
	WidthMM     float64   `json:"width_mm"`
	HeightMM    float64   `json:"height_mm"`
	Orientation int       `json:"orientation,omitempty"` // degrees clockwise: 0, 90, 180, 270
	CopiesField string    `json:"copies_field,omitempty"`
	Elements    []Element `json:"elements,omitempty"`
	// ZPL is a raw ZPL II template with {field} placeholders inside ^FD..^FS,
	// for labels designed in ZebraDesigner. Exclusive with Elements.
	ZPL string `json:"zpl,omitempty"`

	rawZPL []rawPart
	cache  sync.Map // progKey -> *zplProgram, imgKey -> *bitmap.Bitmap
}

// Element is one drawable item of a layout. Which fields apply depends on
// Kind (see docs/layouts.md); a field that does not apply is rejected.
type Element struct {
	Kind string  `json:"type"`
	X    float64 `json:"x"`
	Y    float64 `json:"y"`

	// text
	Text     string  `json:"text,omitempty"`
	FontPt   float64 `json:"font_pt,omitempty"`
	Bold     bool    `json:"bold,omitempty"`
	Align    string  `json:"align,omitempty"` // left, center, right
	MaxWidth float64 `json:"max_width,omitempty"`
	Fit      string  `json:"fit,omitempty"` // wrap, shrink
	MaxLines int     `json:"max_lines,omitempty"`

	// barcode
	Symbology string  `json:"symbology,omitempty"`
	Data      string  `json:"data,omitempty"`
	Module    float64 `json:"module,omitempty"`
	HRI       bool    `json:"hri,omitempty"`
	ECC       string  `json:"ecc,omitempty"`

	// box, image, barcode (bar height)
	Width     float64 `json:"width,omitempty"`
	Height    float64 `json:"height,omitempty"`
	Thickness float64 `json:"thickness,omitempty"`

	// line
	X2 float64 `json:"x2,omitempty"`
	Y2 float64 `json:"y2,omitempty"`

	// image: PNG bytes (base64 in JSON)
	PNG []byte `json:"png,omitempty"`

	tmpl template
	img  image.Image
}

var allowedKeys = map[string][]string{
	KindText:    {"text", "font_pt", "bold", "align", "max_width", "fit", "max_lines"},
	KindBarcode: {"symbology", "data", "module", "hri", "ecc", "height"},
	KindBox:     {"width", "height", "thickness"},
	KindLine:    {"x2", "y2", "thickness"},
	KindImage:   {"width", "height", "png"},
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ParseLayout decodes and validates a layout document. Decoding is strict:
// unknown fields, trailing data and an unsupported version are errors, and
// every element error names the element's index and the reason.
func ParseLayout(data []byte) (*Layout, error) {
	l := &Layout{}
	var top struct {
		Layout
		Elements []json.RawMessage `json:"elements"`
	}
	if err := decodeStrict(data, &top); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidLayout, err)
	}
	l.Version, l.ID, l.Name = top.Version, top.ID, top.Name
	l.WidthMM, l.HeightMM, l.Orientation = top.WidthMM, top.HeightMM, top.Orientation
	l.CopiesField, l.ZPL = top.CopiesField, top.ZPL
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidLayout, fmt.Sprintf(format, a...))
	}
	if l.Version != 1 {
		return nil, bad("version: must be 1, got %d", l.Version)
	}
	if !idRE.MatchString(l.ID) {
		return nil, bad("id: %q must be 1-64 characters of letters, digits, '.', '_' or '-'", l.ID)
	}
	if !(l.WidthMM > 0 && l.WidthMM <= 1000) || !(l.HeightMM > 0 && l.HeightMM <= 2000) {
		return nil, bad("size: width_mm %g / height_mm %g must be positive (width ≤ 1000, height ≤ 2000)", l.WidthMM, l.HeightMM)
	}
	switch l.Orientation {
	case 0, 90, 180, 270:
	default:
		return nil, bad("orientation: %d must be 0, 90, 180 or 270", l.Orientation)
	}
	if l.CopiesField == "" {
		l.CopiesField = "copies"
	} else if err := checkFieldName(l.CopiesField); err != nil {
		return nil, bad("copies_field: %v", err)
	}
	if (l.ZPL != "") == (len(top.Elements) > 0) {
		return nil, bad("exactly one of elements or zpl is required")
	}
	if l.ZPL != "" {
		parts, err := parseRawZPL(l.ZPL)
		if err != nil {
			return nil, bad("zpl: %v", err)
		}
		l.rawZPL = parts
		return l, nil
	}
	for i, raw := range top.Elements {
		e, err := l.parseElement(raw)
		if err != nil {
			kind := ""
			if e != nil && e.Kind != "" {
				kind = " (" + e.Kind + ")"
			}
			return nil, bad("elements[%d]%s: %v", i, kind, err)
		}
		l.Elements = append(l.Elements, *e)
	}
	return l, nil
}

func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON document")
	}
	return nil
}

const eps = 1e-9

func (l *Layout) parseElement(raw json.RawMessage) (*Element, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	var kind string
	if err := json.Unmarshal(keys["type"], &kind); err != nil || kind == "" {
		return nil, errors.New(`"type" is required (text, barcode, box, line, image)`)
	}
	allowed, ok := allowedKeys[kind]
	if !ok {
		return nil, fmt.Errorf("unknown element type %q (want text, barcode, box, line or image)", kind)
	}
	e := &Element{Kind: kind}
	var extra []string
	for k := range keys {
		if k == "type" || k == "x" || k == "y" {
			continue
		}
		found := false
		for _, a := range allowed {
			found = found || a == k
		}
		if !found {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return e, fmt.Errorf("field %q does not apply to a %s element", extra[0], kind)
	}
	if err := decodeStrict(raw, e); err != nil {
		return e, err
	}
	if e.X < 0 || e.Y < 0 || e.X > l.WidthMM+eps || e.Y > l.HeightMM+eps {
		return e, fmt.Errorf("position (%g, %g) mm is outside the %gx%g mm label", e.X, e.Y, l.WidthMM, l.HeightMM)
	}
	for _, v := range []float64{e.FontPt, e.MaxWidth, e.Module, e.Width, e.Height, e.Thickness, e.X2, e.Y2} {
		if v < 0 || math.IsNaN(v) {
			return e, fmt.Errorf("negative size %g", v)
		}
	}
	if e.MaxLines < 0 {
		return e, fmt.Errorf("max_lines %d is negative", e.MaxLines)
	}
	var err error
	switch kind {
	case KindText:
		err = l.checkText(e)
	case KindBarcode:
		err = l.checkBarcode(e)
	case KindBox:
		err = l.checkBox(e)
	case KindLine:
		err = l.checkLine(e)
	case KindImage:
		err = l.checkImage(e)
	}
	return e, err
}

func (l *Layout) fits(what string, x2, y2 float64) error {
	if x2 > l.WidthMM+eps || y2 > l.HeightMM+eps {
		return fmt.Errorf("%s reaches (%g, %g) mm, outside the %gx%g mm label", what, x2, y2, l.WidthMM, l.HeightMM)
	}
	return nil
}

func (l *Layout) checkText(e *Element) error {
	t, err := parseTemplate(e.Text)
	if err != nil {
		return fmt.Errorf("text: %v", err)
	}
	if len(t.parts) == 0 {
		return errors.New("text: must not be empty")
	}
	e.tmpl = t
	if e.FontPt == 0 {
		e.FontPt = 10
	}
	if e.FontPt > 300 {
		return fmt.Errorf("font_pt %g is larger than 300", e.FontPt)
	}
	switch e.Align {
	case "", "left":
		e.Align = "left"
	case "center", "right":
		if e.MaxWidth == 0 {
			return fmt.Errorf("align %q needs max_width (the box to align in)", e.Align)
		}
	default:
		return fmt.Errorf("align %q must be left, center or right", e.Align)
	}
	switch e.Fit {
	case "", "wrap", "shrink":
		if e.Fit == "" {
			e.Fit = "wrap"
		}
		if e.Fit == "shrink" && e.MaxWidth == 0 {
			return errors.New("fit shrink needs max_width")
		}
	default:
		return fmt.Errorf("fit %q must be wrap or shrink", e.Fit)
	}
	if e.MaxLines == 0 {
		e.MaxLines = 1
	}
	if e.MaxLines > 50 {
		return fmt.Errorf("max_lines %d is larger than 50", e.MaxLines)
	}
	lineMM := e.FontPt * 25.4 / 72
	return l.fits("text", e.X+e.MaxWidth, e.Y+lineMM*float64(e.MaxLines))
}

func (l *Layout) checkBarcode(e *Element) error {
	t, err := parseTemplate(e.Data)
	if err != nil {
		return fmt.Errorf("data: %v", err)
	}
	if len(t.parts) == 0 {
		return errors.New("data: must not be empty")
	}
	e.tmpl = t
	switch e.Symbology {
	case Code128, EAN13, UPCA, Code39:
		if e.Module == 0 {
			e.Module = 0.25
		}
		if e.Height == 0 {
			e.Height = 10
		}
		if e.ECC != "" {
			return errors.New("ecc applies to qr only")
		}
	case QR, DataMatrix:
		if e.Module == 0 {
			e.Module = 0.5
		}
		if e.Height != 0 {
			return fmt.Errorf("height does not apply to %s (its size follows from module and data)", e.Symbology)
		}
		if e.HRI {
			return fmt.Errorf("hri does not apply to %s", e.Symbology)
		}
		if e.Symbology == QR {
			switch e.ECC {
			case "":
				e.ECC = "M"
			case "L", "M", "Q", "H":
			default:
				return fmt.Errorf("ecc %q must be L, M, Q or H", e.ECC)
			}
		} else if e.ECC != "" {
			return errors.New("ecc applies to qr only")
		}
	case PDF417:
		if e.Module == 0 {
			e.Module = 0.25
		}
		if e.Height == 0 {
			e.Height = 3 * e.Module // row height
		}
		if e.HRI || e.ECC != "" {
			return errors.New("hri and ecc do not apply to pdf417")
		}
	case "":
		return errors.New("symbology is required")
	default:
		return fmt.Errorf("unknown symbology %q (want code128, ean13, upca, code39, qr, datamatrix or pdf417)", e.Symbology)
	}
	if e.Module > 10 {
		return fmt.Errorf("module %g mm is larger than 10 mm", e.Module)
	}
	if t.static {
		s, _ := t.string(nil)
		if _, err := checkBarcodeData(e.Symbology, s); err != nil {
			return fmt.Errorf("data: %v", err)
		}
	}
	if e.Symbology != QR && e.Symbology != DataMatrix && e.Symbology != PDF417 {
		return l.fits("barcode", e.X, e.Y+e.Height)
	}
	return nil
}

func (l *Layout) checkBox(e *Element) error {
	if e.Width <= 0 || e.Height <= 0 {
		return fmt.Errorf("width %g and height %g must be positive", e.Width, e.Height)
	}
	if e.Thickness == 0 {
		e.Thickness = 0.25
	}
	if e.Thickness > math.Min(e.Width, e.Height)/2+eps {
		e.Thickness = math.Min(e.Width, e.Height) / 2 // a filled box
	}
	return l.fits("box", e.X+e.Width, e.Y+e.Height)
}

func (l *Layout) checkLine(e *Element) error {
	if e.X2 != e.X && e.Y2 != e.Y {
		return fmt.Errorf("line (%g,%g)-(%g,%g) must be horizontal or vertical", e.X, e.Y, e.X2, e.Y2)
	}
	if e.Thickness == 0 {
		e.Thickness = 0.25
	}
	if e.X2 < e.X {
		e.X, e.X2 = e.X2, e.X
	}
	if e.Y2 < e.Y {
		e.Y, e.Y2 = e.Y2, e.Y
	}
	if e.Y2 == e.Y {
		return l.fits("line", e.X2, e.Y+e.Thickness)
	}
	return l.fits("line", e.X+e.Thickness, e.Y2)
}

func (l *Layout) checkImage(e *Element) error {
	if len(e.PNG) == 0 {
		return errors.New("png: required (base64 PNG bytes)")
	}
	img, err := png.Decode(bytes.NewReader(e.PNG))
	if err != nil {
		return fmt.Errorf("png: %v", err)
	}
	b := img.Bounds()
	if b.Dx() == 0 || b.Dy() == 0 || b.Dx()*b.Dy() > 16<<20 {
		return fmt.Errorf("png: %dx%d pixels is empty or too large", b.Dx(), b.Dy())
	}
	e.img = img
	if e.Width == 0 {
		return errors.New("width is required")
	}
	if e.Height == 0 {
		e.Height = e.Width * float64(b.Dy()) / float64(b.Dx())
	}
	return l.fits("image", e.X+e.Width, e.Y+e.Height)
}

// Fields lists the record fields the layout reads, sorted, without
// duplicates. The print-job API uses it to reject data early.
func (l *Layout) Fields() []string {
	set := map[string]bool{}
	for _, e := range l.Elements {
		for _, f := range e.tmpl.fields() {
			set[f] = true
		}
	}
	for _, p := range l.rawZPL {
		if p.field != "" {
			set[p.field] = true
		}
	}
	out := make([]string, 0, len(set))
	for f := range set {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// Copies is how many labels a record yields: its copies field (named by the
// layout's copies_field, default "copies") when present and not blank,
// else 1. Zero is allowed and yields no label.
func (l *Layout) Copies(rec Record) (int, error) {
	v, ok := rec[l.CopiesField]
	v = strings.TrimSpace(v)
	if !ok || v == "" {
		return 1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > MaxCopies {
		return 0, fmt.Errorf("label: field %q: copies %q must be a whole number from 0 to %d", l.CopiesField, v, MaxCopies)
	}
	return n, nil
}
