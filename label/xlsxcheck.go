//go:build !noxlsx

package label

import (
	"archive/zip"
	"encoding/xml"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/xuri/excelize/v2"
)

// DefaultMaxRows bounds the rows of an XLSX sheet: Excel's own limit.
const DefaultMaxRows = 1 << 20

// xlsxSheetInfo is what the check pass learns about the sheet: cell values
// that excelize's formatting would change (numbers in the General format
// keep the digits written in the file) and the merged ranges.
type xlsxSheetInfo struct {
	exact  map[int][]exactCell // by row (1-based)
	merges [][4]int            // row1, col1, row2, col2, sorted by row1
}

type exactCell struct {
	col int // 1-based
	v   string
}

// checkWorkbook reads every part of the zip through archive/zip, so a
// member cut short or declaring a wrong size or CRC is refused, then parses
// the sheet with a strict XML decoder: a sheet cut off anywhere (even at a
// row boundary), rows beyond its declared dimension or beyond maxRows, a
// shared string index beyond the table, a formula without a cached value
// and an error value (#DIV/0!) are all refused naming the cell. excelize
// alone would return the rows before the damage as a complete job.
func checkWorkbook(zr *zip.Reader, sheet string, maxRows int) (*xlsxSheetInfo, error) {
	parts := map[string]*zip.File{}
	for _, zf := range zr.File {
		rc, err := zf.Open()
		if err != nil {
			return nil, fmt.Errorf("%w: xlsx part %q: %v", ErrMalformed, zf.Name, err)
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("%w: xlsx part %q is damaged: %v", ErrMalformed, zf.Name, err)
		}
		parts[strings.TrimPrefix(zf.Name, "/")] = zf
	}
	sheetPath, err := findSheet(parts, sheet)
	if err != nil {
		return nil, err
	}
	numFmts, err := styleNumFmts(parts["xl/styles.xml"])
	if err != nil {
		return nil, err
	}
	nShared, err := countShared(parts["xl/sharedStrings.xml"])
	if err != nil {
		return nil, err
	}
	return scanSheet(parts[sheetPath], numFmts, nShared, maxRows)
}

func openXML(zf *zip.File) (*xml.Decoder, io.Closer, error) {
	rc, err := zf.Open()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: xlsx part %q: %v", ErrMalformed, zf.Name, err)
	}
	d := xml.NewDecoder(rc)
	d.Strict = true
	d.CharsetReader = func(label string, in io.Reader) (io.Reader, error) { return in, nil }
	return d, rc, nil
}

// walkXML calls fn for every start element of the part; a part that is not
// well-formed XML to its end is an error. fn reports whether it consumed
// the element up to its end (xml.Decoder.DecodeElement).
func walkXML(zf *zip.File, fn func(d *xml.Decoder, se xml.StartElement) (bool, error)) error {
	d, c, err := openXML(zf)
	if err != nil {
		return err
	}
	defer c.Close()
	depth := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			if depth != 0 {
				return fmt.Errorf("%w: xlsx part %q ends inside an element (cut short?)", ErrMalformed, zf.Name)
			}
			return nil
		}
		if err != nil {
			if strings.Contains(err.Error(), "unexpected EOF") {
				return fmt.Errorf("%w: xlsx part %q ends inside an element (cut short?): %v", ErrMalformed, zf.Name, err)
			}
			return fmt.Errorf("%w: xlsx part %q: %v", ErrMalformed, zf.Name, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			consumed, err := fn(d, t)
			if err != nil {
				return err
			}
			if consumed {
				depth--
			}
		case xml.EndElement:
			depth--
		}
	}
}

