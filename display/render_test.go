package display

import (
	"errors"
	"fmt"
	"image"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	gozxingqr "github.com/makiuchi-d/gozxing/qrcode"
	"golang.org/x/image/math/fixed"
)

// sizes are the panels the screens are designed for: SSD1306 OLED,
// 2.13" e-paper (landscape, and portrait), 1.3" ST7789, 2.4" ILI9341 and
// the SSD1306 upright (64x128, the compact layout).
var sizes = []image.Point{{128, 64}, {250, 122}, {240, 240}, {320, 240}, {122, 250}, {64, 128}}

var now = time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)

// hard returns views that push every screen: long words, many lines,
// non-ASCII names, empty fields.
func hard() []View {
	long := strings.Repeat("Supercalifragilistic ", 6)
	var jobs []JobLine
	for i := range 40 {
		jobs = append(jobs, JobLine{Title: fmt.Sprintf("Job %d with a very long title indeed", i), Labels: i * 1000})
	}
	var vs []View
	for _, k := range Kinds() {
		vs = append(vs,
			View{Kind: k},
			View{Kind: k, Now: now, Title: long, Lines: []string{long, long, "Łódź Straße 日本"}, User: "Zoë Ångström-Øster" + long,
				Station: long, QR: "http://10.0.0.2:8780/pair?user_code=WDJB-MJHT", Code: "WDJB-MJHT-XXXX-YYYY",
				URL: "https://" + long, Expires: now.Add(time.Hour), Jobs: jobs, Done: 7, Total: 5, Online: true,
				Image: image.NewGray(image.Rect(0, 0, 3000, 7))},
		)
	}
	return vs
}

func sample() []View {
	var vs []View
	for _, k := range Kinds() {
		vs = append(vs, View{Kind: k, Now: now, Station: "LS-0042", Online: true, User: "Ann",
			QR:   map[bool]string{true: "http://10.0.0.2:8780/pair?user_code=WDJB-MJHT"}[k == Enrolling],
			Code: "WDJB-MJHT", URL: "http://10.0.0.2:8780/pair", Expires: now.Add(5 * time.Minute),
			Jobs: []JobLine{{Title: "Shipping labels", Labels: 3}, {Title: "Shelf tags", Labels: 12, Note: "7h left"}}, Done: 1, Total: 3})
	}
	return vs
}

func TestKindString(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range Kinds() {
		s := k.String()
		if s == "" || strings.HasPrefix(s, "Kind(") || seen[s] {
			t.Errorf("Kind %d: name %q is missing or repeated", int(k), s)
		}
		seen[s] = true
	}
	if got := Kind(99).String(); got != "Kind(99)" {
		t.Errorf("Kind(99).String() = %q", got)
	}
}

// TestLayoutFits checks every screen at every size: everything inside the
// panel, no two items overlapping, white text only on the headline bar,
// black text never on it, every text item drawn, and only pure black and
// white pixels.
func TestLayoutFits(t *testing.T) {
	for _, size := range sizes {
		for i, v := range append(sample(), hard()...) {
			name := fmt.Sprintf("%dx%d/%d-%v", size.X, size.Y, i, v.Kind)
			fr, err := layout(v, size)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			checkFrame(t, name, fr)
		}
	}
}

