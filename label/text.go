package label

import (
	"bytes"
	"fmt"
	"unicode/utf8"
)

// ellipsis marks text cut to fit its box.
const ellipsis = "…"

// minTextDots is the smallest font shrink-to-fit goes to: about 1 mm at
// 203 dpi, the smallest a thermal head prints legibly.
const minTextDots = 8

// textLayout is a text element laid out for one record at one dpi: the
// font height, the lines, the distance between baselines, and whether
// text was cut. Every output (ZPL, TSPL, ESC/POS, PNG) prints exactly these
// lines, measured with the Go fonts, so the preview shows what prints.
type textLayout struct {
	h, step int // font height, line step (dots)
	ascent  int
	w       int // box width (dots)
	lines   [][]byte
	cut     bool
}

// layoutText wraps (fit "wrap") or shrinks (fit "shrink") v into the
// element's box: max_width, or the rest of the label when there is none.
// Lines beyond max_lines are dropped and a line too wide is shortened;
// either way the last line kept ends in an ellipsis and cut is set.
func layoutText(e *Element, v []byte, x, labelW, dpi int, fs *FontSet) textLayout {
	return layoutTextInto(nil, e, v, x, labelW, dpi, fs)
}

// layoutTextInto is layoutText appending the lines to scratch, so the
// native ZPL path lays text out without allocating.
func layoutTextInto(scratch [][]byte, e *Element, v []byte, x, labelW, dpi int, fs *FontSet) textLayout {
	t := textLayout{h: max(dots(e.FontPt*25.4/72, dpi), 10), w: dots(e.MaxWidth, dpi)}
	if t.w <= 0 {
		t.w = max(labelW-x, 1)
	}
	faceMu.Lock()
	defer faceMu.Unlock()
	f := textFaces{fs, e.Bold, t.h}
	if e.Fit == "shrink" {
		widest := 0
		for line := range bytes.SplitSeq(v, []byte{'\n'}) {
			widest = max(widest, f.measure(line).Ceil())
		}
		for widest > t.w && f.px > minTextDots {
			f.px = max(minTextDots, min(f.px-1, f.px*t.w/widest))
			widest = 0
			for line := range bytes.SplitSeq(v, []byte{'\n'}) {
				widest = max(widest, f.measure(line).Ceil())
			}
		}
		t.h = f.px
		t.lines = scratch[:0]
		for line := range bytes.SplitSeq(v, []byte{'\n'}) {
			t.lines = append(t.lines, line)
		}
	} else if bytes.IndexByte(v, '\n') < 0 && f.measure(v).Ceil() <= t.w {
		t.lines = append(scratch[:0], v) // the common case: one line that fits
	} else {
		t.lines = wrapLines(v, f, t.w)
	}
	m := f.primary().Metrics()
	t.ascent, t.step = m.Ascent.Ceil(), m.Height.Ceil()
	if len(t.lines) > e.MaxLines {
		t.lines, t.cut = t.lines[:e.MaxLines], true
		last := t.lines[len(t.lines)-1]
		t.lines[len(t.lines)-1] = append(bytes.TrimRight(last[:len(last):len(last)], " "), ellipsis...)
	}
	for i, line := range t.lines {
		if f.measure(line).Ceil() <= t.w {
			continue
		}
		t.cut = true
		line = bytes.TrimSuffix(line, []byte(ellipsis))
		for len(line) > 0 {
			_, n := utf8.DecodeLastRune(line)
			line = line[:len(line)-n]
			cand := append(bytes.TrimRight(line[:len(line):len(line)], " "), ellipsis...)
			if f.measure(cand).Ceil() <= t.w {
				line = cand
				break
			}
		}
		if len(line) == 0 {
			line = []byte(ellipsis)
		}
		t.lines[i] = line
	}
	return t
}

// lineX is where line starts for the element's alignment.
func (t textLayout) lineX(e *Element, fs *FontSet, x int, line []byte) int {
	if e.Align == "left" || e.MaxWidth == 0 {
		return x
	}
	faceMu.Lock()
	lw := textFaces{fs, e.Bold, t.h}.measure(line).Ceil()
	faceMu.Unlock()
	if e.Align == "center" {
		return x + (t.w-lw)/2
	}
	return x + t.w - lw
}

// cutWarning describes text cut by layoutText, for the submitter.
func cutWarning(i int, e *Element, rec Record, t textLayout, dpi int) string {
	src := "text"
	for _, p := range e.tmpl.parts {
		if p.field != "" {
			src = fmt.Sprintf("field %q", p.field)
			if _, ok := rec[p.field]; ok {
				break
			}
		}
	}
	return fmt.Sprintf("elements[%d] (text): %s is cut to %d line(s) at %d dpi: %q", i, src, len(t.lines), dpi, bytes.Join(t.lines, []byte(" / ")))
}
