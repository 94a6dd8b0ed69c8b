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
	f      *excelize.File
	rows   *excelize.Rows
	header []string
	row    int // sheet row number of the last row read (1-based)
	n      int
	done   bool
}

var _ io.Closer = (*xlsxReader)(nil)

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
	x := &xlsxReader{f: f, rows: rows}
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