func attr(se xml.StartElement, name string) string {
	for _, a := range se.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// findSheet resolves a sheet name (or the first sheet) to its part path
// through xl/workbook.xml and its relationships.
func findSheet(parts map[string]*zip.File, sheet string) (string, error) {
	wb, ok := parts["xl/workbook.xml"]
	if !ok {
		return "", fmt.Errorf("%w: xlsx has no xl/workbook.xml", ErrMalformed)
	}
	rid := ""
	err := walkXML(wb, func(_ *xml.Decoder, se xml.StartElement) (bool, error) {
		if se.Name.Local == "sheet" && rid == "" && (sheet == "" || attr(se, "name") == sheet) {
			rid = attr(se, "id")
		}
		return false, nil
	})
	if err != nil {
		return "", err
	}
	if rid == "" {
		if sheet == "" {
			return "", fmt.Errorf("%w: xlsx: workbook has no sheet", ErrMalformed)
		}
		return "", fmt.Errorf("%w: xlsx: sheet %q does not exist", ErrMalformed, sheet)
	}
	rels, ok := parts["xl/_rels/workbook.xml.rels"]
	if !ok {
		return "", fmt.Errorf("%w: xlsx has no xl/_rels/workbook.xml.rels", ErrMalformed)
	}
	target := ""
	err = walkXML(rels, func(_ *xml.Decoder, se xml.StartElement) (bool, error) {
		if se.Name.Local == "Relationship" && attr(se, "Id") == rid {
			target = attr(se, "Target")
		}
		return false, nil
	})
	if err != nil {
		return "", err
	}
	p := strings.TrimPrefix(target, "/")
	if !strings.HasPrefix(target, "/") {
		p = path.Join("xl", target)
	}
	if _, ok := parts[p]; !ok || target == "" {
		return "", fmt.Errorf("%w: xlsx: sheet %q points to %q, which is not in the file", ErrMalformed, sheet, target)
	}
	return p, nil
}

// styleNumFmts lists the number format id of each cell style (cellXfs).
func styleNumFmts(zf *zip.File) ([]int, error) {
	if zf == nil {
		return nil, nil
	}
	var out []int
	in := false
	err := walkXML(zf, func(_ *xml.Decoder, se xml.StartElement) (bool, error) {
		switch se.Name.Local {
		case "cellXfs":
			in = true
		case "cellStyleXfs", "dxfs":
			in = false
		case "xf":
			if in {
				n, _ := strconv.Atoi(attr(se, "numFmtId"))
				out = append(out, n)
			}
		}
		return false, nil
	})
	return out, err
}

func countShared(zf *zip.File) (int, error) {
	if zf == nil {
		return 0, nil
	}
	n := 0
	err := walkXML(zf, func(_ *xml.Decoder, se xml.StartElement) (bool, error) {
		if se.Name.Local == "si" {
			n++
		}
		return false, nil
	})
	return n, err
}

func scanSheet(zf *zip.File, numFmts []int, nShared, maxRows int) (*xlsxSheetInfo, error) {
	info := &xlsxSheetInfo{exact: map[int][]exactCell{}}
	dimRows, lastRow, rows := 0, 0, 0
	err := walkXML(zf, func(d *xml.Decoder, se xml.StartElement) (bool, error) {
		switch se.Name.Local {
		case "dimension":
			if _, end, ok := strings.Cut(attr(se, "ref"), ":"); ok {
				_, dimRows, _ = excelize.CellNameToCoordinates(end)
			}
		case "row":
			rows++
			if rows > maxRows {
				return false, fmt.Errorf("%w: xlsx sheet has more than %d rows", ErrTooLarge, maxRows)
			}
			if r, err := strconv.Atoi(attr(se, "r")); err == nil {
				lastRow = r
			} else {
				lastRow++
			}
		case "mergeCell":
			a, b, _ := strings.Cut(attr(se, "ref"), ":")
			c1, r1, err1 := excelize.CellNameToCoordinates(a)
			c2, r2, err2 := excelize.CellNameToCoordinates(b)
			if err1 != nil || err2 != nil || r2 < r1 || c2 < c1 {
				return false, fmt.Errorf("%w: xlsx: merged range %q is not a range", ErrMalformed, attr(se, "ref"))
			}
			info.merges = append(info.merges, [4]int{r1, c1, r2, c2})
		case "c":
			var c struct {
				R string `xml:"r,attr"`
				S int    `xml:"s,attr"`
				T string `xml:"t,attr"`
				F *struct {
					Text string `xml:",chardata"`
				} `xml:"f"`
				V *string `xml:"v"`
			}
			if err := d.DecodeElement(&c, &se); err != nil {
				return false, fmt.Errorf("%w: xlsx cell %s: %v", ErrMalformed, c.R, err)
			}
			col, row, err := excelize.CellNameToCoordinates(c.R)
			if err != nil {
				return false, fmt.Errorf("%w: xlsx: cell reference %q: %v", ErrMalformed, c.R, err)
			}
			if c.F != nil && c.V == nil && c.T != "inlineStr" {
				return false, fmt.Errorf("%w: xlsx cell %s: the formula =%s has no saved value (open the workbook in a spreadsheet program and save it)", ErrMalformed, c.R, c.F.Text)
			}
			switch c.T {
			case "e":
				return false, fmt.Errorf("%w: xlsx cell %s shows the error %s", ErrMalformed, c.R, deref(c.V))
			case "s":
				if i, err := strconv.Atoi(strings.TrimSpace(deref(c.V))); err != nil || i < 0 || i >= nShared {
					return false, fmt.Errorf("%w: xlsx cell %s: shared string %q is not among the %d in the workbook", ErrMalformed, c.R, deref(c.V), nShared)
				}
			case "", "n":
				fmtID := 0
				if c.S > 0 && c.S < len(numFmts) {
					fmtID = numFmts[c.S]
				}
				if v := strings.TrimSpace(deref(c.V)); fmtID == 0 && v != "" {
					if _, err := strconv.ParseFloat(v, 64); err != nil {
						return false, fmt.Errorf("%w: xlsx cell %s: %q is not a number", ErrMalformed, c.R, v)
					}
					info.exact[row] = append(info.exact[row], exactCell{col, generalNumber(v)})
				}
			}
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(info.merges, func(a, b int) bool { return info.merges[a][0] < info.merges[b][0] })
	if dimRows > 0 && lastRow < dimRows {
		return nil, fmt.Errorf("%w: xlsx sheet declares rows up to %d but ends at row %d (cut short?)", ErrMalformed, dimRows, lastRow)
	}
	return info, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// generalNumber is a number in the General format as the file spells it:
// whole numbers keep every digit (an 18-digit parcel number stays exact),
// others are written in the shortest plain decimal form, never with an
// exponent.
func generalNumber(v string) string {
	digits := strings.TrimPrefix(v, "-")
	if digits != "" && strings.Trim(digits, "0123456789") == "" {
		return v
	}
	f, _ := strconv.ParseFloat(v, 64)
	return strconv.FormatFloat(f, 'f', -1, 64)
}
