package jobs

import (
	"bytes"
	"errors"
	"io"
	"maps"
	"testing"

	"github.com/xuri/excelize/v2"

	"labelstation/label"
)

func readAll(t *testing.T, f label.Format, data []byte) []label.Record {
	t.Helper()
	rr, err := label.NewRecordReader(f, bytes.NewReader(data), label.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []label.Record
	for {
		rec, err := rr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
}

// An XLSX job reaches the station as JSON records equal to what the XLSX reader yields (text,
// numbers as displayed, blank cells, quotes and non-ASCII); other formats go unchanged.
func TestDeliverableConvertsXLSX(t *testing.T) {
	f := excelize.NewFile()
	rows := [][]any{
		{"name", "zip", "note", "a.b"},
		{"Zoë \"Z\" Müller", 1234, "", "x"},
		{"Bob", 0.5, "line\nbreak", ""},
	}
	for i, r := range rows {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := f.SetSheetRow("Sheet1", cell, &r); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	xlsx := buf.Bytes()

	format, data, err := deliverable("xlsx", xlsx)
	if err != nil {
		t.Fatal(err)
	}
	if format != "json" {
		t.Fatalf("delivered as %q, want json", format)
	}
	want, got := readAll(t, label.FormatXLSX, xlsx), readAll(t, label.FormatJSON, data)
	if len(got) != 2 || len(got) != len(want) {
		t.Fatalf("%d records delivered, %d in the workbook, want 2", len(got), len(want))
	}
	for i := range want {
		if !maps.Equal(got[i], want[i]) {
			t.Errorf("record %d: delivered %q, workbook %q", i+1, got[i], want[i])
		}
	}

	csv := []byte("name\nAda\n")
	if format, data, err := deliverable("csv", csv); err != nil || format != "csv" || !bytes.Equal(data, csv) {
		t.Fatalf("csv: %q %q %v; want it unchanged", format, data, err)
	}
	if _, _, err := deliverable("xlsx", []byte("not a workbook")); err == nil {
		t.Fatal("a broken workbook converted without an error")
	}
}
