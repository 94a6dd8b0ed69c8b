package label

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current renderer")

// Golden files pin the exact printer bytes. They were written with -update
// and then checked by hand: the TSPL text against the TSPL/TSPL2 manual's
// command syntax, the ESC/POS stream with walkESCPOS and by viewing the
// PNG of the same bitmap. A change in them must be a deliberate one.
func TestGolden(t *testing.T) {
	rec := readAll(t, FormatJSON, exampleData(t, "badge-test.json"), ReadOptions{})[0]
	ship := readAll(t, FormatCSV, exampleData(t, "shipping.csv"), ReadOptions{})[1]
	cases := []struct {
		file   string
		layout string
		rec    Record
		target Target
	}{
		{"badge-test.tspl.golden", "badge-test.json", rec, Target{Lang: LangTSPL, DPI: 203}},
		{"shipping.tspl.golden", "shipping.json", ship, Target{Lang: LangTSPL, DPI: 300}},
		{"badge-test.escpos.golden", "badge-test.json", rec, Target{Lang: LangESCPOS, DPI: 203}},
		{"badge-test.zpl.golden", "badge-test.json", rec, Target{Lang: LangZPL, DPI: 203}},
		{"badge-test.rasterzpl.golden", "badge-test.json", rec, Target{Lang: LangZPL, DPI: 203, Raster: true}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			got, err := Render(loadExample(t, c.layout), c.rec, c.target)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", c.file)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update)", err)
			}
			if !bytes.Equal(got, want) {
				i := 0
				for i < len(got) && i < len(want) && got[i] == want[i] {
					i++
				}
				t.Errorf("output differs from %s at byte %d (got %d bytes, want %d)", path, i, len(got), len(want))
			}
			if c.target.Lang == LangESCPOS {
				if rows := walkESCPOS(t, got); rows != dots(25, 203) {
					t.Errorf("escpos image has %d rows, want %d", rows, dots(25, 203))
				}
			}
		})
	}
}
