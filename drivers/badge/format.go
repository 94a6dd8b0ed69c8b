package badge

import (
	"fmt"
	"math/big"
	"slices"
	"strings"
)

// NumberFormat is the card-number formatting applied once, by fleet config,
// before the keyed hash. Release systems disagree on how a UID becomes a
// number (byte order, hex or decimal, 24/32/56 bit), and a station that
// formats differently from the badge registry never finds the user; so the
// rule is explicit config, not a guess.
//
// The zero value formats as upper-case hex, bytes in the order read.
type NumberFormat struct {
	// Encoding is "hex" (default) or "dec".
	Encoding string `json:"encoding,omitempty"`
	// ByteOrder is "msb" (default: the first UID byte as read is the most
	// significant) or "lsb" (reversed, as many 125 kHz and wedge readers
	// print it).
	ByteOrder string `json:"byte_order,omitempty"`
	// Bits, if not 0, keeps only the low Bits bits of the number (after
	// byte order), e.g. 24 or 32. It must not exceed the UID length.
	Bits int `json:"bits,omitempty"`
	// Width zero-pads the result to at least Width digits. For hex the
	// default width is the number of nibbles (2 per byte, or Bits/4
	// rounded up).
	Width int `json:"width,omitempty"`
	// Lower selects lower-case hex digits.
	Lower bool `json:"lower,omitempty"`
}

// Validate reports the first invalid field, named as in the config file.
func (f NumberFormat) Validate() error {
	switch f.Encoding {
	case "", "hex", "dec":
	default:
		return fmt.Errorf("badge: number format: encoding %q: want \"hex\" or \"dec\"", f.Encoding)
	}
	switch f.ByteOrder {
	case "", "msb", "lsb":
	default:
		return fmt.Errorf("badge: number format: byte_order %q: want \"msb\" or \"lsb\"", f.ByteOrder)
	}
	if f.Bits < 0 {
		return fmt.Errorf("badge: number format: bits %d: must be >= 0", f.Bits)
	}
	if f.Width < 0 || f.Width > 64 {
		return fmt.Errorf("badge: number format: width %d: want 0..64", f.Width)
	}
	return nil
}

// Format turns a UID into the card number string.
func (f NumberFormat) Format(uid []byte) (string, error) {
	if err := f.Validate(); err != nil {
		return "", err
	}
	if len(uid) == 0 {
		return "", fmt.Errorf("badge: number format: empty UID")
	}
	b := slices.Clone(uid)
	if f.ByteOrder == "lsb" {
		slices.Reverse(b)
	}
	bits := len(b) * 8
	if f.Bits > 0 {
		if f.Bits > bits {
			return "", fmt.Errorf("badge: number format: bits %d exceeds the %d-bit UID", f.Bits, bits)
		}
		bits = f.Bits
	}
	n := new(big.Int).SetBytes(b)
	if bits < len(b)*8 {
		mask := new(big.Int).Lsh(big.NewInt(1), uint(bits))
		n.Mod(n, mask)
	}
	var s string
	width := f.Width
	if f.Encoding == "dec" {
		s = n.Text(10)
	} else {
		s = n.Text(16)
		if !f.Lower {
			s = strings.ToUpper(s)
		}
		if width == 0 {
			width = (bits + 3) / 4
		}
	}
	if len(s) < width {
		s = strings.Repeat("0", width-len(s)) + s
	}
	return s, nil
}
