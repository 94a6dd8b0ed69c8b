package label

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/png"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/code128"
	"github.com/boombuler/barcode/qr"
	"github.com/go-pdf/fpdf"

	"labelstation/drivers/printer/simprinter"
	"labelstation/label/bitmap"
)

const (
	carrierTracking = "1Z999AA10123456784"
	carrierQR       = "https://track.example.com/1Z999AA10123456784?lang=de"
)

// carrierPDF is a 4×6 in label as carriers hand them out: text, a vector
// Code 128 (bars drawn as rectangles), and a QR code embedded as an image.
func carrierPDF(t *testing.T, pages int) []byte {
	t.Helper()
	pdf := fpdf.NewCustom(&fpdf.InitType{UnitStr: "mm", Size: fpdf.SizeType{Wd: 101.6, Ht: 152.4}})
	pdf.SetMargins(0, 0, 0)
	pdf.SetAutoPageBreak(false, 0)
	q, err := qr.Encode(carrierQR, qr.M, qr.Auto)
	if err != nil {
		t.Fatal(err)
	}
	q, _ = barcode.Scale(q, q.Bounds().Dx()*8, q.Bounds().Dy()*8)
	var qbuf bytes.Buffer
	png.Encode(&qbuf, q)
	pdf.RegisterImageOptionsReader("qr", fpdf.ImageOptions{ImageType: "PNG"}, &qbuf)
	for range pages {
		pdf.AddPage()
		pdf.SetFont("Helvetica", "B", 14)
		pdf.Text(8, 12, "UPS GROUND")
		pdf.SetFont("Helvetica", "", 10)
		pdf.Text(8, 20, "SHIP TO: Ada Lovelace, 1 Road, 10115 Berlin")
		code, err := code128.Encode(carrierTracking)
		if err != nil {
			t.Fatal(err)
		}
		const module = 0.375 // 3 dots at 203 dpi
		x0, y0 := 8.0, 30.0
		for i := 0; i < code.Bounds().Dx(); i++ {
			if r, _, _, _ := code.At(i, 0).RGBA(); r == 0 {
				pdf.Rect(x0+float64(i)*module, y0, module, 25, "F")
			}
		}
		pdf.ImageOptions("qr", 30, 80, 40, 40, false, fpdf.ImageOptions{ImageType: "PNG"}, 0, "")
	}
	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func needPdftoppm(t *testing.T) {
	if _, err := exec.LookPath("pdftoppm"); err != nil {
		t.Skip("pdftoppm not on PATH (apt-get install poppler-utils)")
	}
}

func decodeBoth(t *testing.T, name string, img image.Image) {
	t.Helper()
	all := image.Rect(0, 0, 1<<15, 1<<15)
	if got, err := decodeSymbol(img, all, Code128); err != nil || got != carrierTracking {
		dumpPNG(t, name, img)
		t.Errorf("%s: code128 = %q, %v", name, got, err)
	}
	if got, err := decodeSymbol(img, all, QR); err != nil || got != carrierQR {
		dumpPNG(t, name, img)
		t.Errorf("%s: qr = %q, %v", name, got, err)
	}
}

// TestPDFToSimPrinter prints a carrier PDF to the simulated ZPL printer over
// TCP, draws what it received with zebrash, and decodes the Code 128 and the
// QR code to the values in the PDF. ESC/POS and TSPL get the same page.
func TestPDFToSimPrinter(t *testing.T) {
	needPdftoppm(t)
	doc := carrierPDF(t, 2)
	opt := DocOptions{WidthMM: 101.6, HeightMM: 152.4}
	labels, err := RenderDocument(context.Background(), DocPDF, doc, opt, Target{Lang: LangZPL, DPI: 203})
	if err != nil {
		t.Fatal(err)
	}
	if len(labels) != 2 {
		t.Fatalf("%d labels for 2 pages", len(labels))
	}
	sim, err := simprinter.Listen("127.0.0.1:0", simprinter.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	conn, err := net.Dial("tcp", sim.Addr())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range labels {
		conn.Write(l)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := sim.WaitLabels(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	lay := &Layout{WidthMM: 101.6, HeightMM: 152.4}
	for _, z := range got {
		decodeBoth(t, "zpl-page", zebrashPNG(t, []byte(z), lay))
	}
	esc, err := RenderDocument(context.Background(), DocPDF, doc, opt, Target{Lang: LangESCPOS, DPI: 203})
	if err != nil {
		t.Fatal(err)
	}
	decodeBoth(t, "escpos-page", escposImage(t, esc[0]))
	ts, err := RenderDocument(context.Background(), DocPDF, doc, opt, Target{Lang: LangTSPL, DPI: 300})
	if err != nil {
		t.Fatal(err)
	}
	decodeBoth(t, "tspl-page", tsplImage(t, ts[0]))
}

func TestPDFRefused(t *testing.T) {
	needPdftoppm(t)
	doc := carrierPDF(t, 1)
	opt := DocOptions{WidthMM: 101.6, HeightMM: 152.4}
	tg := Target{Lang: LangZPL}
	for name, bad := range map[string][]byte{
		"cut in half":    doc[:len(doc)/2],
		"not a pdf":      []byte("<html>label</html>"),
		"body corrupted": append(append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("garbage "), 100)...), "\n%%EOF\n"...),
		"header mangled": append([]byte("%PDX"), doc[4:]...),
		"xref garbage":   bytes.Replace(doc, []byte("obj"), []byte("jbo"), -1),
	} {
		if _, err := RenderDocument(context.Background(), DocPDF, bad, opt, tg); !errors.Is(err, ErrDocument) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Without pdftoppm the job gets a clear status, not a crash.
	t.Setenv("PATH", t.TempDir())
	_, err := RenderDocument(context.Background(), DocPDF, doc, opt, tg)
	if !errors.Is(err, ErrNoRenderer) || !strings.Contains(err.Error(), "poppler-utils") {
		t.Errorf("no renderer: %v", err)
	}
}

// TestPNGDocument: a web shop's 2×3 in label at 101.5 dpi (half the
// printer's resolution) is enlarged by exactly 2 and still decodes; a
// landscape image on portrait stock is turned.
func TestPNGDocument(t *testing.T) {
	needPdftoppm(t) // the PNG is made from the carrier PDF
	pages, err := Pdftoppm{}.RenderPDF(context.Background(), carrierPDF(t, 1), 101)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	png.Encode(&buf, pages[0])
	opt := DocOptions{WidthMM: 101.6, HeightMM: 152.4}
	out, err := RenderDocument(context.Background(), DocPNG, buf.Bytes(), opt, Target{Lang: LangPNG, DPI: 203})
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(out[0]))
	if err != nil {
		t.Fatal(err)
	}
	decodeBoth(t, "png-doubled", img)
	// Landscape: rotate the page image and print on portrait stock.
	src := bitmapOf(pages[0]).Rotate(90)
	buf.Reset()
	png.Encode(&buf, src)
	out, err = RenderDocument(context.Background(), DocPNG, buf.Bytes(), opt, Target{Lang: LangPNG, DPI: 203})
	if err != nil {
		t.Fatal(err)
	}
	img, _ = png.Decode(bytes.NewReader(out[0]))
	if b := img.Bounds(); b.Dx() != 812 || b.Dy() != 1218 {
		t.Errorf("label is %v", b)
	}
	decodeBoth(t, "png-turned", img)
	if _, err := RenderDocument(context.Background(), DocPNG, []byte("\x89PNG\r\n\x1a\nshort"), opt, Target{Lang: LangPNG}); !errors.Is(err, ErrDocument) {
		t.Errorf("truncated png: %v", err)
	}
}

func bitmapOf(img image.Image) *bitmap.Bitmap {
	b := img.Bounds()
	return bitmap.FromImage(img, b.Dx(), b.Dy())
}

const carrierZPL = "~DGR:LOGO.GRF,00004,001,F0F0F0F0\n" +
	"^XA^FO50,50^XGR:LOGO.GRF,1,1^FS^FO50,120^A0N,40,40^FDSHIP TO: Ada^FS^BY3^FO50,200^BCN,120,Y,N,N^FD1Z999AA10123456784^FS^XZ\r\n" +
	"^XA^FO50,50^A0N,40,40^FDPage 2^FS^XZ\n"

// TestZPLPassThrough: a carrier's ZPL reaches the printer byte for byte;
// hostile or truncated ZPL and ZPL for another printer language are refused.
func TestZPLPassThrough(t *testing.T) {
	labels, err := RenderDocument(context.Background(), DocZPL, []byte(carrierZPL), DocOptions{}, Target{Lang: LangZPL})
	if err != nil {
		t.Fatal(err)
	}
	if len(labels) != 2 || string(bytes.Join(labels, nil)) != carrierZPL {
		t.Fatalf("labels %q do not join to the document", labels)
	}
	sim, err := simprinter.Listen("127.0.0.1:0", simprinter.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	conn, err := net.Dial("tcp", sim.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write(bytes.Join(labels, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := sim.WaitLabels(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(carrierZPL, got[0]) || !strings.Contains(carrierZPL, got[1]) || !strings.HasSuffix(got[1], "^XZ") {
		t.Errorf("the printer got %q", got)
	}
	for name, bad := range map[string]string{
		"saves settings":     "^XA^FDx^FS^JUS^XZ",
		"resets the printer": "~JR^XA^FDx^FS^XZ",
		"network settings":   "^XA^NSS,10.0.0.9,255.0.0.0,10.0.0.1^XZ",
		"cut short":          "^XA^FO50,50^FDhalf a lab",
		"text outside":       "hello ^XA^FDx^FS^XZ",
		"nested label":       "^XA^FDx^XA^FS^XZ",
		"control byte":       "^XA^FDx\x1b^FS^XZ",
		"empty":              "  \n",
	} {
		if _, err := SplitZPLDocument([]byte(bad)); !errors.Is(err, ErrDocument) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := RenderDocument(context.Background(), DocZPL, []byte(carrierZPL), DocOptions{}, Target{Lang: LangTSPL}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("zpl to a tspl printer: %v", err)
	}
}

func TestTSPLPassThrough(t *testing.T) {
	doc := "SIZE 101.6 mm,152.4 mm\r\nGAP 3 mm,0\r\nCLS\r\nTEXT 50,50,\"0\",0,12,12,\"Ada, \\[\"]Ship\\[\"]\"\r\nBARCODE 50,100,\"128\",100,1,0,3,3,\"1Z999\"\r\nPRINT 1,1\r\nCLS\r\nTEXT 50,50,\"0\",0,12,12,\"page 2\"\r\nPRINT 1\r\n"
	labels, err := RenderDocument(context.Background(), DocTSPL, []byte(doc), DocOptions{}, Target{Lang: LangTSPL})
	if err != nil {
		t.Fatal(err)
	}
	if len(labels) != 2 || string(bytes.Join(labels, nil)) != doc {
		t.Fatalf("labels %q", labels)
	}
	for name, bad := range map[string]string{
		"no print":         "SIZE 4 mm,4 mm\r\nCLS\r\nTEXT 1,1,\"0\",0,1,1,\"x\"\r\n",
		"set command":      "SET COUNTER @1 1\r\nCLS\r\nPRINT 1\r\n",
		"immediate":        "~!T\r\nCLS\r\nPRINT 1\r\n",
		"bitmap cut":       "CLS\r\nBITMAP 0,0,10,10,0,\x00\x01",
		"after last print": "CLS\r\nPRINT 1\r\nCLS\r\n",
	} {
		if _, err := SplitTSPLDocument([]byte(bad)); !errors.Is(err, ErrDocument) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
