package label

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/font/sfnt"
)

func TestMissingGlyphIsAnError(t *testing.T) {
	l := nameLayout(t)
	for _, lang := range []Lang{LangZPL, LangTSPL, LangESCPOS, LangPNG} {
		_, err := Render(l, Record{"name": "Bruce 李小龙"}, Target{Lang: lang})
		if !errors.Is(err, ErrNoGlyph) || !strings.Contains(err.Error(), `'李' (U+674E) in field "name"`) {
			t.Errorf("%s: %v", lang, err)
		}
	}
	// Invisible format characters need no glyph: a zero-width joiner, a
	// variation selector, a BOM.
	if _, err := Render(l, Record{"name": "A\u200dB\ufe0fC\ufeff"}, Target{Lang: LangPNG}); err != nil {
		t.Errorf("invisible characters: %v", err)
	}
	// Latin, Greek and Cyrillic are in the Go fonts and stay native ZPL.
	z, err := Render(l, Record{"name": "Zoë Ωμέγα Жук"}, Target{Lang: LangZPL})
	if err != nil || !bytes.Contains(z, []byte("^FDZoë Ωμέγα Жук^FS")) {
		t.Errorf("resident text: %v\n%s", err, z)
	}
}

func TestLoadFontDir(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "gomono.ttf"), gomono.TTF, 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a font"), 0o644)
	fs, err := LoadFontDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := fs.Files(); len(got) != 1 || got[0] != "gomono.ttf" {
		t.Errorf("files = %q", got)
	}
	os.WriteFile(filepath.Join(dir, "broken.otf"), []byte("OTTO garbage"), 0o644)
	if _, err := LoadFontDir(dir); err == nil || !strings.Contains(err.Error(), "broken.otf") {
		t.Errorf("broken font: %v", err)
	}
}

// systemFontWith finds an installed font that has r, for a test that must
// not commit a large font file.
func systemFontWith(t *testing.T, r rune) string {
	t.Helper()
	var found string
	filepath.WalkDir("/usr/share/fonts", func(p string, d os.DirEntry, err error) error {
		if err != nil || found != "" || d.IsDir() {
			return nil
		}
		ext := strings.ToLower(filepath.Ext(p))
		if ext != ".ttf" && ext != ".otf" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		f, err := opentype.Parse(b)
		if err != nil {
			return nil
		}
		var buf sfnt.Buffer
		if g, err := f.GlyphIndex(&buf, r); err == nil && g != 0 {
			found = p
		}
		return nil
	})
	return found
}

// TestFontFallback draws Chinese with a font from a configured directory:
// the label is a raster in every printer language, and each character is
// its own glyph (not a replacement box).
func TestFontFallback(t *testing.T) {
	src := systemFontWith(t, '李')
	if src == "" {
		t.Skip("no installed font has '李' (apt-get install fonts-droid-fallback or fonts-noto-cjk)")
	}
	dir := t.TempDir()
	if err := os.Symlink(src, filepath.Join(dir, filepath.Base(src))); err != nil {
		t.Fatal(err)
	}
	fs, err := LoadFontDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	l := nameLayout(t)
	tg := Target{Lang: LangZPL, Fonts: fs}
	z, err := Render(l, Record{"name": "Bruce 李小龙"}, tg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(z, []byte("^GF")) || bytes.Contains(z, []byte("李")) {
		t.Errorf("ZPL of Chinese text is not a graphic:\n%.200s", z)
	}
	ts, err := Render(l, Record{"name": "李"}, Target{Lang: LangTSPL, Fonts: fs})
	if err != nil || !bytes.Contains(ts, []byte("BITMAP ")) {
		t.Errorf("TSPL: %v", err)
	}
	ink := func(s string) []byte {
		bm, err := RenderBitmapTarget(l, Record{"name": s}, Target{Fonts: fs})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.ContainsFunc(bm.Pix, func(r rune) bool { return r != 0 }) {
			t.Errorf("%q draws nothing", s)
		}
		return bm.Pix
	}
	if bytes.Equal(ink("李"), ink("龙")) {
		t.Error("two different characters draw the same (a replacement glyph?)")
	}
	// Latin text with the same FontSet stays native.
	z, _ = Render(l, Record{"name": "Bruce"}, tg)
	if !bytes.Contains(z, []byte("^FDBruce^FS")) {
		t.Errorf("Latin text is no longer native ZPL:\n%s", z)
	}
}
