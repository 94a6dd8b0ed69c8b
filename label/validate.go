package label

import (
	"errors"
	"fmt"
	"image"

	"labelstation/label/bitmap"
)

// AllTargets is every printer language at every resolution a station
// supports: what a job must be printable in when the cloud does not know
// which station will release it.
var AllTargets = func() []Target {
	var out []Target
	for _, lang := range []Lang{LangZPL, LangTSPL, LangESCPOS} {
		for _, dpi := range []int{203, 300, 600} {
			out = append(out, Target{Lang: lang, DPI: dpi})
		}
	}
	return out
}()

// Validate checks that one record of l renders for every target, without
// drawing: native commands are generated (they are cheap), and the raster
// path makes every check of drawing once per resolution. That covers
// escpos, png and the fallbacks of zpl and tspl, and it also holds native
// 2-D codes to the label's edges, which a printer would clip silently. The
// error names the language and resolution that failed. Warnings say where
// text will be cut to fit its box (the same in every output).
func Validate(l *Layout, rec Record, targets []Target) (warnings []string, err error) {
	warn := func(s string) { warnings = append(warnings, s) }
	var scratch [4096]byte
	checked := map[int]bool{}
	codes := map[codeKey]image.Image{}
	for _, t := range targets {
		t, err := t.normalize()
		if err != nil {
			return warnings, err
		}
		native := !t.Raster && l.rawZPL == nil && l.Orientation != 90 && l.Orientation != 270
		fs := t.Fonts.orDefault()
		if native {
			switch t.Lang {
			case LangZPL:
				_, err = appendZPL(scratch[:0], l, rec, t.DPI, fs)
			case LangTSPL:
				_, err = appendTSPLNative(scratch[:0], l, rec, t.DPI, fs)
			}
			if err != nil && !errors.Is(err, errNeedRaster) {
				return warnings, fmt.Errorf("%s at %d dpi: %w", t.Lang, t.DPI, err)
			}
		}
		if checked[t.DPI] {
			continue
		}
		checked[t.DPI] = true
		if l.rawZPL != nil {
			if _, err := appendRawZPL(scratch[:0], l, rec); err != nil {
				return warnings, err
			}
			continue
		}
		w, h, err := checkRasterSize(l, t.DPI)
		if err != nil {
			return warnings, fmt.Errorf("%s at %d dpi: %w", t.Lang, t.DPI, err)
		}
		if err := drawLayoutWarn(&bitmap.Bitmap{W: w, H: h}, l, rec, t.DPI, fs, true, warn, codes); err != nil {
			return warnings, fmt.Errorf("%s at %d dpi: %w", t.Lang, t.DPI, err)
		}
	}
	return warnings, nil
}
