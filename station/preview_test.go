package station

import (
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/oned"

	"labelstation/display"
	"labelstation/label"
	"labelstation/protocol"
)

// A bin label with one Code 128 barcode, the kind a warehouse previews before printing.
const binLayout = `{"version": 1, "id": "bin", "name": "Bin 50 x 25 mm", "width_mm": 50, "height_mm": 25,
  "elements": [
    {"type": "text", "x": 2, "y": 1.5, "text": "BIN {bin}", "font_pt": 9, "bold": true},
    {"type": "barcode", "symbology": "code128", "x": 3, "y": 7, "data": "{bin}", "height": 14, "module": 0.5}
  ]}`

// The preview screen is drawn from the job's own layout and first record with the printer's
// renderer, and its barcode still decodes on the panel (gozxing, and zbarimg where installed)
// on the 250x122 and 240x240 panels. On a 128x64 panel a 0.5 mm module falls under one pixel:
// the preview shows the label's layout there, not a scannable code (logged, not asserted).
func TestPreviewBarcodeDecodes(t *testing.T) {
	j := protocol.Job{Layout: []byte(binLayout), Format: "csv", Data: []byte("bin\nA17\nB22\n")}
	lbl, err := firstLabel(j, label.Target{Lang: label.LangZPL, DPI: 203})
	if err != nil {
		t.Fatal(err)
	}
	_, zerr := exec.LookPath("zbarimg")
	if zerr != nil {
		t.Log("zbarimg not on PATH (apt-get install zbar-tools): checking with gozxing only")
	}
	for _, size := range []image.Point{{128, 64}, {250, 122}, {240, 240}, {64, 128}} {
		m := Model{Phase: Preview, Online: true, Title: "Bins", PreviewJob: "1", PreviewImage: lbl}
		img, err := display.Render(ViewOf(m, t0, "Dock 3"), size)
		if err != nil {
			t.Fatal(err)
		}
		// A quiet zone around the panel, as a phone camera sees it against the bezel.
		pad := image.NewGray(image.Rect(0, 0, size.X+40, size.Y+40))
		for i := range pad.Pix {
			pad.Pix[i] = 0xff
		}
		for y := range size.Y {
			copy(pad.Pix[(y+20)*pad.Stride+20:], img.Pix[y*img.Stride:y*img.Stride+size.X])
		}
		report := t.Errorf
		if size.X < 200 {
			report = t.Logf
		}
		got, err := decode128(pad)
		if err != nil || got != "A17" {
			report("%v: gozxing read %q, %v; want A17", size, got, err)
		} else {
			t.Logf("%v: gozxing read %q", size, got)
		}
		if zerr == nil {
			z, err := zbar1D(t, pad)
			if err != nil || z != "CODE-128:A17" {
				report("%v: zbarimg read %q, %v; want CODE-128:A17", size, z, err)
			} else {
				t.Logf("%v: zbarimg read %q", size, z)
			}
		}
	}
}

func decode128(img image.Image) (string, error) {
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", err
	}
	r, err := oned.NewCode128Reader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil {
		return "", err
	}
	return r.GetText(), nil
}

func zbar1D(t *testing.T, img image.Image) (string, error) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "preview.png")
	if err := writePNG(f, img); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("zbarimg", "--quiet", f).Output()
	if err != nil {
		return "", err
	}
	return string(trimNL(out)), nil
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func writePNG(path string, img image.Image) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
