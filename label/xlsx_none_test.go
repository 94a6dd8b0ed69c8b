//go:build noxlsx

package label

import (
	"bytes"
	"errors"
	"testing"
)

// A build without the XLSX reader refuses XLSX data with a reason instead of printing it
// (go test -tags noxlsx ./label).
func TestNoXLSXRefuses(t *testing.T) {
	_, err := NewRecordReader(FormatXLSX, bytes.NewReader([]byte("PK")), ReadOptions{})
	if !errors.Is(err, ErrUnknownFormat) {
		t.Fatalf("got %v, want ErrUnknownFormat", err)
	}
}
