package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"labelstation/label"
)

// deliverable is the data format and data a station is sent for a job. XLSX is converted to a
// JSON array of records (every header column a string, as the XLSX reader yields them), so a
// station needs no spreadsheet reader: its release build leaves it out. Every other format
// goes as submitted. The records are the ones validated at submit: the same reader, the same
// first sheet, hence the same label count.
func deliverable(format string, data []byte) (string, []byte, error) {
	if f, err := label.ParseFormat(format); err != nil || f != label.FormatXLSX {
		return format, data, nil
	}
	rr, err := label.NewRecordReader(label.FormatXLSX, bytes.NewReader(data), label.ReadOptions{})
	if err != nil {
		return "", nil, fmt.Errorf("jobs: xlsx to json: %w", err)
	}
	if c, ok := rr.(io.Closer); ok {
		defer c.Close()
	}
	var out bytes.Buffer
	out.WriteByte('[')
	for n := 0; ; n++ {
		rec, err := rr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", nil, fmt.Errorf("jobs: xlsx to json: %w", err)
		}
		if n > 0 {
			out.WriteByte(',')
		}
		b, err := json.Marshal(map[string]string(rec))
		if err != nil {
			return "", nil, fmt.Errorf("jobs: xlsx to json: record %d: %w", n+1, err)
		}
		out.Write(b)
	}
	out.WriteByte(']')
	return string(label.FormatJSON), out.Bytes(), nil
}
