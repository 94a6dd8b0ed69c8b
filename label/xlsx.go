//go:build !noxlsx

package label

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/xuri/excelize/v2"
)

type xlsxReader struct {
	info   *xlsxSheetInfo
	merged map[[2]int]string // top-left value of each merged range seen
	active [][4]int
	f      *excelize.File
	rows   *excelize.Rows
	header []string
	row    int // sheet row number of the last row read (1-based)
	n      int
	done   bool
}

var (
	_ io.Closer    = (*xlsxReader)(nil)
	_ RecordReader = (*xlsxReader)(nil)
)

// newXLSXReader opens a workbook (first sheet or opt.Sheet; first row is the
// header). The zip directory is checked against opt.MaxUnzipBytes before
// excelize inflates anything, so a zip bomb fails fast with ErrTooLarge.
func newXLSXReader(r io.Reader, opt ReadOptions) (*xlsxReader, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, recErr(FormatXLSX, 0, err)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("%w: xlsx: not a zip file: %v", ErrMalformed, err)
	}
	var total uint64
	for _, zf := range zr.File {
		total += zf.UncompressedSize64
		if total > uint64(opt.MaxUnzipBytes) {
			return nil, fmt.Errorf("%w: xlsx unzips to more than %d bytes (at %q)", ErrTooLarge, opt.MaxUnzipBytes, zf.Name)
		}
	}
	maxRows := opt.MaxRows
	if maxRows <= 0 {
		maxRows = DefaultMaxRows
	}
	info, err := checkWorkbook(zr, opt.Sheet, maxRows)
	if err != nil {
		return nil, err
	}
	xmlLimit := min(opt.MaxUnzipBytes, 16<<20)
	f, err := excelize.OpenReader(bytes.NewReader(data), excelize.Options{UnzipSizeLimit: opt.MaxUnzipBytes, UnzipXMLSizeLimit: xmlLimit})
	if err != nil {
		return nil, fmt.Errorf("%w: xlsx: %v", ErrMalformed, err)
	}
	sheet := opt.Sheet
	if sheet == "" {
		list := f.GetSheetList()
		if len(list) == 0 {
			f.Close()
			return nil, fmt.Errorf("%w: xlsx: workbook has no sheet", ErrMalformed)
		}
		sheet = list[0]
	}
	rows, err := f.Rows(sheet)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: xlsx: sheet %q: %v", ErrMalformed, sheet, err)
	}
	x := &xlsxReader{f: f, rows: rows, info: info, merged: map[[2]int]string{}}
	for x.header == nil {
		cols, err := x.nextRow()
		if err == io.EOF {
			x.Close()
			return nil, fmt.Errorf("%w: xlsx: sheet %q has no header row", ErrMalformed, sheet)
		}
		if err != nil {
			x.Close()
			return nil, recErr(FormatXLSX, 0, err)
		}
		if cols == nil {
			continue
		}
		seen := map[string]int{}
		for i, c := range cols {
			c = strings.TrimSpace(c)
			if c == "" {
				x.Close()
				return nil, fmt.Errorf("%w: xlsx header (row %d): column %d has no name", ErrMalformed, x.row, i+1)
			}
			if j, dup := seen[c]; dup {
				x.Close()
				return nil, fmt.Errorf("%w: xlsx header (row %d): column %d repeats the name %q of column %d", ErrMalformed, x.row, i+1, c, j)
			}
			seen[c] = i + 1
			cols[i] = c
		}
		x.header = cols
	}
	return x, nil
}

// asDisplayed replaces excelize's General-format numbers with the digits
// of the file and gives every cell of a merged range the value of its
// top-left cell, as the sheet shows it.
func (x *xlsxReader) asDisplayed(cols []string) []string {
	for _, c := range x.info.exact[x.row] {
		for len(cols) < c.col {
			cols = append(cols, "")
		}
		cols[c.col-1] = c.v
	}
	delete(x.info.exact, x.row)
	// Merged ranges are sorted by their first row; active holds the ones
	// covering this row.
	for len(x.info.merges) > 0 && x.info.merges[0][0] <= x.row {
		x.active = append(x.active, x.info.merges[0])
		x.info.merges = x.info.merges[1:]
	}
	keep := x.active[:0]
	for _, m := range x.active {
		if m[2] < x.row {
			delete(x.merged, [2]int{m[0], m[1]})
			continue
		}
		keep = append(keep, m)
		key := [2]int{m[0], m[1]}
		if x.row == m[0] {
			v := ""
			if m[1] <= len(cols) {
				v = cols[m[1]-1]
			}
			x.merged[key] = v
		}
		v := x.merged[key]
		for len(cols) < m[3] {
			cols = append(cols, "")
		}
		for c := m[1]; c <= m[3]; c++ {
			cols[c-1] = v
		}
	}
	x.active = keep
	return cols
}

// nextRow returns the next row's cells, nil for a blank row.
func (x *xlsxReader) nextRow() ([]string, error) {
	if !x.rows.Next() {
		if err := x.rows.Error(); err != nil {
			return nil, err
		}
		return nil, io.EOF
	}
	x.row++
	cols, err := x.rows.Columns()
	if err != nil {
		return nil, err
	}
	cols = x.asDisplayed(cols)
	for _, c := range cols {
		if c != "" {
			return cols, nil
		}
	}
	return nil, nil
}

func (x *xlsxReader) Next() (Record, error) {
	if x.done {
		return nil, io.EOF
	}
	for {
		cols, err := x.nextRow()
		if err == io.EOF {
			x.Close()
			return nil, io.EOF
		}
		if err != nil {
			x.Close()
			return nil, recErr(FormatXLSX, x.n+1, err)
		}
		if cols == nil {
			continue
		}
		x.n++
		for i := len(x.header); i < len(cols); i++ {
			if cols[i] != "" {
				return nil, fmt.Errorf("%w: xlsx record %d (row %d): value in column %d, beyond the %d header columns", ErrMalformed, x.n, x.row, i+1, len(x.header))
			}
		}
		// A spreadsheet cannot tell an empty cell from a missing one:
		// every header column is present, empty when blank.
		rec := make(Record, len(x.header))
		for i, h := range x.header {
			if i < len(cols) {
				rec[h] = cols[i]
			} else {
				rec[h] = ""
			}
		}
		return rec, nil
	}
}

// Close releases the workbook's temporary files. Next calls it at io.EOF.
func (x *xlsxReader) Close() error {
	x.done = true
	if x.rows != nil {
		x.rows.Close()
	}
	return x.f.Close()
}
