package label

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
)

// encodeCharmap turns UTF-8 test text into a legacy single-byte charset.
func encodeCharmap(t *testing.T, cm *charmap.Charmap, s string) []byte {
	t.Helper()
	b, err := cm.NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatalf("encoding %q: %v", s, err)
	}
	return b
}

func nameLayout(t *testing.T) *Layout {
	t.Helper()
	l, err := ParseLayout([]byte(`{"version":1,"id":"n","width_mm":60,"height_mm":20,
		"elements":[{"type":"text","x":1,"y":1,"text":"{name}","font_pt":12}]}`))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// CSV in the shapes spreadsheets and ERPs export: ';'-separated, CRLF,
// quoted delimiter and an embedded newline, in Latin-1 and Windows-1252.
func TestCharsetDeclared(t *testing.T) {
	text := "id;name;note\r\n1;José Müller;\"a;b, c\"\r\n2;\"Ærøskøbing\r\nHavn\";ß\r\n"
	want := []Record{
		{"id": "1", "name": "José Müller", "note": "a;b, c"},
		{"id": "2", "name": "Ærøskøbing\nHavn", "note": "ß"},
	}
	for _, cs := range []struct {
		name string
		cm   *charmap.Charmap
	}{{"iso-8859-1", charmap.ISO8859_1}, {"ISO-8859-15", charmap.ISO8859_15}, {"windows-1252", charmap.Windows1252}, {"latin1", charmap.ISO8859_1}} {
		data := encodeCharmap(t, cs.cm, text)
		got := readAll(t, FormatCSV, data, ReadOptions{Charset: cs.name})
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %q, want %q", cs.name, got, want)
		}
	}
	// Windows-1252 smart quotes and the euro sign (0x93, 0x94, 0x80).
	data := []byte("name\n\x93Quoted\x94 \x80 5\n")
	got := readAll(t, FormatCSV, data, ReadOptions{Charset: "windows-1252"})
	if got[0]["name"] != "“Quoted” € 5" {
		t.Errorf("windows-1252: got %q", got[0]["name"])
	}
}

// TestCharsetNoMojibake follows Latin-1 data to the printer bytes and to
// the raster: the ZPL carries the UTF-8 spelling under ^CI28, and the
// bitmap equals the one drawn from the same text given as UTF-8.
func TestCharsetNoMojibake(t *testing.T) {
	l := nameLayout(t)
	latin := encodeCharmap(t, charmap.ISO8859_1, "name\nJosé Ñúñez\n")
	rec := readAll(t, FormatCSV, latin, ReadOptions{Charset: "iso-8859-1"})[0]
	z, err := Render(l, rec, Target{Lang: LangZPL})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(z, []byte("^CI28")) || !bytes.Contains(z, []byte("^FDJos\xc3\xa9 \xc3\x91\xc3\xba\xc3\xb1ez^FS")) {
		t.Errorf("ZPL does not carry the UTF-8 text:\n%q", z)
	}
	if bytes.Contains(z, []byte("\xc3\x83")) || !utf8Valid(z) {
		t.Errorf("ZPL has mojibake or invalid UTF-8:\n%q", z)
	}
	fromLatin, err := RenderBitmap(l, rec, 203)
	if err != nil {
		t.Fatal(err)
	}
	fromUTF8, _ := RenderBitmap(l, Record{"name": "José Ñúñez"}, 203)
	mojibake, _ := RenderBitmap(l, Record{"name": "JosÃ© Ã‘ÃºÃ±ez"}, 203)
	if !bytes.Equal(fromLatin.Pix, fromUTF8.Pix) {
		t.Error("the raster of the Latin-1 record differs from the UTF-8 one")
	}
	if bytes.Equal(fromLatin.Pix, mojibake.Pix) {
		t.Error("the raster test cannot tell mojibake apart")
	}
	// Invalid UTF-8 that reaches the renderer anyway is refused, not printed.
	if _, err := Render(l, Record{"name": "Jos\xe9"}, Target{Lang: LangZPL}); err == nil || !strings.Contains(err.Error(), `field "name" is not valid UTF-8`) {
		t.Errorf("render of invalid UTF-8: %v", err)
	}
}

func utf8Valid(b []byte) bool { return strings.ToValidUTF8(string(b), "\uFFFD") == string(b) }

