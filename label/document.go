package label

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"labelstation/label/bitmap"
)

// Document formats: ready-made labels (a carrier's ZPL or PDF, a web shop's
// PNG) printed as they are instead of a layout filled with records.
const (
	DocZPL  Format = "zpl"
	DocTSPL Format = "tspl"
	DocPDF  Format = "pdf"
	DocPNG  Format = "png"
)

// IsDocument reports whether format names a ready-made document.
func IsDocument(format string) bool {
	f, err := ParseDocFormat(format)
	return err == nil && f != ""
}

// ParseDocFormat accepts a document format name or media type; "" with a
// nil error means format is not a document format.
func ParseDocFormat(s string) (Format, error) {
	switch strings.ToLower(strings.TrimSpace(strings.SplitN(s, ";", 2)[0])) {
	case "zpl", "application/zpl", "text/zpl", "application/x-zpl":
		return DocZPL, nil
	case "tspl", "application/tspl", "text/tspl":
		return DocTSPL, nil
	case "pdf", "application/pdf":
		return DocPDF, nil
	case "png", "image/png":
		return DocPNG, nil
	}
	return "", nil
}

// ErrDocument is wrapped when a document is malformed, truncated or
// contains commands a job must not send.
var ErrDocument = errors.New("label: document refused")

// ErrNoRenderer is wrapped when the program that rasterises a document
// (pdftoppm for PDF) is not installed: a clear job status, not a crash.
var ErrNoRenderer = errors.New("label: document renderer missing")

// Document limits.
const (
	MaxDocumentBytes = 32 << 20
	MaxDocumentPages = 500
	pdfTimeout       = 2 * time.Minute
)

// zplDenied are commands that change a printer beyond the label being
// printed (saved settings, network, files, passwords, resets): a
// submitted document must not reconfigure the fleet. Names are upper
// case, with their prefix.
var zplDenied = []string{
	"^JU", "^JZ", "^ID", "^KP", "^KN", "^KL", "^NC", "^NI", "^NN", "^NP", "^NS", "^NT", "^NW", "^NB",
	"^SC", "^SE", "^SZ", "^WI", "^WP", "^JJ", "^HZ", "^DF",
	"~JR", "~JC", "~JD", "~JE", "~JG", "~JL", "~JN", "~JO", "~JP", "~JS", "~JX", "~WC", "~WR", "~RO", "~NC", "~NT", "~KB", "~SD",
}

// SplitZPLDocument checks a ZPL document and returns its labels: each a
// complete ^XA…^XZ block, with the white space before it, so the labels
// joined are the document byte for byte. Text outside a block, a block
// cut short, a control byte other than white space, and a command of
// zplDenied are refused. ~DG/~DY downloads (graphics a label recalls with
// ^XG) may precede a block.
func SplitZPLDocument(doc []byte) ([][]byte, error) {
	if len(doc) > MaxDocumentBytes {
		return nil, fmt.Errorf("%w: zpl: %d bytes, more than %d", ErrDocument, len(doc), MaxDocumentBytes)
	}
	for i, c := range doc {
		if c < 0x20 && c != '\r' && c != '\n' && c != '\t' || c == 0x7f {
			return nil, fmt.Errorf("%w: zpl: control byte 0x%02X at offset %d", ErrDocument, c, i)
		}
	}
	up := []byte(asciiUpper(string(doc)))
	for _, cmd := range zplDenied {
		if i := bytes.Index(up, []byte(cmd)); i >= 0 {
			return nil, fmt.Errorf("%w: zpl: %s at offset %d changes the printer's settings; a job may not send it", ErrDocument, cmd, i)
		}
	}
	var labels [][]byte
	start := 0 // of the current label, white space before ^XA included
	for pos := 0; pos < len(up); {
		rest := up[pos:]
		trim := bytes.TrimLeft(rest, " \t\r\n")
		pos += len(rest) - len(trim)
		if len(trim) == 0 {
			break
		}
		if bytes.HasPrefix(trim, []byte("~DG")) || bytes.HasPrefix(trim, []byte("~DY")) {
			// A download ends where the next command starts.
			next := bytes.IndexAny(trim[3:], "^~")
			if next < 0 {
				return nil, fmt.Errorf("%w: zpl: download at offset %d is not followed by a label", ErrDocument, pos)
			}
			pos += 3 + next
			continue
		}
		if !bytes.HasPrefix(trim, []byte("^XA")) {
			return nil, fmt.Errorf("%w: zpl: %q at offset %d is outside a ^XA…^XZ label", ErrDocument, string(doc[pos:pos+min(len(trim), 12)]), pos)
		}
		end := bytes.Index(trim[3:], []byte("^XZ"))
		if end < 0 {
			return nil, fmt.Errorf("%w: zpl: the label starting at offset %d has no ^XZ (cut short?)", ErrDocument, pos)
		}
		if inner := bytes.Index(trim[3:3+end], []byte("^XA")); inner >= 0 {
			return nil, fmt.Errorf("%w: zpl: ^XA at offset %d inside the label starting at offset %d", ErrDocument, pos+3+inner, pos)
		}
		pos += 3 + end + 3
		labels = append(labels, doc[start:pos])
		start = pos
		if len(labels) > MaxDocumentPages {
			return nil, fmt.Errorf("%w: zpl: more than %d labels", ErrDocument, MaxDocumentPages)
		}
	}
	if len(labels) == 0 {
		return nil, fmt.Errorf("%w: zpl: no ^XA…^XZ label", ErrDocument)
	}
	// White space after the last ^XZ belongs to the last label.
	last := len(labels) - 1
	labels[last] = doc[start-len(labels[last]):]
	return labels, nil
}

