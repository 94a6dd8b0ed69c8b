package label

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"
)

// Record is one data record. Nested fields are flattened with "::" (e.g.
// "ship::to::name"), the field syntax of the PDF Generator API templates.
type Record map[string]string

// Format is a data format of a print job.
type Format string

// Data formats a job may carry: CSV, JSON, XML or Excel.
const (
	FormatCSV  Format = "csv"
	FormatJSON Format = "json"
	FormatXML  Format = "xml"
	FormatXLSX Format = "xlsx"
)

// ErrUnknownFormat is wrapped by ParseFormat for a name it does not know.
var ErrUnknownFormat = errors.New("label: unknown data format")

// ErrTooLarge is wrapped when data exceeds ReadOptions.MaxBytes or an XLSX
// file would unzip beyond ReadOptions.MaxUnzipBytes.
var ErrTooLarge = errors.New("label: data too large")

// ErrMalformed is wrapped by every record reader error caused by the data
// itself (as opposed to the underlying io.Reader failing).
var ErrMalformed = errors.New("label: malformed data")

// ParseFormat accepts a format name or a media type: "csv", "CSV",
// "text/csv", "application/json", "application/xml", "text/xml",
// "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx".
func ParseFormat(s string) (Format, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if mt, _, err := mime.ParseMediaType(t); err == nil {
		t = mt
	}
	t = strings.TrimPrefix(t, ".")
	switch t {
	case "csv", "text/csv", "application/csv", "text/comma-separated-values":
		return FormatCSV, nil
	case "json", "application/json", "text/json":
		return FormatJSON, nil
	case "xml", "application/xml", "text/xml":
		return FormatXML, nil
	case "xlsx", "excel", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":
		return FormatXLSX, nil
	}
	return "", fmt.Errorf("%w: %q (want csv, json, xml or xlsx)", ErrUnknownFormat, s)
}

// Default limits of ReadOptions.
const (
	DefaultMaxBytes      = 64 << 20
	DefaultMaxUnzipBytes = 256 << 20
)

// ReadOptions tunes NewRecordReader. The zero value is ready to use.
type ReadOptions struct {
	// Delimiter of CSV fields; 0 detects ',', ';' or tab from the header row.
	Delimiter rune
	// Sheet of an XLSX workbook; "" is the first sheet.
	Sheet string
	// RecordElement is the XML element name of one record; "" takes every
	// child element of the document's root element as a record.
	RecordElement string
	// MaxBytes bounds the input; 0 means DefaultMaxBytes.
	MaxBytes int64
	// Charset of CSV, JSON or XML bytes ("windows-1252", "iso-8859-15",
	// ...); "" means UTF-8, or for XML its encoding declaration. Data that
	// is not valid UTF-8 and declares no charset is refused.
	Charset string
	// MaxRows bounds the rows of an XLSX sheet; 0 means DefaultMaxRows.
	MaxRows int
	// MaxUnzipBytes bounds the unzipped size of an XLSX workbook (zip-bomb
	// guard); 0 means DefaultMaxUnzipBytes.
	MaxUnzipBytes int64
}

// RecordReader streams records; Next returns io.EOF after the last one.
// Errors name the record number (1-based, the header row not counted).
// A reader that holds resources also implements io.Closer.
type RecordReader interface {
	Next() (Record, error)
}

// NewRecordReader returns a streaming reader of f-formatted data from r.
// CSV, JSON and XML never hold more than one record in memory; XLSX has to
// read the whole (size-limited) workbook because a zip is read from its end.
func NewRecordReader(f Format, r io.Reader, opt ReadOptions) (RecordReader, error) {
	if opt.MaxBytes <= 0 {
		opt.MaxBytes = DefaultMaxBytes
	}
	if opt.MaxUnzipBytes <= 0 {
		opt.MaxUnzipBytes = DefaultMaxUnzipBytes
	}
	switch f {
	case FormatCSV, FormatJSON, FormatXML, FormatXLSX:
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnknownFormat, string(f))
	}
	lr := &limitReader{r: r, left: opt.MaxBytes, max: opt.MaxBytes}
	in, track, transcoded, err := decodeInput(lr, f, opt.Charset)
	if err != nil {
		return nil, err
	}
	switch f {
	case FormatCSV:
		return newCSVReader(in, track, opt)
	case FormatJSON:
		return newJSONReader(in, track)
	case FormatXML:
		return newXMLReader(in, track, transcoded, opt)
	case FormatXLSX:
		return newXLSXReader(lr, opt)
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownFormat, string(f))
}

// limitReader fails with ErrTooLarge instead of silently truncating, so a
// cut-off job is never printed as if it were complete.
type limitReader struct {
	r    io.Reader
	left int64
	max  int64
	err  error
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	if l.left <= 0 {
		// Probe one byte: data of exactly max bytes is fine.
		var b [1]byte
		n, err := l.r.Read(b[:])
		if n > 0 {
			// Sticky: a parser that retries must not see a clean EOF.
			l.err = fmt.Errorf("%w: more than %d bytes", ErrTooLarge, l.max)
			return 0, l.err
		}
		return 0, err
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// setField stores v under name, rejecting a second value for the same name
// (two XML children or a JSON key that collides with a flattened path).
func setField(rec Record, name, v string) error {
	if _, dup := rec[name]; dup {
		return fmt.Errorf("field %q appears twice", name)
	}
	rec[name] = v
	return nil
}

func recErr(format Format, n int, err error) error {
	if errors.Is(err, ErrTooLarge) {
		return fmt.Errorf("label: %s record %d: %w", format, n, err)
	}
	return fmt.Errorf("%w: %s record %d: %v", ErrMalformed, format, n, err)
}

var (
	_ RecordReader = (*csvReader)(nil)
	_ RecordReader = (*jsonReader)(nil)
	_ RecordReader = (*xmlReader)(nil)
)
