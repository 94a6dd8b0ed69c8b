package label

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

type csvReader struct {
	r      *csv.Reader
	track  *utf8Tracker
	header []string
	n      int
}

// newCSVReader reads RFC 4180 CSV with a header row. A UTF-8 BOM (as Excel
// writes it) is skipped; the delimiter is detected from the header line
// unless given.
func newCSVReader(r io.Reader, track *utf8Tracker, opt ReadOptions) (*csvReader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	delim := opt.Delimiter
	if delim == 0 {
		head, err := br.Peek(64 << 10)
		if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
			return nil, recErr(FormatCSV, 0, err)
		}
		delim = detectDelimiter(head)
	}
	if delim == '"' || delim == '\r' || delim == '\n' || delim == 0xFFFD {
		return nil, fmt.Errorf("%w: csv: delimiter %q is not allowed", ErrMalformed, delim)
	}
	cr := csv.NewReader(br)
	cr.Comma = delim
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%w: csv: no header row", ErrMalformed)
	}
	if err != nil {
		return nil, csvErr(0, err)
	}
	c := &csvReader{r: cr, track: track}
	h := make([]string, len(header))
	seen := map[string]int{}
	for i, name := range header {
		if err := c.checkUTF8(name, i, 0); err != nil {
			return nil, err
		}
		name = strings.TrimSpace(name)
		if name == "" {
			return nil, fmt.Errorf("%w: csv header: column %d has no name", ErrMalformed, i+1)
		}
		if j, dup := seen[name]; dup {
			return nil, fmt.Errorf("%w: csv header: column %d repeats the name %q of column %d", ErrMalformed, i+1, name, j+1)
		}
		seen[name] = i + 1
		h[i] = name
	}
	c.header = h
	return c, nil
}

// checkUTF8 refuses a field that is not valid UTF-8, naming where it is;
// it costs nothing until the tracker has seen an invalid byte.
func (c *csvReader) checkUTF8(v string, col, record int) error {
	if c.track == nil || c.track.bad < 0 || utf8.ValidString(v) {
		return nil
	}
	what := "header"
	if record > 0 {
		what = fmt.Sprintf("record %d", record)
	}
	line, _ := c.r.FieldPos(col)
	name := fmt.Sprintf("column %d", col+1)
	if c.header != nil && col < len(c.header) {
		name = fmt.Sprintf("column %d %q", col+1, c.header[col])
	}
	return fmt.Errorf("%w: csv %s, %s (line %d): %s", ErrMalformed, what, name, line, c.track.invalid())
}

// detectDelimiter counts ',', ';' and tab in the first line (outside quotes)
// and picks the most frequent; ',' wins ties and the empty case.
func detectDelimiter(b []byte) rune {
	var comma, semi, tab int
	inQ := false
	for _, c := range b {
		if c == '"' {
			inQ = !inQ
			continue
		}
		if inQ {
			continue
		}
		if c == '\n' {
			break
		}
		switch c {
		case ',':
			comma++
		case ';':
			semi++
		case '\t':
			tab++
		}
	}
	switch {
	case semi > comma && semi >= tab:
		return ';'
	case tab > comma && tab > semi:
		return '\t'
	}
	return ','
}

func csvErr(n int, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%w: csv record %d (line %d, column %d): %v", ErrMalformed, n, pe.Line, pe.Column, pe.Err)
	}
	return recErr(FormatCSV, n, err)
}

func (c *csvReader) Next() (Record, error) {
	row, err := c.r.Read()
	if err == io.EOF {
		return nil, io.EOF
	}
	c.n++
	if err != nil {
		return nil, csvErr(c.n, err)
	}
	if len(row) > len(c.header) {
		line, _ := c.r.FieldPos(0)
		return nil, fmt.Errorf("%w: csv record %d (line %d): %d fields, the header has %d", ErrMalformed, c.n, line, len(row), len(c.header))
	}
	rec := make(Record, len(row))
	for i, v := range row {
		if err := c.checkUTF8(v, i, c.n); err != nil {
			return nil, err
		}
		rec[c.header[i]] = v
	}
	return rec, nil
}
