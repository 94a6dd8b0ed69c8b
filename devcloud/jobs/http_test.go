package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-pdf/fpdf"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/font/sfnt"

	"labelstation/devcloud/seed"
	"labelstation/label"
)

const (
	nameLayout = `{"version":1,"id":"name","width_mm":60,"height_mm":20,"elements":[{"type":"text","x":1,"y":1,"text":"{name}"}]}`
	// A QR code 25 mm from the left of a 30 mm label: 0.19 mm modules are 2 dots at 203 dpi
	// (0.25 mm), so the symbol runs off the label there but fits at 300 and 600 dpi.
	edgeQRLayout = `{"version":1,"id":"edge","width_mm":30,"height_mm":30,"elements":[{"type":"barcode","symbology":"qr","x":25,"y":1,"data":"{code}","module":0.19}]}`
)

// carrierLayout gives a document job its 4×6 in label size.
const carrierLayout = `{"version":1,"id":"carrier4x6","width_mm":101.6,"height_mm":152.4,"elements":[{"type":"box","x":0,"y":0,"width":10,"height":10}]}`

func testService(t *testing.T, opt SubmitOptions) (*Service, *httptest.Server) {
	t.Helper()
	sd := &seed.Seed{Layouts: map[string]seed.Layout{}}
	for _, raw := range []string{nameLayout, edgeQRLayout, carrierLayout} {
		l, err := label.ParseLayout([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		sd.Layouts[l.ID] = seed.Layout{Parsed: l, Raw: json.RawMessage(raw)}
	}
	s, err := New(Options{
		Seed: sd, BadgeKey: bytes.Repeat([]byte{7}, 16), Submit: opt,
		VerifyUser: func(_ context.Context, tok string) (string, error) {
			if tok != "tok" {
				return "", fmt.Errorf("bad token")
			}
			return "alice", nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return s, srv
}

type reply struct {
	Job
	Code    string `json:"code"`
	Message string `json:"message"`
}

func post(t *testing.T, srv *httptest.Server, ct string, body []byte) (int, reply) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/jobs", bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r reply
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%d: %s", resp.StatusCode, b)
	}
	return resp.StatusCode, r
}

func postForm(t *testing.T, srv *httptest.Server, v url.Values) (int, reply) {
	return post(t, srv, "application/x-www-form-urlencoded", []byte(v.Encode()))
}

// postFile uploads data as a multipart part with its own Content-Type.
func postFile(t *testing.T, srv *httptest.Server, layout, partType string, data []byte) (int, reply) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("title", "t")
	mw.WriteField("format", layout)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="data"; filename="parcels.csv"`)
	h.Set("Content-Type", partType)
	w, _ := mw.CreatePart(h)
	w.Write(data)
	mw.Close()
	return post(t, srv, mw.FormDataContentType(), buf.Bytes())
}

func TestSubmitCharsets(t *testing.T) {
	s, srv := testService(t, SubmitOptions{})
	cp1252 := []byte("id;name\r\n1;\x93Caf\xe9\x94\r\n2;\"M\xfcller, J\"\r\n")
	code, r := postFile(t, srv, "name", "text/csv; charset=windows-1252", cp1252)
	if code != http.StatusCreated || r.Labels != 2 {
		t.Fatalf("windows-1252 upload: %d %+v", code, r)
	}
	j, _ := s.Store().Get(r.ID)
	if want := "id;name\r\n1;“Café”\r\n2;\"Müller, J\"\r\n"; string(j.Data) != want {
		t.Errorf("stored data %q, want the UTF-8 %q", j.Data, want)
	}
	code, r = postForm(t, srv, url.Values{"title": {"t"}, "format": {"name"}, "data_format": {"text/csv; charset=iso-8859-1"}, "data": {"name\nJos\xe9\n"}})
	if code != http.StatusCreated {
		t.Fatalf("data_format charset: %d %+v", code, r)
	}
	if j, _ := s.Store().Get(r.ID); string(j.Data) != "name\nJosé\n" {
		t.Errorf("stored %q", j.Data)
	}
	code, r = postFile(t, srv, "name", "text/csv", cp1252)
	if code != http.StatusBadRequest || !strings.Contains(r.Message, `csv record 1, column 2 "name" (line 2): invalid UTF-8: byte 0x93 at offset 11`) {
		t.Errorf("undeclared windows-1252: %d %q", code, r.Message)
	}
}

func csvRows(n int, row func(i int) string) []byte {
	var b strings.Builder
	b.WriteString("name,code,copies\n")
	for i := range n {
		b.WriteString(row(i))
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

func TestSubmitLimits(t *testing.T) {
	_, srv := testService(t, SubmitOptions{MaxLabels: 5, MaxBytes: 4000})
	six := csvRows(6, func(i int) string { return fmt.Sprintf("n%d,c,1", i) })
	code, r := postForm(t, srv, url.Values{"title": {"t"}, "format": {"name"}, "data": {string(six)}})
	if code != http.StatusUnprocessableEntity || r.Code != "too_many_labels" || !strings.Contains(r.Message, "record 6 brings the job past 5 labels (limit 5 labels per job)") {
		t.Errorf("six labels: %d %+v", code, r)
	}
	copies := csvRows(2, func(i int) string { return "n,c,3" })
	if code, r = postForm(t, srv, url.Values{"title": {"t"}, "format": {"name"}, "data": {string(copies)}}); code != http.StatusUnprocessableEntity || !strings.Contains(r.Message, "record 2 ") {
		t.Errorf("copies over the limit: %d %+v", code, r)
	}
	if code, r = postForm(t, srv, url.Values{"title": {"t"}, "format": {"name"}, "data": {strings.Repeat("x", 5000)}}); code != http.StatusRequestEntityTooLarge || !strings.Contains(r.Message, "limit 4000 bytes") {
		t.Errorf("too many bytes: %d %+v", code, r)
	}
}

// TestSubmitAsync: data above SyncBytes is accepted at once (202, validating) and checked in
// the background; the job becomes held, or rejected with the reason, and is never released
// while validating.
func TestSubmitAsync(t *testing.T) {
	s, srv := testService(t, SubmitOptions{SyncBytes: 100, MaxLabels: 300})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	good := csvRows(200, func(i int) string { return fmt.Sprintf("Name %d,c,1", i) })
	code, r := postForm(t, srv, url.Values{"title": {"big"}, "format": {"name"}, "data": {string(good)}})
	if code != http.StatusAccepted || r.State != StateValidating {
		t.Fatalf("large job: %d %+v", code, r)
	}
	j, err := s.Store().WaitFor(ctx, r.ID, func(j Job) bool { return j.State != StateValidating })
	if err != nil || j.State != StateHeld || j.Labels != 200 {
		t.Fatalf("large job after validation: %+v %v", j, err)
	}
	bad := csvRows(200, func(i int) string {
		if i == 149 {
			return "Bruce 李小龙,c,1"
		}
		return fmt.Sprintf("Name %d,c,1", i)
	})
	_, r = postForm(t, srv, url.Values{"title": {"bad"}, "format": {"name"}, "data": {string(bad)}})
	if rel := s.Store().Release("alice", "st1", []string{r.ID}, time.Now()); len(rel) != 0 {
		t.Errorf("a validating job was released: %+v", rel)
	}
	j, _ = s.Store().WaitFor(ctx, r.ID, func(j Job) bool { return j.State != StateValidating })
	if j.State != StateRejected || !strings.Contains(j.Error, `record 150: `) || !strings.Contains(j.Error, `'李' (U+674E) in field "name"`) {
		t.Errorf("bad job: %+v", j)
	}
	// The submitter's notify_url is told the outcome.
	told := make(chan Job, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var j Job
		json.NewDecoder(r.Body).Decode(&j)
		told <- j
	}))
	defer hook.Close()
	many := csvRows(400, func(i int) string { return "n,c,1" })
	_, r = postForm(t, srv, url.Values{"title": {"many"}, "format": {"name"}, "data": {string(many)}, "notify_url": {hook.URL}})
	j, _ = s.Store().WaitFor(ctx, r.ID, func(j Job) bool { return j.State != StateValidating })
	if j.State != StateRejected || !strings.Contains(j.Error, "limit 300 labels per job") || j.Data != nil {
		t.Errorf("job over the label limit: %+v", j)
	}
	select {
	case n := <-told:
		if n.ID != r.ID || n.State != StateRejected || n.Error != j.Error {
			t.Errorf("notify_url was told %+v", n)
		}
	case <-ctx.Done():
		t.Fatal("notify_url was not told")
	}
}

// TestSubmitValidatesEveryTarget: a code that fits at 300 dpi but not at 203 is refused by
// default (any station may release the job), naming the language and resolution, and
// accepted when the fleet prints at 300 dpi only.
func TestSubmitValidatesEveryTarget(t *testing.T) {
	_, srv := testService(t, SubmitOptions{})
	v := url.Values{"title": {"t"}, "format": {"edge"}, "data": {"code\nHELLO\n"}}
	code, r := postForm(t, srv, v)
	if code != http.StatusBadRequest || !strings.Contains(r.Message, `record 1: zpl at 203 dpi: label: elements[0] (barcode): value not encodable: qr of "HELLO" is 42x42 dots at (200,8), beyond the 240x240-dot label`) {
		t.Errorf("default targets: %d %q", code, r.Message)
	}
	_, srv = testService(t, SubmitOptions{Targets: []label.Target{{Lang: label.LangZPL, DPI: 300}, {Lang: label.LangESCPOS, DPI: 600}}})
	if code, r = postForm(t, srv, v); code != http.StatusCreated {
		t.Errorf("300/600 dpi fleet: %d %q", code, r.Message)
	}
}

// TestSubmitFonts: the submission check knows the fleet's fonts.
func TestSubmitFonts(t *testing.T) {
	_, srv := testService(t, SubmitOptions{})
	v := url.Values{"title": {"t"}, "format": {"name"}, "data": {"name\nAnn\nBruce 李小龙\n"}}
	code, r := postForm(t, srv, v)
	if code != http.StatusBadRequest || !strings.Contains(r.Message, `record 2: `) || !strings.Contains(r.Message, `'李' (U+674E) in field "name"`) {
		t.Errorf("no CJK font: %d %q", code, r.Message)
	}
	src := fontWith('李')
	if src == "" {
		t.Skip("no installed font has '李' (apt-get install fonts-droid-fallback or fonts-noto-cjk)")
	}
	dir := t.TempDir()
	os.Symlink(src, filepath.Join(dir, filepath.Base(src)))
	_, srv = testService(t, SubmitOptions{FontDir: dir})
	if code, r = postForm(t, srv, v); code != http.StatusCreated || r.Labels != 2 {
		t.Errorf("with a CJK font: %d %+v", code, r)
	}
}

func fontWith(r rune) string {
	found := ""
	filepath.WalkDir("/usr/share/fonts", func(p string, d os.DirEntry, err error) error {
		if err != nil || found != "" || d.IsDir() || strings.ToLower(filepath.Ext(p)) != ".ttf" {
			return nil
		}
		b, _ := os.ReadFile(p)
		f, err := opentype.Parse(b)
		if err != nil {
			return nil
		}
		var buf sfnt.Buffer
		if g, err := f.GlyphIndex(&buf, r); err == nil && g != 0 {
			found = p
		}
		return nil
	})
	return found
}

// TestSubmitWarnsOfCutText: text that will be cut to fit is accepted with a warning naming
// the record, the element, the resolution and what prints there.
func TestSubmitWarnsOfCutText(t *testing.T) {
	_, srv := testService(t, SubmitOptions{})
	long := strings.Repeat("Wolfeschlegelsteinhausenbergerdorff ", 4)
	code, r := postForm(t, srv, url.Values{"title": {"t"}, "format": {"name"}, "data": {"name\nAnn\n" + long + "\n"}})
	if code != http.StatusCreated || len(r.Warnings) != 3 || !strings.HasPrefix(r.Warnings[0], `record 2: elements[0] (text): field "name" is cut to 1 line(s) at 203 dpi: "Wolfeschlegel`) {
		t.Errorf("%d %q", code, r.Warnings)
	}
}

const twoLabelZPL = "^XA^FO50,50^A0N,40,40^FDSHIP TO: Ada^FS^BY3^FO50,200^BCN,120,Y,N,N^FD1Z999AA10123456784^FS^XZ\n^XA^FO50,50^FDPage 2^FS^XZ\n"

func tinyPDF(t *testing.T, pages int) []byte {
	pdf := fpdf.NewCustom(&fpdf.InitType{UnitStr: "mm", Size: fpdf.SizeType{Wd: 101.6, Ht: 152.4}})
	pdf.SetFont("Helvetica", "", 12)
	for range pages {
		pdf.AddPage()
		pdf.Text(10, 20, "label")
		pdf.Rect(10, 30, 50, 20, "F")
	}
	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestSubmitDocuments: ZPL by form field or URL, and PDF by upload, become held jobs whose
// data is the document unchanged; hostile, incomplete or unsized documents are refused.
func TestSubmitDocuments(t *testing.T) {
	s, srv := testService(t, SubmitOptions{MaxBytes: 1 << 20})
	code, r := postForm(t, srv, url.Values{"title": {"carrier"}, "document": {twoLabelZPL}})
	if code != http.StatusCreated || r.Labels != 2 || r.DataFormat != "zpl" {
		t.Fatalf("zpl: %d %+v", code, r)
	}
	if j, _ := s.Store().Get(r.ID); string(j.Data) != twoLabelZPL {
		t.Errorf("stored %q", j.Data)
	}
	code, r = postForm(t, srv, url.Values{"title": {"t"}, "document": {"^XA^FDx^FS^JUS^XZ"}})
	if code != http.StatusBadRequest || !strings.Contains(r.Message, "^JU at offset 10 changes the printer's settings") {
		t.Errorf("hostile zpl: %d %q", code, r.Message)
	}
	code, r = postForm(t, srv, url.Values{"title": {"t"}, "document": {"^XA^FO50,50^FDcut"}})
	if code != http.StatusBadRequest || !strings.Contains(r.Message, "has no ^XZ") {
		t.Errorf("truncated zpl: %d %q", code, r.Message)
	}
	docs := http.NewServeMux()
	docs.HandleFunc("/label.zpl", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, twoLabelZPL) })
	docs.HandleFunc("/huge.zpl", func(w http.ResponseWriter, _ *http.Request) { w.Write(bytes.Repeat([]byte("^XA^XZ"), 1<<18)) })
	ds := httptest.NewServer(docs)
	defer ds.Close()
	if code, r = postForm(t, srv, url.Values{"title": {"t"}, "document_url": {ds.URL + "/label.zpl"}}); code != http.StatusCreated || r.Labels != 2 {
		t.Errorf("document_url: %d %+v", code, r)
	}
	if code, r = postForm(t, srv, url.Values{"title": {"t"}, "document_url": {ds.URL + "/huge.zpl"}}); code != http.StatusRequestEntityTooLarge || !strings.Contains(r.Message, "limit 1048576 bytes") {
		t.Errorf("huge document_url: %d %q", code, r.Message)
	}
	if _, err := exec.LookPath("pdftoppm"); err != nil {
		t.Skip("pdftoppm not on PATH (apt-get install poppler-utils)")
	}
	pdf := tinyPDF(t, 3)
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("title", "pdf")
	mw.WriteField("format", "carrier4x6")
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="document"; filename="label.pdf"`)
	h.Set("Content-Type", "application/pdf")
	pw, _ := mw.CreatePart(h)
	pw.Write(pdf)
	mw.Close()
	code, r = post(t, srv, mw.FormDataContentType(), buf.Bytes())
	if code != http.StatusCreated || r.Labels != 3 || r.DataFormat != "pdf" {
		t.Errorf("pdf: %d %+v", code, r)
	}
	code, r = postForm(t, srv, url.Values{"title": {"t"}, "document": {string(pdf)}})
	if code != http.StatusBadRequest || !strings.Contains(r.Message, "format: required for a pdf document") {
		t.Errorf("pdf without a size: %d %q", code, r.Message)
	}
	code, r = postForm(t, srv, url.Values{"title": {"t"}, "format": {"carrier4x6"}, "document": {string(pdf[:len(pdf)/2])}})
	if code != http.StatusBadRequest || !strings.Contains(r.Message, "cut short") {
		t.Errorf("truncated pdf: %d %q", code, r.Message)
	}
}
