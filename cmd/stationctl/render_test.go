package main

import (
	"bytes"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func example(parts ...string) string {
	return filepath.Join(append([]string{"..", "..", "examples"}, parts...)...)
}

func TestRenderCmdZPL(t *testing.T) {
	dir := t.TempDir()
	err := renderCmd([]string{example("layouts", "shipping.json"), example("data", "shipping.csv"), "--out", dir, "--lang", "zpl", "--dpi", "300"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		b, err := os.ReadFile(filepath.Join(dir, "shipping-000"+string(rune('0'+i))+".zpl"))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Count(b, []byte("^XA")) != 1 || !bytes.Contains(b, []byte("^PW1200")) {
			t.Errorf("label %d is not one 300 dpi ZPL label:\n%s", i, b)
		}
	}
	job, err := os.ReadFile(filepath.Join(dir, "shipping.job.zpl"))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(job, []byte("^XA")); n != 3 {
		t.Errorf("job has %d labels, want 3", n)
	}
}

func TestRenderCmdCopiesAndPNG(t *testing.T) {
	dir := t.TempDir()
	// products.xml: the first record has copies="2", the second none.
	if err := renderCmd([]string{"--out", dir, "--lang", "escpos", example("layouts", "product.json"), example("data", "products.xml")}); err != nil {
		t.Fatal(err)
	}
	job, err := os.ReadFile(filepath.Join(dir, "product.job.escpos"))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(job, []byte{0x1b, '@'}); n != 3 {
		t.Errorf("escpos job has %d labels, want 3 (2 copies + 1)", n)
	}
	dir = t.TempDir()
	if err := renderCmd([]string{example("layouts", "badge-test.json"), example("data", "badge-test.json"), "--out", dir}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "badge-test-0001.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 432 || b.Dy() != 200 {
		t.Errorf("png is %v, want 432x200 (54x25 mm at 203 dpi)", b)
	}
}

func TestRenderCmdErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"version":1,"id":"x","width_mm":10,"height_mm":10,"elements":[{"type":"blob"}]}`), 0o644)
	cases := []struct {
		args  []string
		want  string
		usage bool
	}{
		{[]string{example("layouts", "shipping.json")}, "needs LAYOUT DATA", true},
		{[]string{example("layouts", "shipping.json"), example("data", "shipping.csv"), "--out", dir, "--lang", "pdf"}, "unknown language", true},
		{[]string{bad, example("data", "shipping.csv"), "--out", dir}, "elements[0]", false},
		{[]string{example("layouts", "shipping.json"), example("data", "badge-test.json"), "--out", dir}, "missing", false},
		{[]string{example("layouts", "shipping.json"), filepath.Join(dir, "data.txt"), "--out", dir}, "use --format", false},
	}
	for _, c := range cases {
		err := renderCmd(c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) || errors.Is(err, errUsage) != c.usage {
			t.Errorf("%q: err = %v, want %q (usage %v)", c.args, err, c.want, c.usage)
		}
	}
}

// A Windows-1252 CSV rendered with --charset carries UTF-8 to the printer;
// without it the command refuses the file, naming the record and column.
func TestRenderCmdCharset(t *testing.T) {
	dir := t.TempDir()
	lay := filepath.Join(dir, "n.json")
	os.WriteFile(lay, []byte(`{"version":1,"id":"n","width_mm":60,"height_mm":20,"elements":[{"type":"text","x":1,"y":1,"text":"{name}"}]}`), 0o644)
	data := filepath.Join(dir, "d.csv")
	os.WriteFile(data, []byte("id;name\r\n1;\x93Caf\xe9\x94\r\n"), 0o644)
	out := filepath.Join(dir, "out")
	err := renderCmd([]string{lay, data, "--out", out, "--lang", "zpl"})
	if err == nil || !strings.Contains(err.Error(), `record 1, column 2 "name"`) || !strings.Contains(err.Error(), "byte 0x93 at offset 11") {
		t.Fatalf("undeclared Windows-1252: %v", err)
	}
	if err := renderCmd([]string{lay, data, "--out", out, "--lang", "zpl", "--charset", "windows-1252"}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "n-0001.zpl"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("^FD“Café”^FS")) {
		t.Errorf("ZPL does not carry the decoded text:\n%s", b)
	}
}

// TestRenderCmdStreams renders 1,000 ESC/POS 4×6 in labels (124 MB of printer data) while
// sampling the live heap: it stays far below the job's size, because the job streams to disk.
func TestRenderCmdStreams(t *testing.T) {
	dir := t.TempDir()
	lay := filepath.Join(dir, "big.json")
	os.WriteFile(lay, []byte(`{"version":1,"id":"big","width_mm":101.6,"height_mm":152.4,"elements":[
		{"type":"text","x":5,"y":5,"text":"{name}","font_pt":24,"max_width":90},
		{"type":"barcode","symbology":"qr","x":5,"y":40,"data":"{name}","module":1}]}`), 0o644)
	data := filepath.Join(dir, "d.json")
	os.WriteFile(data, []byte(`[{"name":"Parcel for Ada","copies":"1000"}]`), 0o644)
	out := filepath.Join(dir, "out")
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	err := renderCmd([]string{lay, data, "--out", out, "--lang", "escpos"})
	close(stop)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	one, err := os.ReadFile(filepath.Join(out, "big-0001.escpos"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(out, "big.job.escpos"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != int64(1000*len(one)) {
		t.Fatalf("job is %d bytes, want 1000 × %d", st.Size(), len(one))
	}
	t.Logf("job %d MB, peak live heap %.1f MB", st.Size()>>20, float64(peak.Load())/(1<<20))
	if p := peak.Load(); p > uint64(st.Size())/4 {
		t.Errorf("peak live heap %d bytes for a %d-byte job: rendering does not stream", p, st.Size())
	}
}
