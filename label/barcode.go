package label

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// ErrBarcodeData is wrapped when a record's value cannot be encoded in the
// element's symbology (a letter in an EAN-13, a wrong check digit, ...).
// Like ErrMissingField it carries no prefix: it always arrives wrapped as
// "label: elements[i] (barcode): ...".
var ErrBarcodeData = errors.New("value not encodable")

// checkBarcodeData validates s for sym and returns the canonical payload:
// EAN-13 and UPC-A always carry their check digit (computed when the data
// omits it, verified when present; GS1 General Specifications §7.9.1).
func checkBarcodeData(sym, s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("%w: empty %s data", ErrBarcodeData, sym)
	}
	switch sym {
	case EAN13, UPCA:
		n := 13
		if sym == UPCA {
			n = 12
		}
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return "", fmt.Errorf("%w: %s %q: only digits allowed (index %d)", ErrBarcodeData, sym, s, i)
			}
		}
		switch len(s) {
		case n - 1:
			return s + string(rune('0'+gs1Check(s))), nil
		case n:
			if want := gs1Check(s[:n-1]); int(s[n-1]-'0') != want {
				return "", fmt.Errorf("%w: %s %q: check digit %c should be %d", ErrBarcodeData, sym, s, s[n-1], want)
			}
			return s, nil
		}
		return "", fmt.Errorf("%w: %s %q: want %d or %d digits, got %d", ErrBarcodeData, sym, s, n-1, n, len(s))
	case Code39:
		for i := 0; i < len(s); i++ {
			c := s[i]
			ok := (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || c == ' ' || c == '-' || c == '.' || c == '$' || c == '/' || c == '+' || c == '%'
			if !ok {
				return "", fmt.Errorf("%w: code39 %q: character %q at index %d is not in the Code 39 set (0-9 A-Z space - . $ / + %%)", ErrBarcodeData, s, c, i)
			}
		}
	case Code128:
		for i := 0; i < len(s); i++ {
			if s[i] < 0x20 || s[i] > 0x7e {
				return "", fmt.Errorf("%w: code128 %q: byte 0x%02x at index %d is not printable ASCII", ErrBarcodeData, s, s[i], i)
			}
		}
		if len(s) > 80 {
			return "", fmt.Errorf("%w: code128: %d characters, at most 80", ErrBarcodeData, len(s))
		}
	default:
		if !utf8.ValidString(s) {
			return "", fmt.Errorf("%w: %s: data is not valid UTF-8", ErrBarcodeData, sym)
		}
		// Our DataMatrix encoder writes no ECI header, so a
		// reader would decode UTF-8 bytes as Latin-1: refuse instead.
		if sym == DataMatrix {
			for i := 0; i < len(s); i++ {
				if s[i] >= 0x80 {
					r, _ := utf8.DecodeRuneInString(s[i:])
					return "", fmt.Errorf("%w: %s: %q at byte %d is not ASCII; only qr carries other characters", ErrBarcodeData, sym, r, i)
				}
			}
		}
		if len(s) > 1000 {
			return "", fmt.Errorf("%w: %s: %d bytes, at most 1000", ErrBarcodeData, sym, len(s))
		}
	}
	return s, nil
}

// gs1Check computes the GS1 mod-10 check digit of the digits in s: weights
// 3 and 1 alternate from the rightmost digit.
func gs1Check(s string) int {
	sum := 0
	for i := 0; i < len(s); i++ {
		d := int(s[len(s)-1-i] - '0')
		if i%2 == 0 {
			sum += 3 * d
		} else {
			sum += d
		}
	}
	return (10 - sum%10) % 10
}

// checkLinearFits fails when a linear symbol of canonical data s, drawn
// from dot x with m-dot modules, would run past w dots. Native printers
// would clip it silently into an unreadable symbol; the raster path checks
// the same thing in drawBarcode. 2-D symbols are sized by the printer and
// not checked here. For Code 128 the width is that of a short encoding, so
// a label that could fit is never rejected.
func checkLinearFits(sym, s string, x, m, w int) error {
	var modules int
	switch sym {
	case EAN13, UPCA:
		modules = 95 // GS1 General Specifications §5.2.3: 3+42+5+42+3 modules
	case Code39:
		// Each character is 3 wide (2 modules each at the 2:1 ratio the
		// renderers use; ISO/IEC 16388 allows 2:1 to 3:1) and 6 narrow
		// elements, plus a 1-module gap; start and stop are '*'.
		modules = 13*(len(s)+2) - 1
	case Code128:
		modules = code128Modules(s)
	default:
		return nil
	}
	if x+modules*m > w {
		return fmt.Errorf("%w: %s of %q is %d dots wide from x=%d, beyond the %d-dot label", ErrBarcodeData, sym, s, modules*m, x, w)
	}
	return nil
}

// code128Modules is the width in modules of s encoded with code set C for
// runs of four or more digits and code set B elsewhere (ISO/IEC 15417: 11
// modules per symbol, 13 for stop; start and check symbol included), without
// encoding it: the native ZPL path renders 100k labels/s.
func code128Modules(s string) int {
	symbols := 2 // start, check
	set := byte(0)
	for i := 0; i < len(s); {
		d := 0
		for i+d < len(s) && s[i+d] >= '0' && s[i+d] <= '9' {
			d++
		}
		if d >= 4 {
			if set != 0 && set != 'C' {
				symbols++ // code C
			}
			set = 'C'
			symbols += d / 2
			i += d - d%2
			continue
		}
		if set != 0 && set != 'B' {
			symbols++ // code B
		}
		set = 'B'
		symbols++
		i++
	}
	return 11*symbols + 13
}
