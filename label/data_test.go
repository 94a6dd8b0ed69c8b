package label

import (
	"archive/zip"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
)

// nasty is a table of values that break naive parsers: quotes, delimiters,
// newlines inside cells, UTF-8 beyond Latin-1, empty cells.
var nasty = []Record{
	{"id": "1", "name": `Say "hi"`, "note": "a,b;c\td"},
	{"id": "2", "name": "line1\nline2\r\nline3", "note": ""},
	{"id": "3", "name": "日本語 ☃ 🏷️ Ωmega", "note": "ﬁ ‮rtl"},
	{"id": "4", "name": " leading and trailing ", "note": "^XZ^XA~JR"},
}

var nastyCols = []string{"id", "name", "note"}

func writeCSV(t *testing.T, recs []Record, delim rune, bom bool) []byte {
	var buf bytes.Buffer
	if bom {
		buf.WriteString("\uFEFF")
	}
	w := csv.NewWriter(&buf)
	w.Comma = delim
	w.Write(nastyCols)
	for _, r := range recs {
		var row []string
		for _, c := range nastyCols {
			row = append(row, r[c])
		}
		w.Write(row)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// normalizeCRLF: encoding/csv turns \r\n inside a quoted field into \n
// (RFC 4180 leaves line endings to the implementation).
func normalizeCRLF(recs []Record) []Record {
	out := make([]Record, len(recs))
	for i, r := range recs {
		out[i] = Record{}
		for k, v := range r {
			out[i][k] = strings.ReplaceAll(v, "\r\n", "\n")
		}
	}
	return out
}

func TestCSVRoundTrip(t *testing.T) {
	for _, delim := range []rune{',', ';', '\t'} {
		for _, bom := range []bool{false, true} {
			t.Run(fmt.Sprintf("%q bom=%v", delim, bom), func(t *testing.T) {
				got := readAll(t, FormatCSV, writeCSV(t, nasty, delim, bom), ReadOptions{})
				if want := normalizeCRLF(nasty); !reflect.DeepEqual(got, want) {
					t.Errorf("got  %q\nwant %q", got, want)
				}
				got = readAll(t, FormatCSV, writeCSV(t, nasty, delim, bom), ReadOptions{Delimiter: delim})
				if want := normalizeCRLF(nasty); !reflect.DeepEqual(got, want) {
					t.Errorf("given delimiter: got %q", got)
				}
			})
		}
	}
}

func TestCSVMissingColumnsAndErrors(t *testing.T) {
	got := readAll(t, FormatCSV, []byte("a,b,c\n1,2\n4,,6\n"), ReadOptions{})
	want := []Record{{"a": "1", "b": "2"}, {"a": "4", "b": "", "c": "6"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	cases := []struct{ data, want string }{
		{"", "no header row"},
		{"a,,c\n", "column 2 has no name"},
		{"a,b,a\n", `column 3 repeats the name "a"`},
		{"a,b\n1,2\n3,4\n5,6,7\n", "csv record 3 (line 4): 3 fields, the header has 2"},
		{"a,b\n1,2\n\"x,2\n", "csv record 2 (line 3"},
		{"a,b\n1,\"x\"y\n", "csv record 1"},
	}
	for _, c := range cases {
		err := readErr(FormatCSV, c.data, ReadOptions{})
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: err = %v, want ErrMalformed with %q", c.data, err, c.want)
		}
	}
}

// readErr reads all records and returns the first error.
func readErr(f Format, data string, opt ReadOptions) error {
	rr, err := NewRecordReader(f, strings.NewReader(data), opt)
	if err != nil {
		return err
	}
	for {
		_, err := rr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func TestSizeLimit(t *testing.T) {
	var arr []map[string]string
	for _, r := range nasty {
		arr = append(arr, r)
	}
	js, _ := json.Marshal(arr)
	inputs := map[Format][]byte{
		FormatCSV:  writeCSV(t, nasty, ',', false),
		FormatJSON: js,
		FormatXML:  []byte(`<r><a x="1"/><a x="2"/><a x="3"/></r>`),
		FormatXLSX: xlsxBytes(t, "Sheet1", [][]any{{"a"}, {"1"}}),
	}
	for f, data := range inputs {
		if err := readErr(f, string(data), ReadOptions{MaxBytes: int64(len(data))}); err != nil {
			t.Errorf("%s: exactly MaxBytes: %v", f, err)
		}
		err := readErr(f, string(data), ReadOptions{MaxBytes: int64(len(data) - 1)})
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: err = %v, want ErrTooLarge", f, err)
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	var arr []map[string]string
	for _, r := range nasty {
		arr = append(arr, r)
	}
	b, _ := json.Marshal(arr)
	if got := readAll(t, FormatJSON, b, ReadOptions{}); !reflect.DeepEqual(got, nasty) {
		t.Errorf("got %q", got)
	}
	one, _ := json.Marshal(nasty[2])
	if got := readAll(t, FormatJSON, one, ReadOptions{}); !reflect.DeepEqual(got, nasty[2:3]) {
		t.Errorf("single object: got %q", got)
	}
	nested := `{"ship":{"to":{"name":"Ann","zip":"01234"}},"n":12345678901234567890,"f":1.50,"ok":true,"gone":null,"items":[{"sku":"A"},{"sku":"B"}]}`
	want := Record{"ship::to::name": "Ann", "ship::to::zip": "01234", "n": "12345678901234567890", "f": "1.50", "ok": "true", "items::0::sku": "A", "items::1::sku": "B"}
	if got := readAll(t, FormatJSON, []byte(nested), ReadOptions{}); !reflect.DeepEqual(got, []Record{want}) {
		t.Errorf("nested: got %q\nwant %q", got, want)
	}
	cases := []struct{ data, want string }{
		{``, "no data"},
		{`"x"`, "want an object"},
		{`[{"a":1},"x"]`, "json record 2: want an object, got a string"},
		{`[{"a":1},{"a":2},{"a":`, "json record 3"},
		{`{"a":1} {"b":2}`, "trailing data"},
		{`[{"a":1}] x`, "json record 1"},
		{`{"a::b":1,"a":{"b":2}}`, `field "a::b" appears twice`},
	}
	for _, c := range cases {
		err := readErr(FormatJSON, c.data, ReadOptions{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err = %v, want %q", c.data, err, c.want)
		}
	}
}

func TestXMLRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	buf.WriteString(`<?xml version="1.0"?>` + "\n<records>\n")
	for _, r := range nasty {
		fmt.Fprintf(&buf, `  <record id="%s">`, r["id"])
		for _, k := range []string{"name", "note"} {
			buf.WriteString("<" + k + ">")
			xml.EscapeText(&buf, []byte(r[k]))
			buf.WriteString("</" + k + ">")
		}
		buf.WriteString("</record>\n")
	}
	buf.WriteString("</records>\n")
	// EscapeText writes \r as &#xD;, which survives end-of-line
	// normalisation (XML 1.0 §2.11).
	want := nasty
	if got := readAll(t, FormatXML, buf.Bytes(), ReadOptions{}); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if got := readAll(t, FormatXML, buf.Bytes(), ReadOptions{RecordElement: "record"}); !reflect.DeepEqual(got, want) {
		t.Errorf("by name: got %q", got)
	}
	nested := `<jobs><batch><order no="7"><ship><to country="DE">Ann</to></ship><empty/></order></batch></jobs>`
	got := readAll(t, FormatXML, []byte(nested), ReadOptions{RecordElement: "order"})
	wantN := []Record{{"no": "7", "ship::to::country": "DE", "ship::to": "Ann", "empty": ""}}
	if !reflect.DeepEqual(got, wantN) {
		t.Errorf("nested: got %q, want %q", got, wantN)
	}
	cases := []struct{ data, want string }{
		{`<r><a><x>1</x><x>2</x></a></r>`, `xml record 1: field "x" appears twice`},
		{`<r><a><x>1</x></a><a><x>1</y></a></r>`, "xml record 2"},
		{`<r><a><x>1</x></a><a>`, "xml record 2"},
		{`<r><a>t<x>1</x></a></r>`, "mixes text"},
	}
	for _, c := range cases {
		err := readErr(FormatXML, c.data, ReadOptions{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err = %v, want %q", c.data, err, c.want)
		}
	}
	recs := readAll(t, FormatXML, exampleData(t, "products.xml"), ReadOptions{})
	if len(recs) != 2 || recs[0]["sku"] != "ABC-123" || recs[0]["title"] != "Cordless drill 18 V & two batteries" || recs[0]["copies"] != "2" {
		t.Errorf("products.xml: %q", recs)
	}
}

func xlsxBytes(t testing.TB, sheet string, rows [][]any) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	if sheet != "Sheet1" {
		f.NewSheet(sheet)
	}
	for i, row := range rows {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := f.SetSheetRow(sheet, cell, &row); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestXLSXRoundTrip(t *testing.T) {
	rows := [][]any{{"id", "name", "note"}}
	for _, r := range nasty {
		rows = append(rows, []any{r["id"], r["name"], r["note"]})
	}
	rows = append(rows, []any{}) // a blank row is skipped
	rows = append(rows, []any{"5", 42, nil})
	want := append(append([]Record{}, nasty...), Record{"id": "5", "name": "42", "note": ""})
	got := readAll(t, FormatXLSX, xlsxBytes(t, "Sheet1", rows), ReadOptions{})
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	named := xlsxBytes(t, "Jobs", [][]any{{"sku"}, {"A-1"}})
	if got := readAll(t, FormatXLSX, named, ReadOptions{Sheet: "Jobs"}); !reflect.DeepEqual(got, []Record{{"sku": "A-1"}}) {
		t.Errorf("named sheet: %q", got)
	}
	if err := readErr(FormatXLSX, string(named), ReadOptions{Sheet: "Nope"}); err == nil || !strings.Contains(err.Error(), `"Nope"`) {
		t.Errorf("missing sheet: %v", err)
	}
	if err := readErr(FormatXLSX, "not a zip", ReadOptions{}); !errors.Is(err, ErrMalformed) {
		t.Errorf("not a zip: %v", err)
	}
	extra := xlsxBytes(t, "Sheet1", [][]any{{"a"}, {"1"}, {"2", "surprise"}})
	if err := readErr(FormatXLSX, string(extra), ReadOptions{}); err == nil || !strings.Contains(err.Error(), "xlsx record 2 (row 3)") {
		t.Errorf("extra column: %v", err)
	}
}

// TestXLSXZipBomb: a small zip whose member inflates to far more than the
// limit is refused before it is inflated.
func TestXLSXZipBomb(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("xl/worksheets/sheet1.xml")
	zeros := make([]byte, 1<<20)
	for range 64 {
		w.Write(zeros)
	}
	zw.Close()
	if buf.Len() > 1<<20 {
		t.Fatalf("bomb is %d bytes, expected it to compress", buf.Len())
	}
	err := readErr(FormatXLSX, buf.String(), ReadOptions{MaxUnzipBytes: 16 << 20})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "unzips to more than") {
		t.Errorf("err = %v, want ErrTooLarge", err)
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{
		"csv": FormatCSV, "CSV": FormatCSV, "text/csv; charset=utf-8": FormatCSV,
		"application/json": FormatJSON, "JSON": FormatJSON, "text/xml": FormatXML, "xml": FormatXML,
		"xlsx": FormatXLSX, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": FormatXLSX,
	} {
		if got, err := ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseFormat("pdf"); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("pdf: %v", err)
	}
}

func TestCSVDelimiterDetection(t *testing.T) {
	cases := []struct {
		data string
		want []Record
	}{
		// Commas inside a quoted header name do not count.
		{"\"a,b,c\";d\n1;2\n", []Record{{"a,b,c": "1", "d": "2"}}},
		{"a\tb\tc;d\n1\t2\t3;4\n", []Record{{"a": "1", "b": "2", "c;d": "3;4"}}},
		{"single\nx\n", []Record{{"single": "x"}}},
		{"a,b\r\n1,2\r\n", []Record{{"a": "1", "b": "2"}}},
	}
	for _, c := range cases {
		if got := readAll(t, FormatCSV, []byte(c.data), ReadOptions{}); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: got %q, want %q", c.data, got, c.want)
		}
	}
}

func TestXMLNamespacesAndAttributes(t *testing.T) {
	doc := `<?xml version="1.0"?>
<j:jobs xmlns:j="urn:example:jobs" xmlns="urn:example:default">
  <j:label j:id="1" lang="de"><name>Ann</name><addr city="Köln"/></j:label>
</j:jobs>`
	got := readAll(t, FormatXML, []byte(doc), ReadOptions{})
	want := []Record{{"id": "1", "lang": "de", "name": "Ann", "addr::city": "Köln"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
