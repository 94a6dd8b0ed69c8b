package label

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"unicode"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/font/sfnt"
	"golang.org/x/image/math/fixed"
)

// The raster path draws with the Go fonts (golang.org/x/image/font/gofont),
// so a preview looks the same on every machine; a FontSet adds fonts for
// the characters they lack.
var goFonts = sync.OnceValue(func() [2]*opentype.Font {
	r, err := opentype.Parse(goregular.TTF)
	if err != nil {
		panic(err)
	}
	b, err := opentype.Parse(gobold.TTF)
	if err != nil {
		panic(err)
	}
	return [2]*opentype.Font{r, b}
})

// FontSet is the chain of fonts text is drawn with: the Go fonts first,
// then the fonts of a directory in file-name order. Each character is drawn
// with the first font that has it; a character no font has is an error
// (ErrNoGlyph), never a '?' or an empty box on a label. Safe for
// concurrent use.
type FontSet struct {
	extra []*opentype.Font
	files []string
	cover sync.Map // rune → int: index into the chain, -1 for none
}

// ErrNoGlyph is wrapped when no font of the set has a character of a text.
var ErrNoGlyph = errors.New("no font has the character")

// defaultFonts is the Go fonts alone, used when a Target names no FontSet.
var defaultFonts = &FontSet{}

// MaxFontFileBytes bounds one font file (Noto Sans CJK is about 20 MB).
const MaxFontFileBytes = 64 << 20

// LoadFontDir reads every .ttf, .otf, .ttc and .otc file of dir (Debian
// installs them under /usr/share/fonts; fonts-noto-cjk covers Chinese,
// Japanese and Korean). A file that does not parse is an error naming it.
func LoadFontDir(dir string) (*FontSet, error) {
	fs := &FontSet{}
	if dir == "" {
		return fs, nil
	}
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".ttf", ".otf", ".ttc", ".otc":
			if !d.IsDir() {
				paths = append(paths, p)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("label: fonts: %w", err)
	}
	slices.Sort(paths)
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("label: fonts: %w", err)
		}
		if st.Size() > MaxFontFileBytes {
			return nil, fmt.Errorf("label: fonts: %s is %d bytes, more than %d", p, st.Size(), MaxFontFileBytes)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("label: fonts: %w", err)
		}
		c, err := opentype.ParseCollection(b)
		if err != nil {
			return nil, fmt.Errorf("label: fonts: %s: %v", p, err)
		}
		for i := range c.NumFonts() {
			f, err := c.Font(i)
			if err != nil {
				return nil, fmt.Errorf("label: fonts: %s font %d: %v", p, i, err)
			}
			fs.extra = append(fs.extra, f)
			fs.files = append(fs.files, filepath.Base(p))
		}
	}
	return fs, nil
}

// Files lists the font files loaded, one entry per font (a collection
// appears once per font it holds).
func (fs *FontSet) Files() []string { return slices.Clone(fs.files) }

func (fs *FontSet) orDefault() *FontSet {
	if fs == nil {
		return defaultFonts
	}
	return fs
}

// invisible characters are not drawn and need no glyph: format controls
// (zero-width joiner, bidi marks, BOM) and variation selectors.
func invisible(r rune) bool {
	return unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Variation_Selector, r)
}

// index is the chain position of the first font with a glyph for r: 0 is
// the Go font, 1.. the extra fonts; -1 when none has it.
func (fs *FontSet) index(r rune) int {
	if r < 0x80 {
		return 0
	}
	if v, ok := fs.cover.Load(r); ok {
		return v.(int)
	}
	var buf sfnt.Buffer
	idx := -1
	if g, err := goFonts()[0].GlyphIndex(&buf, r); err == nil && g != 0 {
		idx = 0
	} else {
		for i, f := range fs.extra {
			if g, err := f.GlyphIndex(&buf, r); err == nil && g != 0 {
				idx = i + 1
				break
			}
		}
	}
	fs.cover.Store(r, idx)
	return idx
}

// font returns the font of chain position i.
func (fs *FontSet) font(i int, bold bool) *opentype.Font {
	if i <= 0 {
		if bold {
			return goFonts()[1]
		}
		return goFonts()[0]
	}
	return fs.extra[i-1]
}

// resident reports whether every character of v is in the Go fonts,
// which cover what printers' resident fonts do (Latin, Greek, Cyrillic);
// other text is drawn by the raster path, so the printer never shows a
// character it has no glyph for.
func (fs *FontSet) resident(v []byte) bool {
	for _, r := range string(v) {
		if r >= 0x80 && !invisible(r) && fs.index(r) != 0 {
			return false
		}
	}
	return true
}