// Undeclared non-UTF-8 data is refused with the record, the column and the
// byte offset of the first bad byte, in every text format.
func TestCharsetUndeclaredRefused(t *testing.T) {
	csvData := "\xef\xbb\xbfid,name\r\n1,Ann\r\n2,\"Jos\xe9, Sr\"\r\n"
	off := strings.Index(csvData, "\xe9")
	err := readErr(FormatCSV, csvData, ReadOptions{})
	want := fmt.Sprintf(`csv record 2, column 2 "name" (line 3): invalid UTF-8: byte 0xE9 at offset %d of the data`, off)
	if !errors.Is(err, ErrMalformed) || err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("csv: %v\nwant %s", err, want)
	}

	jsonData := `[{"id":1,"to":{"name":"Ann"}},` + "\n" + `{"id":2,"to":{"name":"Jos` + "\xe9" + `"}}]`
	err = readErr(FormatJSON, jsonData, ReadOptions{})
	want = fmt.Sprintf(`json record 2, field "to::name": invalid UTF-8: byte 0xE9 at offset %d`, strings.Index(jsonData, "\xe9"))
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("json: %v\nwant %s", err, want)
	}

	xmlData := "<orders><order id=\"1\"><to><name>Ann</name></to></order><order id=\"2\"><to><name>Jos\xe9</name></to></order></orders>"
	err = readErr(FormatXML, xmlData, ReadOptions{})
	for _, w := range []string{"xml record 2", `field "to::name"`, fmt.Sprintf("byte 0xE9 at offset %d", strings.Index(xmlData, "\xe9"))} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("xml: %v\nwant %s", err, w)
		}
	}

	// A multi-byte character split across reads is valid, however it is cut.
	long := "name\n" + strings.Repeat("é李🏷", 20000) + "\n"
	rr, err := NewRecordReader(FormatCSV, iotest.OneByteReader(strings.NewReader(long)), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rec, err := rr.Next(); err != nil || rec["name"] != strings.Repeat("é李🏷", 20000) {
		t.Errorf("long UTF-8 field read one byte at a time: %v", err)
	}
	// A very long Latin-1 field with the bad byte far from the start.
	long = "name\n" + strings.Repeat("x", 200000) + "\xfc\n"
	err = readErr(FormatCSV, long, ReadOptions{})
	if err == nil || !strings.Contains(err.Error(), "byte 0xFC at offset 200005 ") {
		t.Errorf("long field: %v", err)
	}
}

func TestCharsetXML(t *testing.T) {
	want := []Record{{"id": "7", "ship::to::name": "Zoë Ærø", "ship::to::city": "Köln"}}
	body := "<orders><order id=\"7\"><ship><to><name>Zoë Ærø</name><city>Köln</city></to></ship></order></orders>"
	// The declaration is honoured.
	decl := append([]byte(`<?xml version="1.0" encoding="ISO-8859-1"?>`+"\n"), encodeCharmap(t, charmap.ISO8859_1, body)...)
	if got := readAll(t, FormatXML, decl, ReadOptions{}); !reflect.DeepEqual(got, want) {
		t.Errorf("declared in the document: got %q", got)
	}
	// A charset given with the data wins over the declaration (RFC 7303 §3.2).
	wrong := append([]byte(`<?xml version="1.0" encoding="UTF-8"?>`), encodeCharmap(t, charmap.Windows1252, body)...)
	if got := readAll(t, FormatXML, wrong, ReadOptions{Charset: "windows-1252"}); !reflect.DeepEqual(got, want) {
		t.Errorf("declared with the data: got %q", got)
	}
	// UTF-16 with a byte order mark.
	u16, _ := unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewEncoder().Bytes([]byte(`<?xml version="1.0" encoding="UTF-16"?>` + body))
	if got := readAll(t, FormatXML, u16, ReadOptions{}); !reflect.DeepEqual(got, want) {
		t.Errorf("utf-16: got %q", got)
	}
	// NormalizeUTF8 rewrites the declaration, so the UTF-8 copy reads the same.
	norm, err := NormalizeUTF8(FormatXML, decl, "")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(norm, []byte(`<?xml version="1.0" encoding="UTF-8"?>`)) {
		t.Errorf("declaration not rewritten: %q", norm[:50])
	}
	if got := readAll(t, FormatXML, norm, ReadOptions{}); !reflect.DeepEqual(got, want) {
		t.Errorf("normalized: got %q", got)
	}
}

func TestNormalizeUTF8AndParseDataFormat(t *testing.T) {
	f, cs, err := ParseDataFormat("text/csv; charset=Windows-1252")
	if f != FormatCSV || cs != "Windows-1252" || err != nil {
		t.Errorf("ParseDataFormat = %q %q %v", f, cs, err)
	}
	if _, _, err := ParseDataFormat("text/csv; charset=klingon"); !errors.Is(err, ErrCharset) {
		t.Errorf("unknown charset: %v", err)
	}
	out, err := NormalizeUTF8(FormatCSV, []byte("name\n\x93hi\x94\n"), "windows-1252")
	if err != nil || string(out) != "name\n“hi”\n" {
		t.Errorf("NormalizeUTF8 = %q, %v", out, err)
	}
	out, err = NormalizeUTF8(FormatCSV, []byte("\xef\xbb\xbfname\nA\n"), "")
	if err != nil || string(out) != "name\nA\n" {
		t.Errorf("NormalizeUTF8 with BOM = %q, %v", out, err)
	}
	if _, err := NormalizeUTF8(FormatJSON, []byte("{\"a\":\"\xff\"}"), ""); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "offset 6") {
		t.Errorf("NormalizeUTF8 of invalid UTF-8: %v", err)
	}
}
