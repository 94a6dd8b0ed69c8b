package label

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"hash/crc32"
	"reflect"
	"strings"
	"testing"
)

// handXLSX builds a workbook from hand-written parts, the way other tools
// (not excelize) write them: explicit number formats, raw <v> text,
// formulas with cached values, shared and inline strings, merged cells.
func handXLSX(t testing.TB, sheetXML, stylesXML string, shared []string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(name, body string) {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(body))
	}
	add("[Content_Types].xml", `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>`)
	add("_rels/.rels", `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>`)
	add("xl/workbook.xml", `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Parcels" sheetId="1" r:id="rId1"/></sheets></workbook>`)
	add("xl/_rels/workbook.xml.rels", `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/><Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>`)
	add("xl/styles.xml", `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">`+stylesXML+`</styleSheet>`)
	var ss strings.Builder
	for _, s := range shared {
		fmt.Fprintf(&ss, "<si><t xml:space=\"preserve\">%s</t></si>", s)
	}
	add("xl/sharedStrings.xml", fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="%d" uniqueCount="%d">%s</sst>`, len(shared), len(shared), ss.String()))
	add("xl/worksheets/sheet1.xml", `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">`+sheetXML+`</worksheet>`)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Styles: 0 General, 1 "0.00", 2 date 14, 3 custom "yyyy-mm-dd", 4 "0", 5 text "@", 6 "#,##0.00", 7 "dd.mm.yyyy hh:mm"
const handStyles = `<numFmts count="3"><numFmt numFmtId="164" formatCode="yyyy\-mm\-dd"/><numFmt numFmtId="165" formatCode="dd.mm.yyyy hh:mm"/><numFmt numFmtId="166" formatCode="000000"/></numFmts>
<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts><fills count="1"><fill><patternFill patternType="none"/></fill></fills><borders count="1"><border/></borders>
<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>
<cellXfs count="9"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/><xf numFmtId="2" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/><xf numFmtId="14" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/><xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/><xf numFmtId="1" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/><xf numFmtId="49" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/><xf numFmtId="4" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/><xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/><xf numFmtId="166" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>`

// handSheet: header, then formats, dates, a formula with its cached value,
// General numbers, inline and shared strings, a boolean, empty cells, a
// gap in the row numbers, merged cells and a very long field.
func handSheet(extraRows string) string {
	return `<dimension ref="A1:I7"/><sheetData>
<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c><c r="C1" t="s"><v>2</v></c><c r="D1" t="s"><v>3</v></c><c r="E1" t="s"><v>4</v></c><c r="F1" t="s"><v>5</v></c><c r="G1" t="s"><v>6</v></c><c r="H1" t="s"><v>7</v></c><c r="I1" t="s"><v>8</v></c></row>
<row r="2"><c r="A2" s="1"><v>7.3</v></c><c r="B2" s="1"><v>21</v></c><c r="C2"><v>123456789012345678</v></c><c r="D2" s="2"><v>45000</v></c><c r="E2" s="3"><v>45000.5</v></c><c r="F2" s="7"><v>45000.75</v></c><c r="G2"><f>A2*2</f><v>14.6</v></c><c r="H2" s="8"><v>4711</v></c><c r="I2" t="inlineStr"><is><t>inline “quoted”</t></is></c></row>
<row r="3"><c r="A3"><v>12.50</v></c><c r="B3" s="6"><v>1234.5</v></c><c r="C3" s="5" t="s"><v>9</v></c><c r="D3"><v>1.5E-3</v></c><c r="G3" t="str"><f>"x"&amp;"y"</f><v>xy</v></c><c r="H3" t="b"><v>1</v></c><c r="I3" t="s"><v>10</v></c></row>
<row r="5"><c r="A5" t="s"><v>11</v></c><c r="C5"><v>1</v></c></row>
<row r="6"><c r="B6"><v>2</v></c></row>
<row r="7"><c r="A7" t="s"><v>12</v></c><c r="B7" t="s"><v>13</v></c></row>` + extraRows + `
</sheetData><mergeCells count="2"><mergeCell ref="A5:A6"/><mergeCell ref="B7:D7"/></mergeCells>`
}

var handShared = []string{"w", "i", "big", "date", "iso", "dt", "formula", "zip", "inl", "007.30", strings.Repeat("long ", 20000), "Hamburg", "x", "merged across"}

func TestXLSXAsDisplayed(t *testing.T) {
	got := readAll(t, FormatXLSX, handXLSX(t, handSheet(""), handStyles, handShared), ReadOptions{})
	blank := Record{"w": "", "i": "", "big": "", "date": "", "iso": "", "dt": "", "formula": "", "zip": "", "inl": ""}
	rec := func(kv ...string) Record {
		r := Record{}
		for k, v := range blank {
			r[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			r[kv[i]] = kv[i+1]
		}
		return r
	}
	want := []Record{
		rec("w", "7.30", "i", "21.00", "big", "123456789012345678", "date", "03-15-23", "iso", "2023-03-15", "dt", "15.03.2023 18:00", "formula", "14.6", "zip", "004711", "inl", "inline “quoted”"),
		rec("w", "12.5", "i", "1,234.50", "big", "007.30", "date", "0.0015", "formula", "xy", "zip", "TRUE", "inl", strings.Repeat("long ", 20000)),
		rec("w", "Hamburg", "big", "1"), // row 5: top of the merged A5:A6
		rec("w", "Hamburg", "i", "2"),   // row 6: A6 shows A5
		rec("w", "x", "i", "merged across", "big", "merged across", "date", "merged across"),
	}
	if !reflect.DeepEqual(got, want) {
		for i := range max(len(got), len(want)) {
			var g, w Record
			if i < len(got) {
				g = got[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if !reflect.DeepEqual(g, w) {
				t.Errorf("record %d:\n got %q\nwant %q", i+1, g, w)
			}
		}
	}
	// The 18-digit number reaches the barcode unchanged.
	l, err := ParseLayout([]byte(`{"version":1,"id":"b","width_mm":100,"height_mm":30,"elements":[{"type":"barcode","x":1,"y":1,"symbology":"code128","data":"{big}","module":0.2}]}`))
	if err != nil {
		t.Fatal(err)
	}
	z, err := Render(l, got[0], Target{})
	if err != nil || !bytes.Contains(z, []byte("^FD123456789012345678^FS")) {
		t.Errorf("barcode of the big number: %v\n%s", err, z)
	}
}

// rezip rebuilds a workbook with fn applied to each part's content; with
// underDeclare the sheet's header claims a tenth of its real size.
func rezip(t *testing.T, src []byte, fn func(name string, b []byte) []byte, underDeclare bool) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(src), int64(len(src)))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		rc, _ := f.Open()
		var b bytes.Buffer
		b.ReadFrom(rc)
		rc.Close()
		body := fn(f.Name, b.Bytes())
		var comp bytes.Buffer
		fw, _ := flate.NewWriter(&comp, flate.DefaultCompression)
		fw.Write(body)
		fw.Close()
		h := &zip.FileHeader{Name: f.Name, Method: zip.Deflate, CRC32: crc32.ChecksumIEEE(body),
			CompressedSize64: uint64(comp.Len()), UncompressedSize64: uint64(len(body))}
		if underDeclare && strings.Contains(f.Name, "worksheets") {
			h.UncompressedSize64 /= 10
		}
		w, err := zw.CreateRaw(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(comp.Bytes())
	}
	zw.Close()
	return buf.Bytes()
}

func TestXLSXRefusesDamage(t *testing.T) {
	good := handXLSX(t, handSheet(""), handStyles, handShared)
	keep := func(_ string, b []byte) []byte { return b }
	if got := readAll(t, FormatXLSX, rezip(t, good, keep, false), ReadOptions{}); len(got) != 5 {
		t.Fatalf("the rezipped workbook reads %d records, want 5", len(got))
	}
	cutAtRow := func(name string, b []byte) []byte {
		if strings.Contains(name, "worksheets") {
			return b[:bytes.Index(b, []byte("<row r=\"5\""))]
		}
		return b
	}
	// A sheet closed properly after row 3, still declaring A1:I7.
	closedEarly := func(name string, b []byte) []byte {
		if strings.Contains(name, "worksheets") {
			i := bytes.Index(b, []byte("<row r=\"5\""))
			return append(append([]byte{}, b[:i]...), "</sheetData></worksheet>"...)
		}
		return b
	}
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"zip cut in half", good[:len(good)/2], "not a zip file"},
		{"sheet cut at a row boundary", rezip(t, good, cutAtRow, false), "cut short"},
		{"sheet ends before its dimension", rezip(t, good, closedEarly, false), "declares rows up to 7 but ends at row 3"},
		{"sizes under-declared", rezip(t, good, keep, true), "is damaged"},
		{"formula without value", handXLSX(t, handSheet(`<row r="8"><c r="A8"><f>B3+1</f></c></row>`), handStyles, handShared), "cell A8: the formula =B3+1 has no saved value"},
		{"error value", handXLSX(t, handSheet(`<row r="8"><c r="C8" t="e"><v>#DIV/0!</v></c></row>`), handStyles, handShared), "cell C8 shows the error #DIV/0!"},
		{"shared string out of range", handXLSX(t, handSheet(`<row r="8"><c r="B8" t="s"><v>99</v></c></row>`), handStyles, handShared), "cell B8: shared string \"99\" is not among the 14"},
	}
	for _, c := range cases {
		err := readErr(FormatXLSX, string(c.data), ReadOptions{})
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v\nwant %q", c.name, err, c.want)
		}
	}
	err := readErr(FormatXLSX, string(good), ReadOptions{MaxRows: 4})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "more than 4 rows") {
		t.Errorf("row limit: %v", err)
	}
}