func checkFrame(t *testing.T, name string, fr *frame) {
	t.Helper()
	bounds := image.Rectangle{Max: fr.size}
	type item struct {
		what string
		r    image.Rectangle
	}
	var items []item
	for _, tx := range fr.texts {
		items = append(items, item{"text " + tx.s, tx.rect()})
		onBar := slices.ContainsFunc(fr.bg, func(b image.Rectangle) bool { return tx.rect().In(b) })
		touchesBar := slices.ContainsFunc(fr.bg, func(b image.Rectangle) bool { return tx.rect().Overlaps(b) })
		if tx.white != onBar || (!tx.white && touchesBar) {
			t.Errorf("%s: text %q white=%v on bar=%v touches bar=%v", name, tx.s, tx.white, onBar, touchesBar)
		}
	}
	for _, ic := range fr.icons {
		items = append(items, item{"icon", ic.rect()})
	}
	for _, b := range fr.bars {
		items = append(items, item{"bar", b.r})
	}
	if fr.qr != nil {
		items = append(items, item{"qr", fr.qr.zone})
		n := len(fr.qr.bits) * fr.qr.m
		if !image.Rect(fr.qr.at.X, fr.qr.at.Y, fr.qr.at.X+n, fr.qr.at.Y+n).In(fr.qr.zone) {
			t.Errorf("%s: QR modules outside their zone", name)
		}
	}
	if fr.pic != nil {
		items = append(items, item{"picture", fr.pic.rect()})
	}
	for i, a := range items {
		if a.r.Empty() || !a.r.In(bounds) {
			t.Errorf("%s: %s at %v is empty or outside %v", name, a.what, a.r, bounds)
		}
		for _, b := range items[i+1:] {
			if a.r.Overlaps(b.r) {
				t.Errorf("%s: %s at %v overlaps %s at %v", name, a.what, a.r, b.what, b.r)
			}
		}
	}
	img := fr.paint()
	for _, tx := range fr.texts {
		if strings.TrimSpace(tx.s) == "" {
			continue
		}
		want := uint8(0)
		if tx.white {
			want = 0xff
		}
		if !hasPixel(img, tx.rect(), want) {
			t.Errorf("%s: text %q has no ink", name, tx.s)
		}
	}
	for i, p := range img.Pix {
		if p != 0 && p != 0xff {
			t.Fatalf("%s: pixel %d is %#x, want pure black or white", name, i, p)
		}
	}
}

func hasPixel(img *image.Gray, r image.Rectangle, c uint8) bool {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if img.GrayAt(x, y).Y == c {
				return true
			}
		}
	}
	return false
}

func texts(fr *frame) []string {
	var out []string
	for _, t := range fr.texts {
		out = append(out, t.s)
	}
	return out
}

// TestQRDecodes proves a phone-grade decoder reads the QR straight off the
// rendered frame at native resolution, text beside it and all.
func TestQRDecodes(t *testing.T) {
	payloads := []string{
		"http://10.0.0.2:8780/pair?user_code=WDJB-MJHT",              // 45 bytes: version 3-L
		"http://192.168.100.200:8780/device?user_code=WDJBMJHT"[:53], // version 3-L's limit
		"https://a.io/d",
		"https://station-enrollment.example.com/device?user_code=WDJB-MJHT&serial=00000000c0ffee42", // version 5: 1 px/module at 128x64
	}
	for _, size := range sizes {
		for _, p := range payloads {
			for _, k := range []Kind{Enrolling, UnknownBadge} {
				v := View{Kind: k, QR: p, Code: "WDJB-MJHT", URL: "http://10.0.0.2:8780/pair", Expires: now.Add(time.Minute), Now: now}
				img, err := Render(v, size)
				if err != nil {
					t.Fatal(err)
				}
				want := foldURL(p)
				if _, fit := fitQR([]string{p}, size, scaleFor(size)); !fit {
					// Too long for 2 px modules here: the enrolling
					// screen falls back to the shorter verification URL,
					// the unknown-badge screen to text.
					want = map[Kind]string{Enrolling: foldURL(v.URL)}[k]
				}
				got, err := decodeQR(img)
				if want == "" {
					if err == nil {
						t.Errorf("%v %dx%d %q: decoded %q from a QR below %d px a module", k, size.X, size.Y, p, got, minModule)
					}
					continue
				}
				if err != nil {
					t.Errorf("%v %dx%d %q: %v", k, size.X, size.Y, p, err)
					continue
				}
				if got != want {
					t.Errorf("%v %dx%d: decoded %q, want %q", k, size.X, size.Y, got, want)
				}
			}
		}
	}
	// The hard views crowd the column beside the QR with text.
	for _, v := range hard() {
		if v.QR == "" || (v.Kind != Enrolling && v.Kind != UnknownBadge) {
			continue
		}
		for _, size := range sizes {
			// A crowded pairing screen takes turns between the QR and
			// the text; within one cycle the QR shows and decodes.
			var got string
			var err error
			for i := range 30 {
				w := v
				w.Now = v.Now.Add(time.Duration(i) * time.Second)
				img, rerr := Render(w, size)
				if rerr != nil {
					t.Fatal(rerr)
				}
				if got, err = decodeQR(img); err == nil {
					break
				}
			}
			if err != nil || got != foldURL(v.QR) {
				t.Errorf("crowded %v %dx%d: decoded %q, %v", v.Kind, size.X, size.Y, got, err)
			}
		}
	}
}

