package label

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func loadExample(t testing.TB, name string) *Layout {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "examples", "layouts", name))
	if err != nil {
		t.Fatal(err)
	}
	l, err := ParseLayout(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return l
}

func TestParseLayoutExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "examples", "layouts", "*.json"))
	if err != nil || len(files) < 3 {
		t.Fatalf("want example layouts, got %v (%v)", files, err)
	}
	for _, f := range files {
		l := loadExample(t, filepath.Base(f))
		if l.ID+".json" != filepath.Base(f) {
			t.Errorf("%s: id %q does not match the file name", f, l.ID)
		}
	}
	l := loadExample(t, "shipping.json")
	want := []string{"city", "name", "street", "tracking", "zip"}
	if got := strings.Join(l.Fields(), ","); got != strings.Join(want, ",") {
		t.Errorf("Fields() = %s, want %s", got, strings.Join(want, ","))
	}
}

const okHead = `{"version":1,"id":"t","width_mm":50,"height_mm":30,`

func TestParseLayoutErrors(t *testing.T) {
	cases := []struct {
		name, doc string
		want      []string // substrings of the error
	}{
		{"empty", ``, []string{"invalid layout"}},
		{"version", `{"version":2,"id":"t","width_mm":50,"height_mm":30,"elements":[]}`, []string{"version"}},
		{"unknown top field", okHead + `"colour":"red","elements":[{"type":"box","x":1,"y":1,"width":2,"height":2}]}`, []string{`unknown field "colour"`}},
		{"trailing", okHead + `"elements":[{"type":"box","x":1,"y":1,"width":2,"height":2}]} {}`, []string{"trailing data"}},
		{"bad id", `{"version":1,"id":"a b","width_mm":50,"height_mm":30,"elements":[{"type":"box","x":1,"y":1,"width":2,"height":2}]}`, []string{"id:"}},
		{"no size", `{"version":1,"id":"t","width_mm":0,"height_mm":30,"elements":[{"type":"box","x":1,"y":1,"width":2,"height":2}]}`, []string{"size"}},
		{"orientation", okHead + `"orientation":45,"elements":[{"type":"box","x":1,"y":1,"width":2,"height":2}]}`, []string{"orientation: 45"}},
		{"nothing", okHead + `"elements":[]}`, []string{"exactly one of elements or zpl"}},
		{"unknown element", okHead + `"elements":[{"type":"box","x":1,"y":1,"width":2,"height":2},{"type":"circle","x":1,"y":1}]}`, []string{"elements[1]", `unknown element type "circle"`}},
		{"no type", okHead + `"elements":[{"x":1,"y":1}]}`, []string{"elements[0]", `"type" is required`}},
		{"foreign key", okHead + `"elements":[{"type":"box","x":1,"y":1,"width":2,"height":2,"symbology":"qr"}]}`, []string{"elements[0] (box)", `"symbology" does not apply`}},
		{"negative size", okHead + `"elements":[{"type":"box","x":1,"y":1,"width":-2,"height":2}]}`, []string{"elements[0] (box)", "negative size -2"}},
		{"outside", okHead + `"elements":[{"type":"text","x":1,"y":1,"text":"a"},{"type":"box","x":40,"y":1,"width":20,"height":2}]}`, []string{"elements[1] (box)", "outside the 50x30 mm label"}},
		{"origin outside", okHead + `"elements":[{"type":"text","x":51,"y":1,"text":"a"}]}`, []string{"elements[0] (text)", "outside"}},
		{"field syntax", okHead + `"elements":[{"type":"text","x":1,"y":1,"text":"{a:b}"}]}`, []string{"elements[0] (text)", "use '::'"}},
		{"unclosed", okHead + `"elements":[{"type":"text","x":1,"y":1,"text":"{name"}]}`, []string{"elements[0] (text)", "unclosed '{'"}},
		{"stray brace", okHead + `"elements":[{"type":"text","x":1,"y":1,"text":"a}b"}]}`, []string{"unmatched '}'"}},
		{"empty field", okHead + `"elements":[{"type":"text","x":1,"y":1,"text":"{}"}]}`, []string{"empty field name"}},
		{"symbology", okHead + `"elements":[{"type":"barcode","x":1,"y":1,"symbology":"aztec","data":"x"}]}`, []string{"elements[0] (barcode)", `unknown symbology "aztec"`}},
		{"static ean", okHead + `"elements":[{"type":"barcode","x":1,"y":1,"symbology":"ean13","data":"12345"}]}`, []string{"elements[0] (barcode)", "want 12 or 13 digits"}},
		{"align without width", okHead + `"elements":[{"type":"text","x":1,"y":1,"text":"a","align":"center"}]}`, []string{"needs max_width"}},
		{"diagonal", okHead + `"elements":[{"type":"line","x":1,"y":1,"x2":5,"y2":5}]}`, []string{"horizontal or vertical"}},
		{"bad png", okHead + `"elements":[{"type":"image","x":1,"y":1,"width":5,"png":"aGVsbG8="}]}`, []string{"elements[0] (image)", "png:"}},
		{"both", okHead + `"zpl":"^XA^XZ","elements":[{"type":"box","x":1,"y":1,"width":2,"height":2}]}`, []string{"exactly one"}},
		{"zpl outside fd", okHead + `"zpl":"^XA^FO1,1{name}^FS^XZ"}`, []string{"outside a ^FD"}},
		{"zpl two labels", okHead + `"zpl":"^XA^XZ^XA^XZ"}`, []string{"exactly one label"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseLayout([]byte(c.doc))
			if err == nil {
				t.Fatal("accepted an invalid layout")
			}
			if !errors.Is(err, ErrInvalidLayout) {
				t.Errorf("error %v does not wrap ErrInvalidLayout", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestTemplate(t *testing.T) {
	rec := Record{"a": "1", "ship::to::name": "Ann", "empty": ""}
	cases := []struct{ tmpl, want string }{
		{"plain", "plain"},
		{"{a}", "1"},
		{"x{a}y{ship::to::name}z", "x1yAnnz"},
		{"{{literal}} {a}", "{literal} 1"},
		{"{missing|dflt}", "dflt"},
		{"{missing|}", ""},
		{"{empty|dflt}", ""},
		{"}}{{", "}{"},
	}
	for _, c := range cases {
		tm, err := parseTemplate(c.tmpl)
		if err != nil {
			t.Fatalf("%q: %v", c.tmpl, err)
		}
		got, err := tm.string(rec)
		if err != nil || got != c.want {
			t.Errorf("%q = %q, %v; want %q", c.tmpl, got, err, c.want)
		}
	}
	tm, _ := parseTemplate("{nope}")
	if _, err := tm.string(rec); !errors.Is(err, ErrMissingField) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("missing field error = %v", err)
	}
}

func TestCopies(t *testing.T) {
	l := loadExample(t, "product.json")
	for _, c := range []struct {
		v    string
		set  bool
		want int
		ok   bool
	}{{"", false, 1, true}, {"3", true, 3, true}, {" 2 ", true, 2, true}, {"", true, 1, true}, {"0", true, 0, true}, {"-1", true, 0, false}, {"x", true, 0, false}, {"10001", true, 0, false}} {
		rec := Record{}
		if c.set {
			rec["copies"] = c.v
		}
		n, err := l.Copies(rec)
		if (err == nil) != c.ok || (c.ok && n != c.want) {
			t.Errorf("copies %q: got %d, %v; want %d ok=%v", c.v, n, err, c.want, c.ok)
		}
	}
}
