package label

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"labelstation/label/bitmap"
)

// tsplImage decodes the one BITMAP of a TSPL raster label.
func tsplImage(t *testing.T, out []byte) image.Image {
	t.Helper()
	i := bytes.Index(out, []byte("BITMAP "))
	if i < 0 {
		t.Fatalf("no BITMAP in %q", out[:min(200, len(out))])
	}
	rest := out[i+len("BITMAP "):]
	var n [5]int
	for k := range n {
		j := bytes.IndexByte(rest, ',')
		v, err := strconv.Atoi(string(rest[:j]))
		if err != nil {
			t.Fatal(err)
		}
		n[k], rest = v, rest[j+1:]
	}
	b := &bitmap.Bitmap{W: n[2] * 8, H: n[3], Stride: n[2], Pix: make([]byte, n[2]*n[3])}
	for k := range b.Pix {
		b.Pix[k] = ^rest[k]
	}
	return b
}

// escposImage stacks the GS v 0 bands of an ESC/POS label.
func escposImage(t *testing.T, out []byte) image.Image {
	t.Helper()
	p := out[2 : len(out)-4]
	var pix []byte
	stride, h := 0, 0
	for len(p) > 0 {
		xb := int(binary.LittleEndian.Uint16(p[4:]))
		bh := int(binary.LittleEndian.Uint16(p[6:]))
		stride, h = xb, h+bh
		pix = append(pix, p[8:8+xb*bh]...)
		p = p[8+xb*bh:]
	}
	return &bitmap.Bitmap{W: stride * 8, H: h, Stride: stride, Pix: pix}
}

// decodeAll decodes the one symbol of each output language of l for rec:
// ZPL drawn by zebrash, TSPL and ESC/POS from their raster payload (TSPL
// native output is checked for its literal instead), and the PNG preview.
func decodeAll(t *testing.T, l *Layout, rec Record, sym string) map[string]string {
	t.Helper()
	got := map[string]string{}
	e := &l.Elements[0]
	v, _ := e.tmpl.string(rec)
	whole := symbolRect(t, e, v, 203)
	dec := func(src string, img image.Image) {
		s, err := decodeSymbol(img, whole, sym)
		if err != nil {
			dumpPNG(t, sym+"-"+src, img)
			got[src] = "error: " + err.Error()
			return
		}
		got[src] = s
	}
	zpl, err := Render(l, rec, Target{Lang: LangZPL})
	if err != nil {
		t.Fatal(err)
	}
	dec("zpl", zebrashPNG(t, zpl, l))
	tspl, err := Render(l, rec, Target{Lang: LangTSPL})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(tspl, []byte("BITMAP ")) {
		dec("tspl", tsplImage(t, tspl))
	} else {
		// Native: the literal must be the data, with only \["] for a quote.
		cmd := map[string]string{QR: "QRCODE", DataMatrix: "DMATRIX"}[sym]
		line := string(tspl[bytes.Index(tspl, []byte(cmd)):])
		line = line[:strings.Index(line, "\r\n")]
		lit := line[strings.Index(line, `,"`)+2 : len(line)-1]
		got["tspl"] = strings.ReplaceAll(lit, `\["]`, `"`)
	}
	esc, err := Render(l, rec, Target{Lang: LangESCPOS})
	if err != nil {
		t.Fatal(err)
	}
	dec("escpos", escposImage(t, esc))
	pngb, err := Render(l, rec, Target{Lang: LangPNG})
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(pngb))
	if err != nil {
		t.Fatal(err)
	}
	dec("png", img)
	if zbar, err := exec.LookPath("zbarimg"); err == nil {
		p := filepath.Join(t.TempDir(), "l.png")
		os.WriteFile(p, pngb, 0o644)
		out, err := exec.Command(zbar, "-q", "--raw", p).Output()
		if err != nil {
			got["zbarimg"] = "error: " + err.Error()
		} else {
			got["zbarimg"] = strings.TrimSuffix(string(out), "\n")
		}
	}
	return got
}

