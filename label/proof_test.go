package label

import (
	"bytes"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/ingridhq/zebrash"
	"github.com/ingridhq/zebrash/drawers"
	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/datamatrix"
	"github.com/makiuchi-d/gozxing/oned"
	"github.com/makiuchi-d/gozxing/qrcode"
)

// The proof: render each example layout with its example data, once as
// native ZPL drawn by an independent ZPL renderer (zebrash) and once as our
// own PNG preview, and decode every symbol with an independent decoder
// (gozxing). The decoded text must equal the record's data.
//
// Known gaps, by the tools and not by us: zebrash does not implement ^BE
// (EAN-13) or ^BU (UPC-A), and gozxing has no PDF417 decoder. Those symbols
// are checked on our preview (EAN/UPC) or not decoded (PDF417).

type proofCase struct {
	layout, data string
	format       Format
}

var proofCases = []proofCase{
	{"shipping.json", "shipping.csv", FormatCSV},
	{"badge-test.json", "badge-test.json", FormatJSON},
	{"product.json", "products.xml", FormatXML},
	{"product.json", "products.json", FormatJSON},
	{"product.json", "products.xlsx", FormatXLSX},
}

func TestProofZebrashAndPreview(t *testing.T) {
	decoded := 0
	for _, pc := range proofCases {
		l := loadExample(t, pc.layout)
		recs := readAll(t, pc.format, exampleData(t, pc.data), ReadOptions{})
		if len(recs) == 0 {
			t.Fatalf("%s: no records", pc.data)
		}
		for ri, rec := range recs {
			name := fmt.Sprintf("%s+%s#%d", pc.layout, pc.data, ri+1)
			zpl, err := Render(l, rec, Target{Lang: LangZPL, DPI: 203})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			zimg := zebrashPNG(t, zpl, l)
			pimg, err := RenderBitmap(l, rec, 203)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			for i := range l.Elements {
				e := &l.Elements[i]
				if e.Kind != KindBarcode || e.Symbology == PDF417 {
					continue
				}
				v, err := e.tmpl.string(rec)
				if err != nil {
					t.Fatal(err)
				}
				want, err := checkBarcodeData(e.Symbology, v)
				if err != nil {
					t.Fatal(err)
				}
				r := symbolRect(t, e, want, 203)
				images := map[string]image.Image{"preview": pimg}
				if e.Symbology != EAN13 && e.Symbology != UPCA {
					images["zebrash"] = zimg
				}
				for src, img := range images {
					got, err := decodeSymbol(img, r, e.Symbology)
					if err != nil {
						dumpPNG(t, name+"-"+src, img)
						t.Errorf("%s: elements[%d] %s in %s: %v", name, i, e.Symbology, src, err)
						continue
					}
					if got != want {
						t.Errorf("%s: elements[%d] %s in %s decodes to %q, want %q", name, i, e.Symbology, src, got, want)
					}
					decoded++
				}
			}
		}
	}
	if decoded < 20 {
		t.Errorf("only %d symbols decoded", decoded)
	}
}

func zebrashPNG(t *testing.T, zpl []byte, l *Layout) image.Image {
	t.Helper()
	labels, err := zebrash.NewParser().Parse(zpl)
	if err != nil {
		t.Fatalf("zebrash parse: %v", err)
	}
	if len(labels) != 1 {
		t.Fatalf("zebrash sees %d labels, want 1", len(labels))
	}
	var buf bytes.Buffer
	err = zebrash.NewDrawer().DrawLabelAsPng(labels[0], &buf, drawers.DrawerOptions{LabelWidthMm: l.WidthMM, LabelHeightMm: l.HeightMM, Dpmm: 8})
	if err != nil {
		t.Fatalf("zebrash draw: %v", err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// symbolRect is where the symbol is, from the layout and our own encoding,
// plus a quiet zone and slack for a renderer that picks other code sets.
func symbolRect(t *testing.T, e *Element, data string, dpi int) image.Rectangle {
	code, err := encodeBarcode(e.Symbology, data, e.ECC)
	if err != nil {
		t.Fatal(err)
	}
	m := min(max(dots(e.Module, dpi), 1), 10)
	x, y := dots(e.X, dpi), dots(e.Y, dpi)
	w := code.Bounds().Dx() * m
	h := code.Bounds().Dy() * m
	q := dots(2, dpi)
	if e.Symbology != QR && e.Symbology != DataMatrix {
		// Linear: a band through the bars, without the human-readable line.
		h = dots(e.Height, dpi)
		return image.Rect(x-q, y+2, x+w*6/5+q, y+h-2)
	}
	return image.Rect(x-q, y-q, x+w+q, y+h+q)
}

func decodeSymbol(img image.Image, r image.Rectangle, sym string) (string, error) {
	r = r.Intersect(img.Bounds())
	crop := image.NewGray(image.Rect(0, 0, r.Dx(), r.Dy()))
	draw.Draw(crop, crop.Bounds(), img, r.Min, draw.Src)
	bmp, err := gozxing.NewBinaryBitmapFromImage(crop)
	if err != nil {
		return "", err
	}
	var rd gozxing.Reader
	switch sym {
	case Code128:
		rd = oned.NewCode128Reader()
	case EAN13:
		rd = oned.NewEAN13Reader()
	case UPCA:
		rd = oned.NewUPCAReader()
	case Code39:
		rd = oned.NewCode39Reader()
	case QR:
		rd = qrcode.NewQRCodeReader()
	case DataMatrix:
		rd = datamatrix.NewDataMatrixReader()
	default:
		return "", fmt.Errorf("no decoder for %s", sym)
	}
	hints := map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true}
	res, err := rd.Decode(bmp, hints)
	if err != nil {
		return "", err
	}
	return res.GetText(), nil
}

// dumpPNG keeps a failing image for a person to look at.
func dumpPNG(t *testing.T, name string, img image.Image) {
	p := filepath.Join(t.TempDir(), filepath.Base(name)+".png")
	var buf bytes.Buffer
	png.Encode(&buf, img)
	os.WriteFile(p, buf.Bytes(), 0o644)
	if dir := os.Getenv("LABEL_DUMP_DIR"); dir != "" {
		os.WriteFile(filepath.Join(dir, filepath.Base(name)+".png"), buf.Bytes(), 0o644)
	}
}