// tsplAllowed are the TSPL commands a document may use: label setup,
// drawing, and PRINT. Anything else (SET, DOWNLOAD, KILL, ~! …) is refused.
var tsplAllowed = []string{
	"SIZE", "GAP", "BLINE", "OFFSET", "SPEED", "DENSITY", "DIRECTION", "REFERENCE", "SHIFT", "CODEPAGE", "CLS",
	"TEXT", "BLOCK", "BARCODE", "QRCODE", "DMATRIX", "PDF417", "AZTEC", "MAXICODE", "BITMAP", "BAR", "BOX",
	"CIRCLE", "ELLIPSE", "ERASE", "REVERSE", "DIAGONAL", "PUTBMP", "PUTPCX", "PRINT", "FEED", "EOP",
}

// SplitTSPLDocument checks a TSPL document and returns its labels, each
// ending with a PRINT line; joined they are the document byte for byte.
func SplitTSPLDocument(doc []byte) ([][]byte, error) {
	if len(doc) > MaxDocumentBytes {
		return nil, fmt.Errorf("%w: tspl: %d bytes, more than %d", ErrDocument, len(doc), MaxDocumentBytes)
	}
	var labels [][]byte
	start := 0
	for pos := 0; pos < len(doc); {
		nl := bytes.IndexByte(doc[pos:], '\n')
		end := len(doc)
		if nl >= 0 {
			end = pos + nl + 1
		}
		line := strings.TrimSpace(string(doc[pos:end]))
		word := ""
		if fields := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == ',' }); len(fields) > 0 {
			word = strings.ToUpper(fields[0])
		}
		if line != "" {
			if !slices.Contains(tsplAllowed, word) {
				return nil, fmt.Errorf("%w: tspl: command %q at offset %d is not allowed in a job", ErrDocument, word, pos)
			}
			if word == "BITMAP" {
				// Binary payload: widthBytes×height bytes after the fifth comma.
				var x, y, wb, h, mode int
				hdr := doc[pos:]
				if _, err := fmt.Sscanf(string(hdr[:min(len(hdr), 64)]), "BITMAP %d,%d,%d,%d,%d,", &x, &y, &wb, &h, &mode); err != nil || wb <= 0 || h <= 0 {
					return nil, fmt.Errorf("%w: tspl: BITMAP at offset %d: bad header", ErrDocument, pos)
				}
				commas := 0
				i := 0
				for ; i < len(hdr) && commas < 5; i++ {
					if hdr[i] == ',' {
						commas++
					}
				}
				// h > rest/wb rather than wb*h > rest: the product can wrap int.
				if rest := len(doc) - pos - i; h > rest/wb {
					return nil, fmt.Errorf("%w: tspl: BITMAP at offset %d is cut short", ErrDocument, pos)
				}
				end = pos + i + wb*h
				for end < len(doc) && (doc[end] == '\r' || doc[end] == '\n') {
					end++
				}
			} else {
				for _, c := range []byte(line) {
					if c < 0x20 && c != '\t' {
						return nil, fmt.Errorf("%w: tspl: control byte 0x%02X at offset %d", ErrDocument, c, pos)
					}
				}
			}
			if word == "PRINT" {
				labels = append(labels, doc[start:end])
				start = end
				if len(labels) > MaxDocumentPages {
					return nil, fmt.Errorf("%w: tspl: more than %d labels", ErrDocument, MaxDocumentPages)
				}
			}
		}
		pos = end
	}
	if strings.TrimSpace(string(doc[start:])) != "" {
		return nil, fmt.Errorf("%w: tspl: commands after the last PRINT at offset %d (cut short?)", ErrDocument, start)
	}
	if len(labels) == 0 {
		return nil, fmt.Errorf("%w: tspl: no PRINT command", ErrDocument)
	}
	labels[len(labels)-1] = append(labels[len(labels)-1][:len(labels[len(labels)-1]):len(labels[len(labels)-1])], doc[start:]...)
	return labels, nil
}