// checkGlyphs fails for the first character of v that no font has, naming
// it and the field of the element's template it came from.
func (fs *FontSet) checkGlyphs(e *Element, rec Record, v []byte) error {
	for _, r := range string(v) {
		if r < 0x80 || invisible(r) || fs.index(r) >= 0 {
			continue
		}
		src := "the layout's text"
		for _, p := range e.tmpl.parts {
			if p.field != "" && strings.ContainsRune(rec[p.field], r) {
				src = fmt.Sprintf("field %q", p.field)
				break
			}
		}
		return fmt.Errorf("%w: %q (U+%04X) in %s (add a font that has it to the station's and the cloud's font directory)", ErrNoGlyph, r, r, src)
	}
	return nil
}

type faceKey struct {
	f  *opentype.Font
	px int
}

// faceCache holds one face per font and size; opentype faces are not safe
// for concurrent use, so drawing holds faceMu.
var (
	faceMu    sync.Mutex
	faceCache = map[faceKey]font.Face{}
)

func faceFor(f *opentype.Font, px int) font.Face {
	k := faceKey{f, px}
	if face, ok := faceCache[k]; ok {
		return face
	}
	face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: float64(px), DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		panic(err) // only fails for a nil font or bad options, both constant here
	}
	faceCache[k] = face
	return face
}

// textFaces draws text of one size and weight through the chain; the
// caller holds faceMu.
type textFaces struct {
	fs   *FontSet
	bold bool
	px   int
}

func (t textFaces) face(r rune) font.Face {
	return faceFor(t.fs.font(max(t.fs.index(r), 0), t.bold), t.px)
}

func (t textFaces) primary() font.Face { return faceFor(t.fs.font(0, t.bold), t.px) }

// faceMetrics caches a face's advances and kerning: measuring text for
// line breaks runs for every text of every label, also on the native ZPL
// path, and opentype lookups are slow. Guarded by faceMu.
type faceMetrics struct {
	face  font.Face
	ascii [128]fixed.Int26_6
	have  [128]bool
	other map[rune]fixed.Int26_6
	kern  map[[2]rune]fixed.Int26_6
	// asciiKern[a<<7|b] is the kerning of two ASCII runes; kernSet marks
	// the computed ones.
	asciiKern [128 * 128]fixed.Int26_6
	kernSet   [128 * 128 / 64]uint64
}

var metricsCache = map[faceKey]*faceMetrics{}

func metricsFor(f *opentype.Font, px int) *faceMetrics {
	k := faceKey{f, px}
	if m, ok := metricsCache[k]; ok {
		return m
	}
	m := &faceMetrics{face: faceFor(f, px), other: map[rune]fixed.Int26_6{}, kern: map[[2]rune]fixed.Int26_6{}}
	metricsCache[k] = m
	return m
}

func (m *faceMetrics) advance(r rune) fixed.Int26_6 {
	if r < 128 {
		if !m.have[r] {
			m.ascii[r], _ = m.face.GlyphAdvance(r)
			m.have[r] = true
		}
		return m.ascii[r]
	}
	a, ok := m.other[r]
	if !ok {
		a, _ = m.face.GlyphAdvance(r)
		m.other[r] = a
	}
	return a
}

func (m *faceMetrics) kerning(a, b rune) fixed.Int26_6 {
	if a < 128 && b < 128 {
		i := a<<7 | b
		if m.kernSet[i>>6]&(1<<(i&63)) == 0 {
			m.asciiKern[i] = m.face.Kern(a, b)
			m.kernSet[i>>6] |= 1 << (i & 63)
		}
		return m.asciiKern[i]
	}
	k, ok := m.kern[[2]rune{a, b}]
	if !ok {
		k = m.face.Kern(a, b)
		m.kern[[2]rune{a, b}] = k
	}
	return k
}

// measure is the advance width of s, kerning within one font; the same
// advances and kerning drawLine uses.
func (t textFaces) measure(s []byte) fixed.Int26_6 {
	var m textMeasure
	t.extend(&m, s)
	return m.w
}

// textMeasure is a width measured so far and the rune it ended with, so a
// line can grow word by word without measuring it again.
type textMeasure struct {
	w     fixed.Int26_6
	prev  rune
	prevM *faceMetrics
}

func (t textFaces) extend(tm *textMeasure, s []byte) {
	base := metricsFor(t.fs.font(0, t.bold), t.px)
	for _, r := range string(s) {
		m := base
		if r >= 0x80 {
			if invisible(r) {
				continue
			}
			if i := t.fs.index(r); i > 0 {
				m = metricsFor(t.fs.font(i, t.bold), t.px)
			}
		}
		if tm.prevM == m {
			tm.w += m.kerning(tm.prev, r)
		}
		tm.w += m.advance(r)
		tm.prev, tm.prevM = r, m
	}
}