// TestQRDecodesInverted covers an OLED driver that lights the ink: the QR
// then shows light modules on dark, which scanners with inverted-code
// support (ZXing's ALSO_INVERTED) still read at 128×64.
func TestQRDecodesInverted(t *testing.T) {
	const p = "http://10.0.0.2:8780/pair?user_code=WDJB-MJHT"
	img, err := Render(View{Kind: Enrolling, QR: p, Code: "WDJB-MJHT", URL: "http://10.0.0.2:8780/pair"}, sizes[0])
	if err != nil {
		t.Fatal(err)
	}
	for i := range img.Pix {
		img.Pix[i] ^= 0xff
	}
	inv := gozxing.NewInvertedLuminanceSource(gozxing.NewLuminanceSourceFromImage(img))
	bmp, err := gozxing.NewBinaryBitmap(gozxing.NewHybridBinarizer(inv))
	if err != nil {
		t.Fatal(err)
	}
	res, err := gozxingqr.NewQRCodeReader().Decode(bmp, nil)
	if err != nil || res.GetText() != foldURL(p) {
		t.Fatalf("inverted frame: %v, %v", res, err)
	}
}

func decodeQR(img image.Image) (string, error) {
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", err
	}
	res, err := gozxingqr.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		return "", err
	}
	return res.GetText(), nil
}

// TestQRModules pins the geometry: at 128×64 a ~40-byte URL is version 3
// at 2 px per module; bigger panels get bigger modules and spend spare room
// on error correction (more modules).
func TestQRModules(t *testing.T) {
	v := View{Kind: Enrolling, QR: "http://10.0.0.2:8780/pair?user_code=WDJB-MJHT", Code: "WDJB-MJHT", URL: "http://ls.lan/d"}
	for _, c := range []struct {
		size    image.Point
		minM    int
		modules int
	}{{image.Pt(128, 64), 2, 29}, {image.Pt(250, 122), 3, 29}, {image.Pt(240, 240), 3, 29}, {image.Pt(320, 240), 3, 29}, {image.Pt(64, 128), 2, 29}} {
		fr, err := layout(v, c.size)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(fr.qr.bits); n < c.modules || fr.qr.m < c.minM {
			t.Errorf("%v: %d modules at %d px, want >= %d at >= %d px", c.size, n, fr.qr.m, c.modules, c.minM)
		}
	}
}

func TestEnrollingText(t *testing.T) {
	v := View{Kind: Enrolling, QR: "http://ls.lan/d?user_code=WDJB-MJHT", Code: "WDJB-MJHT", URL: "http://ls.lan/d",
		Now: now, Expires: now.Add(299*time.Second + time.Millisecond)}
	for _, c := range []struct {
		size image.Point
		want []string
	}{
		{image.Pt(128, 64), []string{"Scan to", "set up", "WDJB-MJHT", "5:00 left"}},
		{image.Pt(240, 240), []string{"Scan to set up", "WDJB-MJHT", "ls.lan/d", "5:00 left"}},
	} {
		fr, err := layout(v, c.size)
		if err != nil {
			t.Fatal(err)
		}
		got := texts(fr)
		if !slices.Equal(got, c.want) {
			t.Errorf("%v: texts %q, want %q", c.size, got, c.want)
		}
		for _, tx := range fr.texts {
			if c.size.X > 128 && strings.Contains("WDJB-MJHT", tx.s) && tx.f != large {
				t.Errorf("%v: code %q not in the large font", c.size, tx.s)
			}
		}
	}
}

func TestCountdown(t *testing.T) {
	for _, c := range []struct {
		left time.Duration
		want string
	}{
		{300 * time.Second, "5:00 left"},
		{299*time.Second + 1, "5:00 left"},
		{59 * time.Second, "0:59 left"},
		{time.Millisecond, "0:01 left"},
		{0, "Code expired"},
		{-time.Hour, "Code expired"},
	} {
		if got := countdown(View{Now: now, Expires: now.Add(c.left)}); got != c.want {
			t.Errorf("countdown(%v) = %q, want %q", c.left, got, c.want)
		}
	}
	if got := countdown(View{Now: now}); got != "" {
		t.Errorf("countdown without Expires = %q, want none", got)
	}
}

