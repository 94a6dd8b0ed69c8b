package label

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

var fuzzCharsets = []string{"", "windows-1252", "iso-8859-1", "iso-8859-15", "utf-16", "shift_jis", "utf-8"}

// FuzzCharset: whatever the bytes and the declared charset, every value a
// reader returns is valid UTF-8, and NormalizeUTF8 gives valid UTF-8
// without a byte order mark, or a classified error.
func FuzzCharset(f *testing.F) {
	f.Add([]byte("name\nJos\xe9\n"), uint8(1))
	f.Add([]byte("\xef\xbb\xbfname\n\x93x\x94\n"), uint8(0))
	f.Add([]byte("\xff\xfen\x00a\x00\n\x00x\x00"), uint8(0))
	f.Add([]byte("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a><b>\xe9</b></a>"), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, cs uint8) {
		charset := fuzzCharsets[int(cs)%len(fuzzCharsets)]
		for _, format := range []Format{FormatCSV, FormatJSON, FormatXML} {
			rr, err := NewRecordReader(format, bytes.NewReader(data), ReadOptions{Charset: charset, MaxBytes: 1 << 20})
			if err != nil {
				continue
			}
			for {
				rec, err := rr.Next()
				if err != nil {
					if err != io.EOF && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrCharset) {
						t.Fatalf("%s: unclassified error: %v", format, err)
					}
					break
				}
				for k, v := range rec {
					if !utf8.ValidString(k) || !utf8.ValidString(v) {
						t.Fatalf("%s/%s: invalid UTF-8 in %q=%q", format, charset, k, v)
					}
				}
			}
			out, err := NormalizeUTF8(format, data, charset)
			if err == nil && (!utf8.Valid(out) || bytes.HasPrefix(out, utf8BOM)) {
				t.Fatalf("%s/%s: NormalizeUTF8 gave %q", format, charset, out)
			}
		}
	})
}

// FuzzZPLDocument: an accepted document splits into labels that join to
// it byte for byte, each one ^XA…^XZ block, with no refused command.
func FuzzZPLDocument(f *testing.F) {
	f.Add([]byte("^XA^FDa^FS^XZ\n^XA^XZ"))
	f.Add([]byte("~DGR:A.GRF,2,1,FF\n^XA^XGR:A.GRF^FS^XZ"))
	f.Add([]byte("^XA^JUS^XZ"))
	f.Add([]byte("^XA^FDcut"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		labels, err := SplitZPLDocument(doc)
		if err != nil {
			if !errors.Is(err, ErrDocument) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if !bytes.Equal(bytes.Join(labels, nil), doc) {
			t.Fatalf("labels %q do not join to %q", labels, doc)
		}
		for _, l := range labels {
			up := asciiUpper(string(l))
			if strings.Count(up, "^XA") != 1 || !strings.HasSuffix(strings.TrimRight(up, " \t\r\n"), "^XZ") {
				t.Fatalf("label %q is not one ^XA…^XZ block", l)
			}
			for _, c := range zplDenied {
				if strings.Contains(up, c) {
					t.Fatalf("label %q has %s", l, c)
				}
			}
		}
	})
}

// FuzzTSPLDocument: an accepted document splits into labels that join to
// it byte for byte, each ending with PRINT.
func FuzzTSPLDocument(f *testing.F) {
	f.Add([]byte("SIZE 4 mm,4 mm\r\nCLS\r\nTEXT 1,1,\"0\",0,1,1,\"x\"\r\nPRINT 1\r\n"))
	f.Add([]byte("CLS\r\nBITMAP 0,0,1,2,0,\x00\x01\r\nPRINT 1,1\r\n"))
	f.Add([]byte("~!T\r\n"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		labels, err := SplitTSPLDocument(doc)
		if err != nil {
			if !errors.Is(err, ErrDocument) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if !bytes.Equal(bytes.Join(labels, nil), doc) {
			t.Fatalf("labels %q do not join to %q", labels, doc)
		}
	})
}

// FuzzPNGDocument: any bytes as a PNG document print or are refused.
func FuzzPNGDocument(f *testing.F) {
	f.Add(checkerPNG(&testing.T{}, 8, 8))
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		out, err := RenderDocument(context.Background(), DocPNG, doc, DocOptions{WidthMM: 20, HeightMM: 10}, Target{Lang: LangESCPOS})
		if err != nil {
			if !errors.Is(err, ErrDocument) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if len(out) != 1 {
			t.Fatalf("%d labels from one png", len(out))
		}
	})
}
