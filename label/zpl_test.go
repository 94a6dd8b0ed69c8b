package label

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func readAll(t testing.TB, f Format, data []byte, opt ReadOptions) []Record {
	t.Helper()
	rr, err := NewRecordReader(f, bytes.NewReader(data), opt)
	if err != nil {
		t.Fatal(err)
	}
	var out []Record
	for {
		rec, err := rr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
}

func exampleData(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "examples", "data", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var fdRE = regexp.MustCompile(`\^FD(.*?)\^FS`)

// TestShippingCSVToZPL is the path the station takes: CSV records into one
// ^XA..^XZ block each, every value readable inside a ^FD..^FS.
func TestShippingCSVToZPL(t *testing.T) {
	l := loadExample(t, "shipping.json")
	recs := readAll(t, FormatCSV, exampleData(t, "shipping.csv"), ReadOptions{})
	if len(recs) != 3 {
		t.Fatalf("got %d records, want 3", len(recs))
	}
	for i, rec := range recs {
		out, err := Render(l, rec, Target{Lang: LangZPL, DPI: 203})
		if err != nil {
			t.Fatal(err)
		}
		s := string(out)
		if strings.Count(s, "^XA") != 1 || strings.Count(s, "^XZ") != 1 || !strings.HasPrefix(s, "^XA") || !strings.HasSuffix(s, "^XZ\n") {
			t.Errorf("record %d: not exactly one ^XA..^XZ block:\n%s", i+1, s)
		}
		var fds []string
		for _, m := range fdRE.FindAllStringSubmatch(s, -1) {
			fds = append(fds, m[1])
		}
		for _, k := range []string{"name", "street", "zip", "city", "tracking"} {
			found := false
			for _, fd := range fds {
				found = found || strings.Contains(fd, rec[k])
			}
			if !found {
				t.Errorf("record %d: %s %q not in any ^FD: %q", i+1, k, rec[k], fds)
			}
		}
		if strings.Contains(s, "^FH") {
			t.Errorf("record %d: ^FH used although no value needs escaping", i+1)
		}
	}
}

func TestZPLDPI(t *testing.T) {
	l := loadExample(t, "shipping.json")
	rec := readAll(t, FormatCSV, exampleData(t, "shipping.csv"), ReadOptions{})[0]
	for dpi, pw := range map[int]string{203: "^PW812", 300: "^PW1200", 600: "^PW2400"} {
		out, err := Render(l, rec, Target{Lang: LangZPL, DPI: dpi})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(out, []byte(pw)) {
			t.Errorf("dpi %d: want %s in\n%s", dpi, pw, out)
		}
	}
	if _, err := Render(l, rec, Target{Lang: LangZPL, DPI: 50}); err == nil {
		t.Error("dpi 50 accepted")
	}
	if _, err := Render(l, rec, Target{Lang: "pdf"}); err == nil {
		t.Error("language pdf accepted")
	}
}

func TestRenderMissingField(t *testing.T) {
	l := loadExample(t, "shipping.json")
	_, err := Render(l, Record{"name": "x"}, Target{Lang: LangZPL})
	if !errors.Is(err, ErrMissingField) || !strings.Contains(err.Error(), "elements[") {
		t.Fatalf("err = %v, want ErrMissingField naming the element", err)
	}
}

func TestRenderBadBarcodeValue(t *testing.T) {
	l := loadExample(t, "product.json")
	rec := Record{"title": "t", "sku": "A-1", "ean": "4006381333932", "upc": "036000291452"}
	for _, lang := range []Lang{LangZPL, LangTSPL, LangPNG} {
		_, err := Render(l, rec, Target{Lang: lang})
		if !errors.Is(err, ErrBarcodeData) || !strings.Contains(err.Error(), "check digit") {
			t.Errorf("%s: err = %v, want a check digit error", lang, err)
		}
	}
}

func TestRawZPLTemplate(t *testing.T) {
	doc := `{"version":1,"id":"zd","width_mm":50,"height_mm":25,
	  "zpl":"^XA^FO20,20^A0N,30,30^FDName: {name}^FS^FO20,60^FH\\^FD{note|none}^FS^XZ"}`
	l, err := ParseLayout([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	out, err := Render(l, Record{"name": "Ann^XZ~JR_"}, Target{Lang: LangZPL})
	if err != nil {
		t.Fatal(err)
	}
	want := "^XA^FO20,20^A0N,30,30^FH^FDName: Ann_5EXZ_7EJR_5F^FS^FO20,60^FH\\^FDnone^FS^XZ\n"
	if string(out) != want {
		t.Errorf("got  %q\nwant %q", out, want)
	}
	if _, err := Render(l, Record{}, Target{Lang: LangZPL}); !errors.Is(err, ErrMissingField) {
		t.Errorf("missing field: %v", err)
	}
	// Other languages draw the template with zebrash and send the bitmap.
	bm, err := RenderBitmap(l, Record{"name": "Ann"}, 203)
	if err != nil {
		t.Fatal(err)
	}
	ink := 0
	for y := 20; y < 50; y++ {
		for x := 20; x < 200; x++ {
			if bm.Black(x, y) {
				ink++
			}
		}
	}
	if bm.W != 400 || bm.H != 200 || ink < 100 {
		t.Errorf("raw template bitmap %dx%d with %d ink dots where the text is", bm.W, bm.H, ink)
	}
	tspl, err := Render(l, Record{"name": "Ann"}, Target{Lang: LangTSPL})
	if err != nil || !bytes.Contains(tspl, []byte("BITMAP 0,0,50,200,0,")) {
		t.Errorf("raw zpl to tspl: %v %q", err, tspl[:min(80, len(tspl))])
	}
}

func TestParseLangAndDefaults(t *testing.T) {
	for in, want := range map[string]Lang{"zpl": LangZPL, "ZPL": LangZPL, " tspl ": LangTSPL, "EscPos": LangESCPOS, "png": LangPNG} {
		if got, err := ParseLang(in); err != nil || got != want {
			t.Errorf("ParseLang(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseLang("epl"); err == nil {
		t.Error("epl accepted")
	}
	l := loadExample(t, "badge-test.json")
	rec := readAll(t, FormatJSON, exampleData(t, "badge-test.json"), ReadOptions{})[0]
	def, err := Render(l, rec, Target{})
	if err != nil {
		t.Fatal(err)
	}
	explicit, _ := Render(l, rec, Target{Lang: LangZPL, DPI: DefaultDPI})
	if !bytes.Equal(def, explicit) {
		t.Error("the zero Target is not zpl at 203 dpi")
	}
}

// TestBarcodeTooWide: a linear symbol that would run past the label edge
// fails alike in every language, named by element; the width formulae of
// checkLinearFits agree with the encoder the raster path uses.
func TestBarcodeTooWide(t *testing.T) {
	doc := `{"version":1,"id":"w","width_mm":40,"height_mm":20,"elements":[
	  {"type":"barcode","symbology":"code128","x":2,"y":2,"data":"{v}","module":0.25}]}`
	l, err := ParseLayout([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range []Lang{LangZPL, LangTSPL, LangPNG, LangESCPOS} {
		if _, err := Render(l, Record{"v": "SHORT1"}, Target{Lang: lang}); err != nil {
			t.Errorf("%s: short value: %v", lang, err)
		}
		_, err := Render(l, Record{"v": strings.Repeat("Xy", 20)}, Target{Lang: lang})
		if !errors.Is(err, ErrBarcodeData) || !strings.Contains(err.Error(), "elements[0]") || !strings.Contains(err.Error(), "beyond") {
			t.Errorf("%s: err = %v", lang, err)
		}
	}
	cases := []struct{ sym, data string }{
		{Code39, "ABC-123 $/+%"}, {EAN13, "4006381333931"}, {UPCA, "036000291452"},
		{Code128, "1Z999AA10123456784"}, {Code128, "JD014600006281234567"}, {Code128, "00340434161234567890"},
		{Code128, "SHORT1"}, {Code128, "a1234b12345"}, {Code128, "12"}, {Code128, "Hello, World!"},
	}
	for _, c := range cases {
		code, err := encodeBarcode(c.sym, c.data, "")
		if err != nil {
			t.Fatal(err)
		}
		w := code.Bounds().Dx()
		// Exact for the fixed-width symbologies; for Code 128 never more
		// than the encoder's width (so nothing printable is rejected).
		if checkLinearFits(c.sym, c.data, 0, 1, w) != nil {
			t.Errorf("%s %q: formula is wider than the encoder's %d modules", c.sym, c.data, w)
		}
		if c.sym != Code128 && checkLinearFits(c.sym, c.data, 0, 1, w-1) == nil {
			t.Errorf("%s %q: formula is narrower than the encoder's %d modules", c.sym, c.data, w)
		}
		if c.sym == Code128 && code128Modules(c.data) < w-22 {
			t.Errorf("%s %q: formula %d is far below the encoder's %d modules", c.sym, c.data, code128Modules(c.data), w)
		}
	}
}