func TestNextChange(t *testing.T) {
	v := View{Kind: Enrolling, Now: now, Expires: now.Add(90*time.Second + 300*time.Millisecond)}
	at, ok := NextChange(v)
	if !ok || !at.Equal(now.Add(300*time.Millisecond)) {
		t.Fatalf("NextChange = %v, %v", at, ok)
	}
	before := countdown(v)
	v.Now = at.Add(-time.Nanosecond)
	if countdown(v) != before {
		t.Errorf("countdown changed before NextChange")
	}
	v.Now = at
	if countdown(v) == before {
		t.Errorf("countdown %q did not change at NextChange", before)
	}
	if at, ok := NextChange(v); !ok || !at.Equal(v.Now.Add(time.Second)) {
		t.Errorf("on a whole second: NextChange = %v, %v, want a second later", at, ok)
	}
	for _, s := range []View{{Kind: Idle, Now: now}, {Kind: Enrolling, Now: now}, {Kind: Enrolling, Now: now, Expires: now}} {
		if _, ok := NextChange(s); ok {
			t.Errorf("%v expires %v: NextChange says it changes", s.Kind, s.Expires)
		}
	}
}

func TestOverrides(t *testing.T) {
	for _, c := range []struct {
		v    View
		want []string
	}{
		{View{Kind: Denied}, []string{"Not set up", "Pairing denied.", "A new code", "follows."}},
		{View{Kind: Denied, Lines: []string{"Pairing denied", "", "New code follows"}}, []string{"Not set up", "Pairing denied", "New code follows"}},
		{View{Kind: Idle, Title: "Dock 3", Lines: []string{"Waiting for config"}}, []string{"Dock 3", "Tap your badge", "Waiting for", "config"}},
		{View{Kind: Printing, Done: 5, Total: 5}, []string{"Printing", "Label 5 of 5"}},
		{View{Kind: Enrolling}, []string{"Set up station", "Getting a code..."}},
		{View{Kind: Done}, []string{"Done", "All printed"}},
		{View{Kind: UnknownBadge, QR: "http://ls.lan/b?id=1"}, []string{"Unknown", "badge", "Scan to", "link it"}},
	} {
		fr, err := layout(c.v, sizes[0])
		if err != nil {
			t.Fatal(err)
		}
		if got := texts(fr); !slices.Equal(got, c.want) {
			t.Errorf("%v %q: texts %q, want %q", c.v.Kind, c.v.Lines, got, c.want)
		}
	}
}

// TestHero: on bigger panels the one thing to read grows a scale, wrapping
// between words but never inside one.
func TestHero(t *testing.T) {
	for _, c := range []struct {
		v     View
		size  image.Point
		want  []string
		scale int
	}{
		{View{Kind: Idle}, image.Pt(240, 240), []string{"Ready", "Tap your", "badge"}, 3},
		{View{Kind: Printing}, image.Pt(240, 240), []string{"Printing", "Printing..."}, 2},
		{View{Kind: Idle}, image.Pt(128, 64), []string{"Ready", "Tap your badge"}, 1},
	} {
		fr, err := layout(c.v, c.size)
		if err != nil {
			t.Fatal(err)
		}
		if got := texts(fr); !slices.Equal(got, c.want) {
			t.Errorf("%v at %v: texts %q, want %q", c.v.Kind, c.size, got, c.want)
		}
		if k := fr.texts[1].k; k != c.scale {
			t.Errorf("%v at %v: %q at scale %d, want %d", c.v.Kind, c.size, fr.texts[1].s, k, c.scale)
		}
	}
}

func TestListKeepsInstructions(t *testing.T) {
	jobs := []JobLine{{Title: "One", Labels: 1}, {Title: "Two", Labels: 2}, {Title: "Three", Labels: 3}, {Title: "Four", Labels: 4}}
	fr, err := layout(View{Kind: List, User: "Ann", Jobs: jobs, Lines: []string{"A: print all"}}, sizes[0])
	if err != nil {
		t.Fatal(err)
	}
	got := texts(fr)[1:]
	if want := []string{"One" + strings.Repeat(" ", 17-3-2) + "x1", "+3 more", "A: print all"}; !slices.Equal(got, want) {
		t.Errorf("rows %q, want %q", got, want)
	}
}

