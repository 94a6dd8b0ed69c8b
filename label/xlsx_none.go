//go:build noxlsx

package label

import (
	"fmt"
	"io"
)

// newXLSXReader of a build without the XLSX reader (a station's release build: the cloud
// delivers XLSX data converted to JSON records). An XLSX job that still arrives fails with
// this error instead of printing.
func newXLSXReader(io.Reader, ReadOptions) (RecordReader, error) {
	return nil, fmt.Errorf("%w: %q: this build reads no XLSX data; the cloud delivers it as JSON records", ErrUnknownFormat, string(FormatXLSX))
}
