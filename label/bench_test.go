package label

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"labelstation/label/bitmap"
)

// Benchmarks for docs/performance.md. Run on one core:
//
//	go test -run '^$' -bench . -benchmem -cpu 1 ./label/
//
// They report labels/s as a metric; the targets live in the doc, not in
// asserts.

// csvJob writes a CSV of n shipping records to w, generated on the fly.
func csvJob(w io.Writer, n int) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("name,street,zip,city,tracking\n")
	for i := range n {
		fmt.Fprintf(bw, "Customer %d,\"%d Long Street, Unit %d\",%05d,Springfield,1Z999AA1%010d\n", i, i%999+1, i%50, i%100000, i)
	}
	return bw.Flush()
}

// renderCSV renders every record of a CSV job into buf (reused label by label), as the station's
// print loop does, and returns buf and labels plus the number rendered.
func renderCSV(b *testing.B, l *Layout, data []byte, t Target, buf []byte, labels int) ([]byte, int) {
	rr, err := NewRecordReader(FormatCSV, bytes.NewReader(data), ReadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for {
		rec, err := rr.Next()
		if err == io.EOF {
			return buf, labels
		}
		if err != nil {
			b.Fatal(err)
		}
		if buf, err = AppendRender(buf[:0], l, rec, t); err != nil {
			b.Fatal(err)
		}
		labels++
	}
}

func BenchmarkCSVToNativeZPL(b *testing.B) {
	l := loadExample(b, "shipping.json")
	var data bytes.Buffer
	csvJob(&data, 10000)
	buf := make([]byte, 0, 4096)
	b.SetBytes(int64(data.Len()))
	b.ReportAllocs()
	labels := 0
	for b.Loop() {
		buf, labels = renderCSV(b, l, data.Bytes(), Target{Lang: LangZPL, DPI: 203}, buf, labels)
	}
	b.ReportMetric(float64(labels)/b.Elapsed().Seconds(), "labels/s")
	b.ReportMetric(vmHWM()/(1<<10), "peak-rss-MB")
}

func benchRaster(b *testing.B, lang Lang) {
	l := loadExample(b, "shipping-4x6.json")
	rec := Record{"name": "Ada Lovelace", "street": "12 St James's Square", "zip": "SW1Y 4JH", "city": "London", "tracking": "1Z999AA10123456784"}
	buf := make([]byte, 0, 64<<10)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		var err error
		buf, err = AppendRender(buf[:0], l, rec, Target{Lang: lang, DPI: 203, Raster: true})
		if err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "labels/s")
	b.ReportMetric(float64(len(buf)), "bytes/label")
}

func BenchmarkRaster4x6ZPLZ64(b *testing.B) { benchRaster(b, LangZPL) }
func BenchmarkRaster4x6TSPL(b *testing.B)   { benchRaster(b, LangTSPL) }
func BenchmarkRaster4x6ESCPOS(b *testing.B) { benchRaster(b, LangESCPOS) }
func BenchmarkRaster4x6PNG(b *testing.B)    { benchRaster(b, LangPNG) }

// BenchmarkZ64VsHex reports how much smaller Z64 (and ACS) is than ^GFA
// hex for a typical shipping label bitmap.
func BenchmarkZ64VsHex(b *testing.B) {
	l := loadExample(b, "shipping-4x6.json")
	rec := Record{"name": "Ada Lovelace", "street": "12 St James's Square", "zip": "SW1Y 4JH", "city": "London", "tracking": "1Z999AA10123456784"}
	bm, err := RenderBitmap(l, rec, 203)
	if err != nil {
		b.Fatal(err)
	}
	hex := len(bitmap.AppendZPL(nil, bm, bitmap.ZPLHex))
	acs := len(bitmap.AppendZPL(nil, bm, bitmap.ZPLACS))
	var z []byte
	for b.Loop() {
		z = bitmap.AppendZPL(z[:0], bm, bitmap.ZPLZ64)
	}
	b.ReportMetric(float64(hex)/float64(len(z)), "hex/z64")
	b.ReportMetric(float64(hex)/float64(acs), "hex/acs")
	b.ReportMetric(float64(len(z)), "z64-bytes")
}

// BenchmarkJob100kPeakMemory streams a 100k-record CSV (generated through
// a pipe, never held whole) to native ZPL and reports the peak heap and
// the process's peak RSS (VmHWM).
func BenchmarkJob100kPeakMemory(b *testing.B) {
	l := loadExample(b, "shipping.json")
	var peak uint64
	var ms runtime.MemStats
	for b.Loop() {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(csvJob(pw, 100000)) }()
		rr, err := NewRecordReader(FormatCSV, pr, ReadOptions{MaxBytes: 1 << 30})
		if err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, 0, 4096)
		for i := 0; ; i++ {
			rec, err := rr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if buf, err = AppendRender(buf[:0], l, rec, Target{Lang: LangZPL}); err != nil {
				b.Fatal(err)
			}
			if i%10000 == 0 {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
		}
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
	b.ReportMetric(vmHWM()/(1<<10), "peak-rss-MB")
}

// vmHWM is the peak resident set size in KiB from /proc (Linux), or 0.
func vmHWM() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return n
		}
	}
	return 0
}

// BenchmarkCSV1000To4x6Raster is the glabels-3-batch comparison: a
// 1,000-row CSV merged into a 4×6 in label with two text fields and a
// Code 128, as raster ZPL (Z64), parsing included.
func BenchmarkCSV1000To4x6Raster(b *testing.B) {
	l := loadExample(b, "shipping-4x6.json")
	var data bytes.Buffer
	csvJob(&data, 1000)
	buf := make([]byte, 0, 64<<10)
	labels := 0
	for b.Loop() {
		buf, labels = renderCSV(b, l, data.Bytes(), Target{Lang: LangZPL, Raster: true}, buf, labels)
	}
	b.ReportMetric(float64(labels)/b.Elapsed().Seconds(), "labels/s")
	b.ReportMetric(vmHWM()/(1<<10), "peak-rss-MB")
}

// BenchmarkValidateAllTargets is the job API's check of one shipping-label record for every
// language and resolution (label.AllTargets).
func BenchmarkValidateAllTargets(b *testing.B) {
	l := loadExample(b, "shipping.json")
	rec := readAll(b, FormatCSV, exampleData(b, "shipping.csv"), ReadOptions{})[0]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Validate(l, rec, AllTargets); err != nil {
			b.Fatal(err)
		}
	}
}