func TestListMore(t *testing.T) {
	for _, size := range sizes {
		var jobs []JobLine
		for i := range 25 {
			jobs = append(jobs, JobLine{Title: fmt.Sprintf("Job %d", i), Labels: i + 1})
		}
		fr, err := layout(View{Kind: List, User: "Ann", Jobs: jobs}, size)
		if err != nil {
			t.Fatal(err)
		}
		got := texts(fr)[1:] // after the headline
		var more int
		if _, err := fmt.Sscanf(got[len(got)-1], "+%d more", &more); err != nil {
			t.Fatalf("%v: last row %q, want \"+N more\"", size, got[len(got)-1])
		}
		shown := got[:len(got)-1]
		if len(shown)+more != len(jobs) {
			t.Errorf("%v: %d rows + %d more != %d jobs", size, len(shown), more, len(jobs))
		}
		for i, row := range shown {
			if !strings.HasPrefix(row, jobs[i].Title) || !strings.HasSuffix(row, fmt.Sprintf("x%d", jobs[i].Labels)) {
				t.Errorf("%v: row %d = %q, want job %q x%d", size, i, row, jobs[i].Title, jobs[i].Labels)
			}
		}
	}
}

func TestRenderDeterministic(t *testing.T) {
	for _, v := range sample() {
		a, err := Render(v, sizes[0])
		if err != nil {
			t.Fatal(err)
		}
		b, _ := Render(v, sizes[0])
		if !slices.Equal(a.Pix, b.Pix) {
			t.Errorf("%v: two renders differ", v.Kind)
		}
	}
	v := sample()[Enrolling]
	a, _ := Render(v, sizes[2])
	v.Now = v.Now.Add(time.Second)
	b, _ := Render(v, sizes[2])
	if slices.Equal(a.Pix, b.Pix) {
		t.Error("enrolling: countdown did not change when Now moved a second")
	}
}

func TestRenderErrors(t *testing.T) {
	if _, err := Render(View{}, image.Pt(96, 64)); !errors.Is(err, ErrTooSmall) || !strings.Contains(err.Error(), "96x64") {
		t.Errorf("96x64: err = %v, want ErrTooSmall naming the size", err)
	}
	if _, err := Render(View{Kind: 42}, sizes[0]); !errors.Is(err, ErrKind) {
		t.Errorf("Kind 42: err = %v, want ErrKind", err)
	}
}

// TestQRTooLong: a payload no QR on this panel can hold at 2 px a module
// gives way to the shorter verification URL, and the code stays readable.
func TestQRTooLong(t *testing.T) {
	for _, n := range []int{1000, 3000} {
		v := View{Kind: Enrolling, QR: "http://x/" + strings.Repeat("x", n), Code: "WDJB-MJHT", URL: "http://ls.lan/d"}
		fr, err := layout(v, sizes[0])
		if err != nil {
			t.Fatal(err)
		}
		if fr.qr == nil || fr.qr.m < minModule {
			t.Fatalf("%d bytes: no QR of the short URL at >= %d px a module", n, minModule)
		}
		if got, err := decodeQR(fr.paint()); err != nil || got != "HTTP://LS.LAN/d" {
			t.Errorf("%d bytes: decoded %q, %v", n, got, err)
		}
		if got := texts(fr); !slices.Contains(got, "WDJB-MJHT") {
			t.Errorf("%d bytes: texts %q lack the code", n, got)
		}
	}
	// Nothing fits as a QR: the text page alone.
	v := View{Kind: Enrolling, QR: "http://x/" + strings.Repeat("x", 1000), Code: "WDJB-MJHT", URL: "http://x/" + strings.Repeat("y", 200)}
	fr, err := layout(v, sizes[0])
	if err != nil {
		t.Fatal(err)
	}
	if fr.qr != nil {
		t.Errorf("a QR of %d modules at %d px was drawn", len(fr.qr.bits), fr.qr.m)
	}
}

