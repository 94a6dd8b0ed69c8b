package label

import (
	"errors"
	"testing"
)

// A BITMAP header's width×height must not wrap around int (32 bits on a
// Pi Zero, 64 elsewhere) and let a short payload through or index before it.
func TestTSPLBitmapSizeDoesNotWrap(t *testing.T) {
	for name, dims := range map[string]string{
		"wraps to zero on 32 bits":     "65536,65536",
		"wraps negative on 32 bits":    "65536,49152",
		"wraps to zero on 64 bits":     "4294967296,4294967296",
		"wraps negative on 64 bits":    "4611686018427387904,2",
		"larger than the whole stream": "100000,100000",
	} {
		doc := "CLS\r\nBITMAP 0,0," + dims + ",0,\x00\x01\r\nPRINT 1\r\n"
		if _, err := SplitTSPLDocument([]byte(doc)); !errors.Is(err, ErrDocument) {
			t.Errorf("%s: err = %v, want ErrDocument", name, err)
		}
	}
}

// The raster limit holds where width×height in dots exceeds 2³¹: a
// 1000×1000 mm label at 1200 dpi is 47244² dots, negative in a 32-bit int.
func TestRasterSizeLimitDoesNotWrap(t *testing.T) {
	l, err := ParseLayout([]byte(`{"version":1,"id":"huge","width_mm":1000,"height_mm":1000,"elements":[{"type":"box","x":0,"y":0,"width":10,"height":10}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := checkRasterSize(l, 1200); !errors.Is(err, ErrUnsupported) {
		t.Errorf("err = %v, want ErrUnsupported", err)
	}
}
