package label

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strings"
	"testing"
)

// checkerPNG is a w×h PNG of 8-pixel squares, with a transparent corner.
func checkerPNG(t *testing.T, w, h int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			switch {
			case x < 8 && y < 8:
				img.Set(x, y, color.NRGBA{}) // transparent: white on paper
			case (x/8+y/8)%2 == 0:
				img.Set(x, y, color.NRGBA{A: 255})
			default:
				img.Set(x, y, color.NRGBA{R: 255, G: 255, B: 255, A: 255})
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestImageElement: a PNG element prints dot for dot the same through
// native ZPL (^GF, drawn by zebrash) and through our raster.
func TestImageElement(t *testing.T) {
	// 8 mm at 203 dpi is 64 dots: the 64-pixel PNG maps 1:1.
	doc := fmt.Sprintf(`{"version":1,"id":"img","width_mm":20,"height_mm":12,"elements":[
	  {"type":"image","x":2,"y":1,"width":8,"png":%q}]}`, base64.StdEncoding.EncodeToString(checkerPNG(t, 64, 64)))
	l, err := ParseLayout([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	zpl, err := Render(l, Record{}, Target{Lang: LangZPL})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(zpl, []byte("^GFA,")) {
		t.Fatalf("no ^GF in %s", zpl)
	}
	zimg := zebrashPNG(t, zpl, l)
	own, err := RenderBitmap(l, Record{}, 203)
	if err != nil {
		t.Fatal(err)
	}
	x0, y0 := dots(2, 203), dots(1, 203)
	diff := 0
	for y := range 64 {
		for x := range 64 {
			want := x >= 8 || y >= 8
			want = want && (x/8+y/8)%2 == 0
			r, _, _, _ := zimg.At(x0+x, y0+y).RGBA()
			if (r < 0x8000) != want || own.Black(x0+x, y0+y) != want {
				diff++
			}
		}
	}
	if diff != 0 {
		t.Errorf("%d of 4096 dots differ", diff)
	}
}

func TestOrientation(t *testing.T) {
	base := `{"version":1,"id":"o","width_mm":40,"height_mm":20,"orientation":%d,"elements":[{"type":"box","x":0,"y":0,"width":10,"height":5,"thickness":5}]}`
	for _, deg := range []int{0, 90, 180, 270} {
		l, err := ParseLayout(fmt.Appendf(nil, base, deg))
		if err != nil {
			t.Fatal(err)
		}
		out, err := Render(l, Record{}, Target{Lang: LangPNG})
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(out))
		if err != nil {
			t.Fatal(err)
		}
		w, h := dots(40, 203), dots(20, 203)
		if deg == 90 || deg == 270 {
			w, h = h, w
		}
		if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
			t.Errorf("%d°: png %v, want %dx%d", deg, b, w, h)
		}
		// The filled box sits in the design's top-left corner; after a
		// clockwise turn it is in the corner that corner moved to.
		corner := map[int]image.Point{0: {1, 1}, 90: {w - 2, 1}, 180: {w - 2, h - 2}, 270: {1, h - 2}}[deg]
		if r, _, _, _ := img.At(corner.X, corner.Y).RGBA(); r != 0 {
			t.Errorf("%d°: corner %v is not black", deg, corner)
		}
		zpl, err := Render(l, Record{}, Target{Lang: LangZPL})
		if err != nil {
			t.Fatal(err)
		}
		native := !bytes.Contains(zpl, []byte("^GFA"))
		if native != (deg == 0 || deg == 180) {
			t.Errorf("%d°: native=%v", deg, native)
		}
		if deg == 180 && !bytes.Contains(zpl, []byte("^POI")) {
			t.Errorf("180°: no ^POI in %s", zpl)
		}
		tspl, err := Render(l, Record{}, Target{Lang: LangTSPL})
		if err != nil {
			t.Fatal(err)
		}
		if dir := bytes.Contains(tspl, []byte("DIRECTION 1,0")); dir != (deg == 180) {
			t.Errorf("%d°: TSPL DIRECTION 1 = %v", deg, dir)
		}
	}
}

// TestTextWrapRaster: a long text with max_lines 2 fills two line bands
// and nothing below them; shrink keeps one line inside max_width.
func TestTextWrapRaster(t *testing.T) {
	doc := `{"version":1,"id":"w","width_mm":60,"height_mm":30,"elements":[
	  {"type":"text","x":0,"y":0,"text":"{t}","font_pt":10,"max_width":30,"max_lines":2},
	  {"type":"text","x":0,"y":20,"text":"{t}","font_pt":10,"max_width":30,"fit":"shrink"}]}`
	l, err := ParseLayout([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("word ", 20)
	bm, err := RenderBitmap(l, Record{"t": long}, 203)
	if err != nil {
		t.Fatal(err)
	}
	lineH := dots(10*25.4/72, 203)
	inkRows := func(y0, y1, x0, x1 int) int {
		n := 0
		for y := y0; y < y1; y++ {
			for x := x0; x < x1; x++ {
				if bm.Black(x, y) {
					n++
					break
				}
			}
		}
		return n
	}
	maxW := dots(30, 203)
	if inkRows(lineH+lineH/2, 2*lineH+lineH/2, 0, maxW) == 0 {
		t.Error("second line is empty: text did not wrap")
	}
	if n := inkRows(3*lineH, dots(20, 203), 0, bm.W); n != 0 {
		t.Errorf("%d ink rows below max_lines", n)
	}
	if n := inkRows(0, dots(20, 203), maxW+1, bm.W); n != 0 {
		t.Errorf("wrapped text reaches past max_width in %d rows", n)
	}
	if n := inkRows(dots(20, 203), bm.H, maxW+1, bm.W); n != 0 {
		t.Errorf("shrunk text reaches past max_width in %d rows", n)
	}
	// Shrink: a line that does not fit is drawn smaller than one that does.
	height := func(v string) int {
		bm2, err := RenderBitmap(l, Record{"t": v}, 203)
		if err != nil {
			t.Fatal(err)
		}
		bm = bm2
		return inkRows(dots(20, 203), bm.H, 0, bm.W)
	}
	if short, long := height("Wd"), height(strings.Repeat("Wd ", 12)); long >= short || long == 0 {
		t.Errorf("shrunk text is %d rows high, unshrunk %d", long, short)
	}
}

// TestConcurrentRender: one parsed layout is shared by the print worker and
// previews; caches and font faces must be safe under concurrent renders
// (run with -race), and every goroutine gets the same bytes.
func TestConcurrentRender(t *testing.T) {
	l := loadExample(t, "shipping.json")
	rec := readAll(t, FormatCSV, exampleData(t, "shipping.csv"), ReadOptions{})[1]
	targets := []Target{{Lang: LangZPL}, {Lang: LangPNG, DPI: 300}, {Lang: LangTSPL, Raster: true}}
	want := make([][]byte, len(targets))
	for i, tg := range targets {
		var err error
		if want[i], err = Render(l, rec, tg); err != nil {
			t.Fatal(err)
		}
	}
	fresh := loadExample(t, "shipping.json") // empty caches, filled concurrently
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			i := g % len(targets)
			got, err := Render(fresh, rec, targets[i])
			if err == nil && !bytes.Equal(got, want[i]) {
				err = fmt.Errorf("goroutine %d: %s output differs", g, targets[i].Lang)
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestRasterSizeLimit(t *testing.T) {
	l, err := ParseLayout([]byte(`{"version":1,"id":"huge","width_mm":1000,"height_mm":2000,"elements":[{"type":"box","x":0,"y":0,"width":10,"height":10}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Render(l, Record{}, Target{Lang: LangPNG, DPI: 600}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("err = %v, want ErrUnsupported", err)
	}
	if _, err := Render(l, Record{}, Target{Lang: LangZPL, DPI: 600}); err != nil {
		t.Errorf("native zpl needs no bitmap: %v", err)
	}
}
