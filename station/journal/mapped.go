package journal

import "strconv"

// maxMapped32 bounds the journal's data where addresses have 32 bits (a Pi Zero or Pi 1):
// bbolt maps the whole file, a file past 1 GiB needs a 2 GiB mapping, and a 32-bit process
// rarely has that much address space in one piece, so the write would fail with an mmap
// error. Below this, the file (data, free pages and bbolt's growth steps) stays within 1 GiB
// and a job that would not fit is refused with ErrFull like any other limit.
const maxMapped32 = 768 << 20

// mappable is the data limit the journal enforces: maxSize (zero: none), at most
// maxMapped32 when int has 32 bits.
func mappable(maxSize int64, intSize int) int64 {
	if intSize == 32 && (maxSize <= 0 || maxSize > maxMapped32) {
		return maxMapped32
	}
	return maxSize
}

// mappableHere is mappable for the running architecture.
func mappableHere(maxSize int64) int64 { return mappable(maxSize, strconv.IntSize) }