// PDFRenderer rasterises PDF pages at a resolution into images; the
// default runs pdftoppm (Debian poppler-utils) found on PATH.
type PDFRenderer interface {
	RenderPDF(ctx context.Context, pdf []byte, dpi int) ([]image.Image, error)
}

// Pdftoppm renders with poppler's pdftoppm: grey, anti-aliasing off, so
// bars keep sharp edges and thresholding does not move them.
type Pdftoppm struct{}

var _ PDFRenderer = Pdftoppm{}

// RenderPDF implements PDFRenderer.
func (Pdftoppm) RenderPDF(ctx context.Context, pdf []byte, dpi int) ([]image.Image, error) {
	bin, err := exec.LookPath("pdftoppm")
	if err != nil {
		return nil, fmt.Errorf("%w: pdf: pdftoppm not found on PATH (apt-get install poppler-utils)", ErrNoRenderer)
	}
	dir, err := os.MkdirTemp("", "label-pdf-")
	if err != nil {
		return nil, fmt.Errorf("label: pdf: %w", err)
	}
	defer os.RemoveAll(dir)
	in := filepath.Join(dir, "in.pdf")
	if err := os.WriteFile(in, pdf, 0o600); err != nil {
		return nil, fmt.Errorf("label: pdf: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, pdfTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-r", fmt.Sprint(dpi), "-gray", "-aa", "no", "-aaVector", "no",
		"-l", fmt.Sprint(MaxDocumentPages+1), "-png", in, filepath.Join(dir, "p"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if ctx.Err() != nil {
			msg = "took longer than " + pdfTimeout.String()
		}
		return nil, fmt.Errorf("%w: pdf: pdftoppm: %v: %s", ErrDocument, err, msg)
	}
	names, _ := filepath.Glob(filepath.Join(dir, "p-*.png"))
	// pdftoppm pads page numbers to the page count's width: a plain sort is page order.
	slices.Sort(names)
	if len(names) > MaxDocumentPages {
		return nil, fmt.Errorf("%w: pdf: more than %d pages", ErrDocument, MaxDocumentPages)
	}
	var out []image.Image
	for _, n := range names {
		f, err := os.Open(n)
		if err != nil {
			return nil, fmt.Errorf("label: pdf: %w", err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("label: pdf: page %s: %w", filepath.Base(n), err)
		}
		out = append(out, img)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: pdf: no pages", ErrDocument)
	}
	return out, nil
}

// checkPDF refuses what is not a complete PDF before a renderer sees it:
// the header, and the end-of-file marker a truncated upload lacks.
func checkPDF(doc []byte) error {
	if len(doc) > MaxDocumentBytes {
		return fmt.Errorf("%w: pdf: %d bytes, more than %d", ErrDocument, len(doc), MaxDocumentBytes)
	}
	if !bytes.HasPrefix(doc, []byte("%PDF-")) {
		return fmt.Errorf("%w: pdf: does not start with %%PDF-", ErrDocument)
	}
	if !bytes.Contains(doc[max(0, len(doc)-1024):], []byte("%%EOF")) {
		return fmt.Errorf("%w: pdf: no %%%%EOF at the end (cut short?)", ErrDocument)
	}
	return nil
}

// DocOptions says how RenderDocument prints a document.
type DocOptions struct {
	// WidthMM and HeightMM are the label stock; PDF pages and PNG images
	// are fitted to it.
	WidthMM, HeightMM float64
	// PDF rasterises PDF pages; nil is Pdftoppm.
	PDF PDFRenderer
}

// RenderDocument returns the printer data of each label of a document for
// target t. ZPL and TSPL documents pass through unchanged to a printer of
// their language and are refused for any other. PDF pages (one label each)
// and a PNG are rasterised at the printer's resolution and fitted to the
// label: turned by 90° when that matches the label's shape, shown at
// scale 1 when they fit, enlarged by a whole factor when that still fits
// (bars stay evenly wide), and only otherwise resampled; then thresholded,
// never anti-aliased.
func RenderDocument(ctx context.Context, f Format, doc []byte, opt DocOptions, t Target) ([][]byte, error) {
	t, err := t.normalize()
	if err != nil {
		return nil, err
	}
	switch f {
	case DocZPL, DocTSPL:
		if (f == DocZPL) != (t.Lang == LangZPL) || t.Lang != LangZPL && t.Lang != LangTSPL {
			return nil, fmt.Errorf("%w: a %s document cannot print on a %s printer", ErrUnsupported, f, t.Lang)
		}
		if f == DocZPL {
			return SplitZPLDocument(doc)
		}
		return SplitTSPLDocument(doc)
	case DocPNG, DocPDF:
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnknownFormat, string(f))
	}
	if !(opt.WidthMM > 0 && opt.HeightMM > 0) {
		return nil, fmt.Errorf("label: %s document: the label size is required", f)
	}
	var pages []image.Image
	if f == DocPNG {
		cfg, err := png.DecodeConfig(bytes.NewReader(doc))
		if err != nil {
			return nil, fmt.Errorf("%w: png: %v", ErrDocument, err)
		}
		if cfg.Width*cfg.Height > maxRasterDots {
			return nil, fmt.Errorf("%w: png: %dx%d pixels is too large", ErrDocument, cfg.Width, cfg.Height)
		}
		img, err := png.Decode(bytes.NewReader(doc))
		if err != nil {
			return nil, fmt.Errorf("%w: png: %v", ErrDocument, err)
		}
		pages = []image.Image{img}
	} else {
		if err := checkPDF(doc); err != nil {
			return nil, err
		}
		r := opt.PDF
		if r == nil {
			r = Pdftoppm{}
		}
		if pages, err = r.RenderPDF(ctx, doc, t.DPI); err != nil {
			return nil, err
		}
	}
	lw, lh := dots(opt.WidthMM, t.DPI), dots(opt.HeightMM, t.DPI)
	if lw*lh > maxRasterDots {
		return nil, fmt.Errorf("%w: label of %dx%d dots is too large", ErrUnsupported, lw, lh)
	}
	l := &Layout{WidthMM: opt.WidthMM, HeightMM: opt.HeightMM}
	var out [][]byte
	for _, p := range pages {
		b, err := appendBitmap(nil, fitPage(p, lw, lh), l, t)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// fitPage thresholds img onto a lw×lh label, as RenderDocument describes.
func fitPage(img image.Image, lw, lh int) *bitmap.Bitmap {
	b := img.Bounds()
	src := bitmap.FromImage(img, b.Dx(), b.Dy())
	if (src.W > src.H) != (lw > lh) && src.W != src.H && lw != lh {
		src = src.Rotate(90)
	}
	scale := func(w, h int) *bitmap.Bitmap { // nearest neighbour
		if w == src.W && h == src.H {
			return src
		}
		return bitmap.FromImage(src, w, h)
	}
	var fit *bitmap.Bitmap
	switch {
	case src.W <= lw && src.H <= lh:
		k := max(1, min(lw/src.W, lh/src.H))
		fit = scale(src.W*k, src.H*k)
	default:
		r := min(float64(lw)/float64(src.W), float64(lh)/float64(src.H))
		fit = scale(max(1, int(float64(src.W)*r)), max(1, int(float64(src.H)*r)))
	}
	out := bitmap.New(lw, lh)
	ox, oy := (lw-fit.W)/2, (lh-fit.H)/2
	for y := 0; y < fit.H; y++ {
		for x := 0; x < fit.W; x++ {
			if fit.Black(x, y) {
				out.Set(ox+x, oy+y)
			}
		}
	}
	return out
}