func code2DLayout(t *testing.T, sym string) *Layout {
	t.Helper()
	l, err := ParseLayout([]byte(fmt.Sprintf(`{"version":1,"id":"c","width_mm":60,"height_mm":60,"elements":[{"type":"barcode","symbology":%q,"x":6,"y":6,"data":"{v}","module":0.5}]}`, sym)))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Test2DCodesCarryExactBytes: newlines, tabs, quotes, TSPL and ZPL escape
// look-alikes and non-ASCII text decode to the same bytes from every
// printer language. zbarimg, when installed (Debian zbar-tools), is a
// second, independent reader of the preview; it and gozxing decode the
// non-ASCII QR codes correctly only because of the UTF-8 ECI header.
func Test2DCodesCarryExactBytes(t *testing.T) {
	if _, err := exec.LookPath("zbarimg"); err != nil {
		t.Log("zbarimg not on PATH (apt-get install zbar-tools): checking with gozxing only")
	}
	values := map[string][]string{
		QR:         {"line1\nline2", "CRLF\r\nend", "Zoë Ærø 李小龙 🏷", "Jos\u00e9\nM\u00fcller", `tab	q"uote" ~!x \[L] ^XZ _5E`, "PLAIN-123"},
		DataMatrix: {"line1\nline2", "GS1\x1d0101234", `quote" ~!x \[L]`, "PLAIN-123"},
	}
	for sym, vs := range values {
		l := code2DLayout(t, sym)
		for _, v := range vs {
			all := decodeAll(t, l, Record{"v": v}, sym)
			if len(all) < 4 {
				t.Errorf("%s %q: only %d outputs decoded", sym, v, len(all))
			}
			for src, got := range all {
				if src == "zbarimg" && sym == DataMatrix {
					continue // zbar reads no DataMatrix
				}
				if got != v {
					t.Errorf("%s %q via %s decodes to %q", sym, v, src, got)
				}
			}
		}
	}
	// A TSPL label whose QR data has a newline is a bitmap, never a space.
	out, _ := Render(code2DLayout(t, QR), Record{"v": "a\nb"}, Target{Lang: LangTSPL})
	if !bytes.Contains(out, []byte("BITMAP ")) || bytes.Contains(out, []byte(`"a b"`)) {
		t.Errorf("TSPL QR with a newline:\n%q", out[:min(len(out), 120)])
	}
	// Non-ASCII QR in ZPL is a ^GF graphic, not ^BQ without ECI.
	out, _ = Render(code2DLayout(t, QR), Record{"v": "李"}, Target{Lang: LangZPL})
	if bytes.Contains(out, []byte("^BQ")) || !bytes.Contains(out, []byte("^GF")) {
		t.Errorf("ZPL QR with non-ASCII data:\n%s", out)
	}
}

func TestDataMatrixRefusesNonASCII(t *testing.T) {
	_, err := Render(code2DLayout(t, DataMatrix), Record{"v": "Zoë"}, Target{Lang: LangZPL})
	if !errors.Is(err, ErrBarcodeData) || !strings.Contains(err.Error(), `'ë' at byte 2 is not ASCII`) {
		t.Errorf("err = %v", err)
	}
}

// TestQRModulesMatchesEncoder: the size validation computes equals the
// symbols the encoders make, across modes, lengths, levels and version
// boundaries.
func TestQRModulesMatchesEncoder(t *testing.T) {
	var inputs []string
	for _, n := range []int{1, 2, 3, 7, 14, 17, 20, 25, 26, 27, 34, 41, 42, 47, 48, 61, 77, 78, 100, 127, 154, 200, 271, 300, 500, 999} {
		inputs = append(inputs, strings.Repeat("7", n), strings.Repeat("AB1 ", n)[:n], strings.Repeat("ab", n)[:n], strings.Repeat("é", n)[:n-n%2])
	}
	inputs = append(inputs, "https://track.example.com/TRK0000000001", "Zoë 李小龙")
	for _, s := range inputs {
		if s == "" {
			continue
		}
		for _, ecc := range []string{"L", "M", "Q", "H"} {
			code, err := encodeBarcode(QR, s, ecc)
			got, gerr := qrSide(s, ecc)
			if (err != nil) != (gerr != nil) {
				t.Errorf("%q/%s: encoder error %v, computed %v", s, ecc, err, gerr)
				continue
			}
			if err == nil && (code.Bounds().Dx() != got || code.Bounds().Dy() != got) {
				t.Errorf("%q (%d bytes)/%s: encoder %v, computed %d", s, len(s), ecc, code.Bounds(), got)
			}
		}
	}
}
