package bitmap

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"fmt"
	"image"
	"image/png"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ingridhq/zebrash"
	"github.com/ingridhq/zebrash/drawers"
)

// tiny is a 10×2 bitmap with dots (0,0) and (9,1): rows 0x80 0x00 and
// 0x00 0x40, two bytes per row.
func tiny() *Bitmap {
	b := New(10, 2)
	b.Set(0, 0)
	b.Set(9, 1)
	return b
}

// Byte sequences below are derived by hand from the command references
// cited on each encoder, for the tiny bitmap.
func TestEncodersTiny(t *testing.T) {
	b := tiny()
	if !bytes.Equal(b.Pix, []byte{0x80, 0x00, 0x00, 0x40}) {
		t.Fatalf("Pix = % x", b.Pix)
	}
	cases := []struct {
		name string
		got  []byte
		want string
	}{
		// GS v 0, m=0, xL xH = 2 0, yL yH = 2 0, data.
		{"escpos", AppendESCPOS(nil, b), "\x1dv0\x00\x02\x00\x02\x00\x80\x00\x00\x40"},
		// TSPL inverts: 0 prints.
		{"tspl", AppendTSPL(nil, 3, 4, b), "BITMAP 3,4,2,2,0,\x7f\xff\xff\xbf\r\n"},
		{"zpl hex", AppendZPL(nil, b, ZPLHex), "^GFA,4,4,2,80000040"},
		// Row 0 "8000": '8' then zeros to the end (','); row 1 "0040":
		// two '0' (H = 2), '4', zeros to the end.
		{"zpl acs", AppendZPL(nil, b, ZPLACS), "^GFA,4,4,2,8,H04,"},
	}
	for _, c := range cases {
		if string(c.got) != c.want {
			t.Errorf("%s: got %q, want %q", c.name, c.got, c.want)
		}
	}
}

func TestACSRuns(t *testing.T) {
	// One row of 420 hex 'F' (210 bytes of 0xFF) then a repeated row.
	b := New(210*8, 2)
	for y := range 2 {
		for x := range b.W {
			b.Set(x, y)
		}
	}
	got := string(appendACS(nil, b))
	// 420 = 419 (z = 400, Y = 19) + 1.
	if want := "zYFF:"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestZ64RoundTrip(t *testing.T) {
	data := bytes.Repeat([]byte("label station "), 100)
	s := string(AppendZ64(nil, data))
	if !strings.HasPrefix(s, ":Z64:") {
		t.Fatalf("no :Z64: prefix: %q", s)
	}
	body := s[5:strings.LastIndexByte(s, ':')]
	crc := s[strings.LastIndexByte(s, ':')+1:]
	if want := fmt.Sprintf("%04X", crc16([]byte(body))); crc != want {
		t.Errorf("crc %s, want %s", crc, want)
	}
	raw, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zlib.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	back, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(back, data) {
		t.Errorf("round trip failed: %v", err)
	}
}

// CRC-16/XMODEM check value from the CRC catalogue: "123456789" -> 0x31C3.
func TestCRC16(t *testing.T) {
	if got := crc16([]byte("123456789")); got != 0x31C3 {
		t.Errorf("crc16 = %04X, want 31C3", got)
	}
}

// TestZPLGraphicThroughZebrash draws a random-ish bitmap as ^GF in every
// encoding with an independent renderer and compares every dot.
func TestZPLGraphicThroughZebrash(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	b := New(203, 120)
	for y := 0; y < b.H; y++ {
		for x := 0; x < b.W; x++ {
			// Blocks, stripes and noise: runs, repeats and literal bytes.
			if (x/16+y/16)%2 == 0 && y < 60 || y >= 90 && rng.IntN(3) == 0 || y >= 60 && y < 90 && x%5 == 0 {
				b.Set(x, y)
			}
		}
	}
	for _, enc := range []ZPLEncoding{ZPLHex, ZPLACS, ZPLZ64, ZPLAuto} {
		zpl := append([]byte("^XA^FO0,0"), AppendZPL(nil, b, enc)...)
		zpl = append(zpl, "^FS^XZ"...)
		labels, err := zebrash.NewParser().Parse(zpl)
		if err != nil || len(labels) != 1 {
			t.Fatalf("enc %d: parse: %v (%d labels)", enc, err, len(labels))
		}
		var buf bytes.Buffer
		if err := zebrash.NewDrawer().DrawLabelAsPng(labels[0], &buf, drawers.DrawerOptions{LabelWidthMm: 203.0 / 8, LabelHeightMm: 120.0 / 8, Dpmm: 8}); err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(&buf)
		if err != nil {
			t.Fatal(err)
		}
		diff := 0
		for y := 0; y < b.H; y++ {
			for x := 0; x < b.W; x++ {
				r, _, _, _ := img.At(x, y).RGBA()
				if (r < 0x8000) != b.Black(x, y) {
					diff++
				}
			}
		}
		if diff != 0 {
			t.Errorf("enc %d: %d dots differ", enc, diff)
		}
	}
}

func TestRotateAndPNG(t *testing.T) {
	one := New(10, 2)
	one.Set(0, 0)
	for deg, want := range map[int]image.Point{0: {0, 0}, 90: {1, 0}, 180: {9, 1}, 270: {0, 9}} {
		r := one.Rotate(deg)
		n := 0
		for y := 0; y < r.H; y++ {
			for x := 0; x < r.W; x++ {
				if r.Black(x, y) {
					n++
				}
			}
		}
		if !r.Black(want.X, want.Y) || n != 1 {
			t.Errorf("rotate %d: dot not (only) at %v", deg, want)
		}
	}
	b := tiny()
	var buf bytes.Buffer
	if err := EncodePNG(&buf, b); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for y := 0; y < 2; y++ {
		for x := 0; x < 10; x++ {
			r, _, _, _ := img.At(x, y).RGBA()
			if (r == 0) != b.Black(x, y) {
				t.Errorf("png dot (%d,%d) differs", x, y)
			}
		}
	}
	fi := FromImage(img, 10, 2)
	if !bytes.Equal(fi.Pix, b.Pix) {
		t.Errorf("FromImage = % x", fi.Pix)
	}
	if got := FromImage(image.NewRGBA(image.Rect(0, 0, 4, 4)), 4, 4); got.Pix[0] != 0 {
		t.Error("transparent pixels became black")
	}
}

func TestFillRect(t *testing.T) {
	b := New(30, 3)
	b.FillRect(image.Rect(3, 1, 27, 2))
	for y := 0; y < 3; y++ {
		for x := 0; x < 30; x++ {
			if b.Black(x, y) != (y == 1 && x >= 3 && x < 27) {
				t.Fatalf("dot (%d,%d) wrong", x, y)
			}
		}
	}
}

// TestFillRectMatchesSet compares the masked fill with dot-by-dot Set for
// rectangles of every alignment, including ones that leave the bitmap.
func TestFillRectMatchesSet(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 500 {
		w, h := 1+rng.IntN(40), 1+rng.IntN(4)
		r := image.Rect(rng.IntN(w+4)-2, rng.IntN(h+2)-1, rng.IntN(w+4)-2, rng.IntN(h+2)-1).Canon()
		a, b := New(w, h), New(w, h)
		a.FillRect(r)
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				b.Set(x, y)
			}
		}
		if !bytes.Equal(a.Pix, b.Pix) {
			t.Fatalf("%dx%d %v: got % x, want % x", w, h, r, a.Pix, b.Pix)
		}
	}
}
