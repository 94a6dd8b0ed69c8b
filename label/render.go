package label

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Lang is a printer language, or "png" for a preview image.
type Lang string

// Output languages.
const (
	LangZPL    Lang = "zpl"
	LangTSPL   Lang = "tspl"
	LangESCPOS Lang = "escpos"
	LangPNG    Lang = "png"
)

// ParseLang accepts a language name in any case.
func ParseLang(s string) (Lang, error) {
	switch l := Lang(strings.ToLower(strings.TrimSpace(s))); l {
	case LangZPL, LangTSPL, LangESCPOS, LangPNG:
		return l, nil
	}
	return "", fmt.Errorf("label: unknown language %q (want zpl, tspl, escpos or png)", s)
}

// ErrUnsupported is wrapped when a layout cannot be rendered for a target
// (a raw ZPL template asked for TSPL, for instance).
var ErrUnsupported = errors.New("label: unsupported")

// DefaultDPI is used when Target.DPI is 0: 8 dots/mm, the most common
// thermal print head.
const DefaultDPI = 203

// Target says what to render for: the printer's language (default zpl)
// and resolution (default DefaultDPI). Raster forces the 1-bit bitmap path for zpl and tspl; escpos and png are
// always raster.
type Target struct {
	Lang   Lang
	DPI    int
	Raster bool
	// Fonts draws text the Go fonts lack; nil is the Go fonts alone. Text
	// with a character beyond them is drawn by the raster path in every
	// language, so the printer never needs a font it may not have.
	Fonts *FontSet
}

func (t Target) normalize() (Target, error) {
	if t.DPI == 0 {
		t.DPI = DefaultDPI
	}
	if t.DPI < 100 || t.DPI > 1200 {
		return t, fmt.Errorf("label: dpi %d out of range 100..1200", t.DPI)
	}
	switch t.Lang {
	case "":
		t.Lang = LangZPL
	case LangZPL, LangTSPL:
	case LangESCPOS, LangPNG:
		t.Raster = true
	default:
		return t, fmt.Errorf("label: unknown language %q (want zpl, tspl, escpos or png)", t.Lang)
	}
	return t, nil
}

// Render renders ONE label (one record, one copy) for the target. For ZPL
// it is one complete ^XA...^XZ block, for TSPL one SIZE...PRINT 1 program,
// for ESC/POS one raster image, for png one PNG file.
func Render(l *Layout, rec Record, t Target) ([]byte, error) {
	return AppendRender(nil, l, rec, t)
}

// AppendRender is Render appending to dst, so a job loop can reuse one
// buffer for every label.
func AppendRender(dst []byte, l *Layout, rec Record, t Target) ([]byte, error) {
	t, err := t.normalize()
	if err != nil {
		return dst, err
	}
	if l.rawZPL != nil {
		if t.Lang == LangZPL && !t.Raster {
			return appendRawZPL(dst, l, rec)
		}
		return appendRaster(dst, l, rec, t)
	}
	// A rotated layout takes the raster path: native commands would need
	// every element's coordinates transformed and each field rotated.
	if t.Raster || l.Orientation == 90 || l.Orientation == 270 {
		return appendRaster(dst, l, rec, t)
	}
	var out []byte
	switch t.Lang {
	case LangZPL:
		out, err = appendZPL(dst, l, rec, t.DPI, t.Fonts.orDefault())
	case LangTSPL:
		out, err = appendTSPLNative(dst, l, rec, t.DPI, t.Fonts.orDefault())
	default:
		return dst, fmt.Errorf("%w: %s", ErrUnsupported, t.Lang)
	}
	if errors.Is(err, errNeedRaster) {
		t.Raster = true
		return appendRaster(dst, l, rec, t)
	}
	return out, err
}

// errNeedRaster makes AppendRender fall back to the raster path for a
// record the printer language cannot carry natively (a control byte in a
// TSPL 2-D code, a character beyond the printer's resident fonts).
var errNeedRaster = errors.New("label: needs raster")

// dots converts millimetres to printer dots (25.4 mm per inch).
func dots(mm float64, dpi int) int {
	return int(math.Round(mm * float64(dpi) / 25.4))
}

// elemErr names the element an error belongs to.
func elemErr(i int, e *Element, err error) error {
	return fmt.Errorf("label: elements[%d] (%s): %w", i, e.Kind, err)
}
