package journal

import (
	"path/filepath"
	"strconv"
	"testing"
)

func TestMaxSizeKeepsA32BitMappingWithin1GiB(t *testing.T) {
	for _, tc := range []struct {
		max     int64
		intSize int
		want    int64
	}{
		{0, 64, 0},
		{4 << 30, 64, 4 << 30},
		{256 << 20, 32, 256 << 20},
		{0, 32, maxMapped32},
		{4 << 30, 32, maxMapped32},
	} {
		if got := mappable(tc.max, tc.intSize); got != tc.want {
			t.Errorf("mappable(%d, %d) = %d, want %d", tc.max, tc.intSize, got, tc.want)
		}
	}
	j, err := Open(filepath.Join(t.TempDir(), "j.db"), Options{MaxSize: 4 << 30})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	want := int64(4 << 30)
	if strconv.IntSize == 32 {
		want = maxMapped32
	}
	if j.maxSize != want {
		t.Errorf("%d-bit: journal limit %d, want %d", strconv.IntSize, j.maxSize, want)
	}
}
