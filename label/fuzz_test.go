package label

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// Fuzz targets: go test -run '^$' -fuzz FuzzCSV -fuzztime 60s ./label/
// (one target per run). Without -fuzz they run their seed corpus.

func addExampleSeeds(f *testing.F, dir, glob string) {
	files, _ := filepath.Glob(filepath.Join("..", "examples", dir, glob))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err == nil {
			f.Add(b)
		}
	}
}

// drain reads every record; the invariants hold for any input: no panic,
// errors are classified, field names are never empty.
func drain(t *testing.T, format Format, data []byte) {
	rr, err := NewRecordReader(format, bytes.NewReader(data), ReadOptions{MaxBytes: 1 << 20, MaxUnzipBytes: 8 << 20})
	if err != nil {
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("unclassified error: %v", err)
		}
		return
	}
	for n := 0; ; n++ {
		rec, err := rr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unclassified error: %v", err)
			}
			if !strings.Contains(err.Error(), "record") && !strings.Contains(err.Error(), "header") {
				t.Fatalf("error does not name the record: %v", err)
			}
			return
		}
		for k := range rec {
			if k == "" {
				t.Fatalf("record %d has an empty field name: %q", n+1, rec)
			}
		}
	}
}

func FuzzCSV(f *testing.F) {
	addExampleSeeds(f, "data", "*.csv")
	f.Add([]byte("\uFEFFa;b\n\"x;\"\"y\"\"\";\n"))
	f.Add([]byte("a,b\n1,2,3\n"))
	f.Add([]byte("a\tb\n\"multi\nline\"\t2\n"))
	f.Fuzz(func(t *testing.T, data []byte) { drain(t, FormatCSV, data) })
}

func FuzzJSON(f *testing.F) {
	addExampleSeeds(f, "data", "*.json")
	f.Add([]byte(`[{"a":{"b":[1,{"c":null}]}},{"a::b":"x"}]`))
	f.Add([]byte(`{"a":1} x`))
	f.Fuzz(func(t *testing.T, data []byte) { drain(t, FormatJSON, data) })
}

func FuzzXML(f *testing.F) {
	addExampleSeeds(f, "data", "*.xml")
	f.Add([]byte(`<r><a x="1"><b>2</b><b>3</b></a></r>`))
	f.Add([]byte(`<r><a>t<x/></a></r>`))
	f.Fuzz(func(t *testing.T, data []byte) { drain(t, FormatXML, data) })
}

// FuzzXLSX feeds raw bytes to the XLSX reader. Run it with
// -fuzzminimizetime 20x: almost every mutation finds new coverage in
// excelize, and minimising each for the default 60 s looks like a stall.
func FuzzXLSX(f *testing.F) {
	f.Add(xlsxBytes(f, "Sheet1", [][]any{{"a", "b"}, {"1", "x"}}))
	f.Add([]byte("PK\x03\x04"))
	f.Fuzz(func(t *testing.T, data []byte) { drain(t, FormatXLSX, data) })
}

// FuzzXLSXRoundTrip writes arbitrary cell text with excelize and reads it
// back: every value must come back unchanged.
func FuzzXLSXRoundTrip(f *testing.F) {
	for _, r := range nasty {
		f.Add(r["name"], r["note"])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if !utf8.ValidString(a) || !utf8.ValidString(b) || len(a) > 32767 || len(b) > 32767 {
			return // a cell holds at most 32767 characters of text
		}
		for _, s := range []string{a, b} {
			// XML 1.0 cannot carry most control characters; excelize
			// escapes them (and reads literal text "_xHHHH_") as
			// _xHHHH_, which is its business, not ours.
			if strings.Contains(s, "_x") {
				return
			}
			for _, r := range s {
				if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0xFFFE || r == 0xFFFF {
					return
				}
			}
		}
		got := readAll(t, FormatXLSX, xlsxBytes(t, "Sheet1", [][]any{{"a", "b"}, {a, b}}), ReadOptions{})
		if a == "" && b == "" {
			if len(got) != 0 {
				t.Fatalf("blank row read as %q", got)
			}
			return
		}
		if len(got) != 1 || got[0]["a"] != a || got[0]["b"] != b {
			t.Fatalf("wrote %q %q, read %q", a, b, got)
		}
	})
}

// FuzzParseLayout: any accepted layout renders (or fails cleanly) in every
// language, and its ZPL is exactly one label.
func FuzzParseLayout(f *testing.F) {
	addExampleSeeds(f, "layouts", "*.json")
	f.Add([]byte(injectLayout))
	f.Add([]byte(okHead + `"zpl":"^XA^FO1,1^FD{a|b}^FS^XZ"}`))
	f.Add([]byte(okHead + `"orientation":90,"elements":[{"type":"line","x":1,"y":1,"x2":1,"y2":9}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ParseLayout(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidLayout) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if l.WidthMM*l.HeightMM > 200*200 {
			return // keep raster runs cheap; big labels are legal
		}
		rec := Record{}
		for _, k := range l.Fields() {
			rec[k] = "12345678901"
		}
		for _, lang := range []Lang{LangZPL, LangTSPL, LangESCPOS, LangPNG} {
			out, err := Render(l, rec, Target{Lang: lang})
			if err != nil {
				continue
			}
			if lang == LangZPL && (bytes.Count(out, []byte("^XA")) != 1 || bytes.Count(out, []byte("^XZ")) != 1) {
				t.Fatalf("zpl is not one label:\n%s", out)
			}
		}
	})
}

// FuzzFieldValue: whatever a field holds, the ZPL stays one label made of
// the layout's commands, and each ^FD decodes back to the value.
func FuzzFieldValue(f *testing.F) {
	for _, v := range hostile {
		f.Add(v)
	}
	f.Add("plain")
	f.Add("ü_^~\\")
	l, err := ParseLayout([]byte(injectLayout))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if !utf8.ValidString(v) || len(v) > 500 {
			return
		}
		out, err := Render(l, Record{"v": v}, Target{Lang: LangZPL})
		if err != nil {
			// Refusing a value is right when a barcode cannot carry it or no font has one of
			// its characters; printing something else is what must never happen.
			if errors.Is(err, ErrBarcodeData) || errors.Is(err, ErrNoGlyph) {
				return
			}
			t.Fatal(err)
		}
		cmds, fds := zplCommands(t, out)
		if cmds[0] != "^XA" || cmds[len(cmds)-1] != "^XZ" || strings.Count(strings.Join(cmds, ""), "^XA") != 1 {
			t.Fatalf("not one label: %q", out)
		}
		if strings.Join(fds, "\x00") != strings.Join(zplWant(v), "\x00") {
			t.Fatalf("field data %q for %q", fds, v)
		}
		tspl, err := Render(l, Record{"v": v}, Target{Lang: LangTSPL})
		if errors.Is(err, ErrBarcodeData) {
			// TSPL draws this QR as a bitmap and checks that it fits the label; native ZPL
			// leaves the symbol to the printer and does not. Refusing is right.
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(tspl, []byte("BITMAP ")) {
			for _, line := range strings.Split(string(tspl), "\r\n") {
				for _, c := range []byte(line) {
					if c < 0x20 {
						t.Fatalf("control byte in TSPL line %q", line)
					}
				}
			}
		}
	})
}