func TestFoldWrap(t *testing.T) {
	if got := fold("Zoë Müller\tØster Łódź Straße 日本"); got != "Zoe Muller Oster Lodz Strasse ??" {
		t.Errorf("fold = %q", got)
	}
	got := wrap("Printer not reachable at 10.0.0.7:9100 Supercalifragilistic", 10)
	want := []string{"Printer", "not", "reachable", "at", "10.0.0.7:9", "100", "Supercalif", "ragilistic"}
	if !slices.Equal(got, want) {
		t.Errorf("wrap = %q, want %q", got, want)
	}
	if got := chars(small, "10.0.0.2:8780/pair").lines(9); !slices.Equal(got, []string{"10.0.0.2:", "8780/pair"}) {
		t.Errorf("chars = %q", got)
	}
	if got := clip("Shelf tags aisle 4", 13); got != "Shelf tags.." {
		t.Errorf("clip = %q", got)
	}
}

func BenchmarkRender(b *testing.B) {
	for _, c := range []struct {
		name string
		kind Kind
		size image.Point
	}{
		{"Idle/128x64", Idle, image.Pt(128, 64)},
		{"List/128x64", List, image.Pt(128, 64)},
		{"Enrolling/128x64", Enrolling, image.Pt(128, 64)},
		{"Idle/320x240", Idle, image.Pt(320, 240)},
		{"Enrolling/320x240", Enrolling, image.Pt(320, 240)},
	} {
		v := sample()[c.kind]
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Render(v, c.size); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestFontInk re-measures the ink boxes the layout relies on: every
// printable ASCII glyph, thresholded, lies within top/h/adv, and some
// glyph touches each edge (so the boxes are not loose either).
func TestFontInk(t *testing.T) {
	for name, f := range map[string]*bitmapFont{"small": small, "large": large} {
		minY, maxY, minX, maxX := 1<<20, -1<<20, 1<<20, -1<<20
		for r := rune(0x20); r < 0x7f; r++ {
			dr, mask, mp, _, ok := f.face.Glyph(fixed.P(0, 0), r)
			if !ok {
				t.Fatalf("%s: no glyph for %q", name, r)
			}
			a := mask.(*image.Alpha)
			for y := range dr.Dy() {
				for x := range dr.Dx() {
					if a.AlphaAt(mp.X+x, mp.Y+y).A >= 0x80 {
						minY, maxY = min(minY, dr.Min.Y+y), max(maxY, dr.Min.Y+y)
						minX, maxX = min(minX, dr.Min.X+x), max(maxX, dr.Min.X+x)
					}
				}
			}
		}
		if minY != -f.top || maxY != f.h-f.top-1 || minX < 0 || maxX >= f.adv {
			t.Errorf("%s: ink rows %d..%d cols %d..%d, layout assumes rows %d..%d cols 0..%d",
				name, minY, maxY, minX, maxX, -f.top, f.h-f.top-1, f.adv-1)
		}
	}
}

// TestLongTextPages: text longer than the panel takes turns in pages that
// together show every word, marked "1/3" in the headline, instead of being
// cut off with "..".
func TestLongTextPages(t *testing.T) {
	msg := "The printer reported a problem that needs a person: open the lid, take out the old roll, load a new roll of labels and close the lid firmly until it clicks."
	v := View{Kind: Error, Title: "Paper out", Lines: []string{msg, "Your jobs wait."}, Now: now}
	for _, size := range sizes[:2] {
		n, err := Pages(v, size)
		if err != nil {
			t.Fatal(err)
		}
		if n < 2 {
			t.Fatalf("%v: %d pages for %d characters", size, n, len(msg))
		}
		if !Animated(v, size) {
			t.Errorf("%v: a paged screen must redraw as time passes", size)
		}
		var read []string
		for p := 0; p < n; p++ {
			w := v
			w.Now = time.Unix(0, 0).Add(time.Duration(p) * pageTime)
			ls, err := Text(w, size)
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("%d/%d", p+1, n); ls[0] != "Paper out" || ls[1] != want {
				t.Errorf("%v page %d: headline %q, want Paper out and %s", size, p, ls[:2], want)
			}
			for _, l := range ls[2:] {
				if strings.HasSuffix(l, "..") {
					t.Errorf("%v: clipped %q", size, l)
				}
			}
			read = append(read, ls[2:]...)
		}
		if got := strings.Join(read, " "); got != msg+" Your jobs wait." {
			t.Errorf("%v: pages read %q", size, got)
		}
	}
}
