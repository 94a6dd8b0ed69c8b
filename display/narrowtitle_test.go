package display

import (
	"image"
	"testing"
)

// On the upright 64×128 panel a job title too long for the headline's two lines keeps as much
// as fits on the second line, and a word broken with a hyphen goes on where it was broken.
func TestNarrowHeadlineKeepsTheTitle(t *testing.T) {
	for _, tc := range []struct {
		title      string
		line1, two string
	}{
		{"Shelf tags aisle 4", "Shelf", "tags a.."},
		{"Warehouse shelf tags", "Warehou-", "se she.."},
		{"Short one", "Short", "one"},
	} {
		v := View{Kind: Select, Hero: tc.title, Lines: []string{"x12, 25m old", "7h 35m left", "A next B print"}}
		fr, err := layout(v, image.Pt(64, 128))
		if err != nil {
			t.Fatal(err)
		}
		if len(fr.texts) < 2 || fr.texts[0].s != tc.line1 || fr.texts[1].s != tc.two || !fr.texts[1].white {
			var got []string
			for _, x := range fr.texts {
				got = append(got, x.s)
			}
			t.Errorf("%q: headline %q, want %q then %q", tc.title, got, tc.line1, tc.two)
		}
	}
}
