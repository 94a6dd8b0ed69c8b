package station

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"labelstation/label"
	"labelstation/protocol"
)

const docZPL = "^XA^FO50,50^FDone^FS^XZ\r\n^XA^FO50,50^FDtwo^FS^XZ\n"

// A ZPL document job reaches a ZPL printer byte for byte, one label per ^XA…^XZ block; a TSPL
// printer refuses it before anything is sent.
func TestWorkerPrintsDocument(t *testing.T) {
	fp := &fakePrinter{}
	s, j := workerStation(t, fp)
	go func() {
		for range s.events {
		}
	}()
	e, _, err := j.Claim(protocol.Job{V: 1, ID: "doc-1", Title: "carrier", Format: "zpl", Labels: 2, Data: []byte(docZPL)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.printJob(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if len(fp.labels) != 2 || string(bytes.Join(fp.labels, nil)) != docZPL {
		t.Fatalf("printer got %q", fp.labels)
	}
	if e, _ := j.Get("doc-1"); e.Printed != 2 {
		t.Errorf("journal says %d printed", e.Printed)
	}

	fp2 := &fakePrinter{}
	s2, j2 := workerStation(t, fp2)
	go func() {
		for range s2.events {
		}
	}()
	s2.cfg.Printer.Lang = "tspl"
	e, _, _ = j2.Claim(protocol.Job{V: 1, ID: "doc-2", Title: "carrier", Format: "zpl", Labels: 2, Data: []byte(docZPL)})
	err = s2.printJob(context.Background(), e)
	if err == nil || !strings.Contains(err.Error(), "a zpl document cannot print on a tspl printer") || fp2.count() != 0 {
		t.Errorf("zpl on tspl: %v, %d labels sent", err, fp2.count())
	}
}

// A record the station cannot print fails the job before its first label is sent.
func TestWorkerChecksEveryRecordFirst(t *testing.T) {
	fp := &fakePrinter{}
	s, j := workerStation(t, fp)
	go func() {
		for range s.events {
		}
	}()
	job := testJob(t)
	job.Data = []byte("name,street,zip,city,tracking\nAda Lovelace,1 Sq,1,London,TRK1\nBruce 李小龙,2 Way,2,HK,TRK2\n")
	e, _, err := j.Claim(job)
	if err != nil {
		t.Fatal(err)
	}
	err = s.printJob(context.Background(), e)
	if err == nil || !strings.Contains(err.Error(), "record 2: ") || !strings.Contains(err.Error(), `'李' (U+674E) in field "name"`) || fp.count() != 0 {
		t.Errorf("err %v, %d labels sent", err, fp.count())
	}
}

// With printer.zpl_prefix set, every label of a ZPL document starts with the station's setup
// commands right after its ^XA; the rest of the document arrives unchanged.
func TestWorkerPrefixesZPLDocument(t *testing.T) {
	fp := &fakePrinter{}
	s, j := workerStation(t, fp)
	go func() {
		for range s.events {
		}
	}()
	s.cfg.Printer.ZPLPrefix = "^MD12^PR4,4,4"
	doc := "~DGR:LOGO.GRF,4,1,FF00FF00\n" + docZPL
	e, _, err := j.Claim(protocol.Job{V: 1, ID: "doc-p", Title: "carrier", Format: "zpl", Labels: 2, Data: []byte(doc)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.printJob(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"~DGR:LOGO.GRF,4,1,FF00FF00\n^XA^MD12^PR4,4,4^FO50,50^FDone^FS^XZ",
		"\r\n^XA^MD12^PR4,4,4^FO50,50^FDtwo^FS^XZ\n",
	}
	if len(fp.labels) != 2 || string(fp.labels[0]) != want[0] || string(fp.labels[1]) != want[1] {
		t.Fatalf("printer got %q, want %q", fp.labels, want)
	}
}

// printer.font_dir gives the worker fonts beyond the built-in ones: a job whose characters
// only that font has prints (the text drawn as a graphic, as label.Render draws it with the
// same fonts) instead of being refused; a directory that cannot be read is named in the
// refusal of a job that needed it and stops no other.
func TestWorkerPrintsWithStationFonts(t *testing.T) {
	const fontFile = "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"
	if _, err := os.Stat(fontFile); err != nil {
		t.Skipf("no CJK font (%v); apt-get install fonts-droid-fallback", err)
	}
	dir := t.TempDir()
	if err := os.Symlink(fontFile, filepath.Join(dir, "DroidSansFallbackFull.ttf")); err != nil {
		t.Fatal(err)
	}
	job := testJob(t)
	job.Labels = 2
	job.Data = []byte("name,street,zip,city,tracking\nAda Lovelace,1 Sq,1,London,TRK1\nBruce 李小龙,2 Way,2,HK,TRK2\n")

	fp := &fakePrinter{}
	s, j := workerStation(t, fp)
	go func() {
		for range s.events {
		}
	}()
	s.cfg.Printer.FontDir = dir
	e, _, err := j.Claim(job)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.printJob(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if fp.count() != 2 {
		t.Fatalf("%d labels sent", fp.count())
	}
	fonts, err := label.LoadFontDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	lay, err := label.ParseLayout(job.Layout)
	if err != nil {
		t.Fatal(err)
	}
	want, err := label.Render(lay, label.Record{"name": "Bruce 李小龙", "street": "2 Way", "zip": "2", "city": "HK", "tracking": "TRK2"},
		label.Target{Lang: label.LangZPL, DPI: 203, Fonts: fonts})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fp.labels[1], want) || !bytes.Contains(want, []byte("^GF")) {
		t.Errorf("label 2 is not the text drawn with the station's font:\n%q", fp.labels[1])
	}

	fp2 := &fakePrinter{}
	s2, j2 := workerStation(t, fp2)
	go func() {
		for range s2.events {
		}
	}()
	s2.cfg.Printer.FontDir = filepath.Join(dir, "missing")
	e, _, _ = j2.Claim(job)
	err = s2.printJob(context.Background(), e)
	if err == nil || !strings.Contains(err.Error(), `'李' (U+674E) in field "name"`) || !strings.Contains(err.Error(), "printer.font_dir: ") || fp2.count() != 0 {
		t.Errorf("unreadable font dir: %v, %d labels sent", err, fp2.count())
	}
	// The built-in fonts still serve the jobs they cover.
	latin := testJob(t)
	latin.ID = "job-latin"
	e, _, _ = j2.Claim(latin)
	if err := s2.printJob(context.Background(), e); err != nil || fp2.count() != 3 {
		t.Errorf("latin job with an unreadable font dir: %v, %d labels sent", err, fp2.count())
	}
}
