package label

import (
	"errors"
	"strings"

	qrdecoder "github.com/makiuchi-d/gozxing/qrcode/decoder"
)

// qrSide returns the side of the QR symbol encodeBarcode makes for s, in
// modules, without encoding it: validation checks every record at several
// resolutions, and choosing a QR mask (what encoding spends its time on)
// does not change the size. The version is the smallest whose data capacity
// (ISO/IEC 18004 Table 7, from gozxing's version table) holds the mode
// indicator, the character count and the data in the mode the encoder
// picks: numeric, alphanumeric or bytes, plus the 12-bit UTF-8 ECI header
// for non-ASCII data. TestQRModulesMatchesEncoder holds it to the encoders.
func qrSide(s, ecc string) (int, error) {
	lvl := map[string]qrdecoder.ErrorCorrectionLevel{"L": qrdecoder.ErrorCorrectionLevel_L, "M": qrdecoder.ErrorCorrectionLevel_M, "Q": qrdecoder.ErrorCorrectionLevel_Q, "H": qrdecoder.ErrorCorrectionLevel_H}[ecc]
	n := len(s)
	mode := 2 // bytes
	switch {
	case strings.Trim(s, "0123456789") == "":
		mode = 0
	case strings.Trim(s, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:") == "":
		mode = 1
	}
	var data int
	switch mode {
	case 0:
		data = n/3*10 + [3]int{0, 4, 7}[n%3]
	case 1:
		data = n/2*11 + 6*(n%2)
	default:
		data = 8 * n
		if !isASCII(s) {
			data += 12 // ECI designator 26
		}
	}
	for v := 1; v <= 40; v++ {
		ver, err := qrdecoder.Version_GetVersionForNumber(v)
		if err != nil {
			return 0, err
		}
		var count int
		switch {
		case v <= 9:
			count = [3]int{10, 9, 8}[mode]
		case v <= 26:
			count = [3]int{12, 11, 16}[mode]
		default:
			count = [3]int{14, 13, 16}[mode]
		}
		capacity := 8 * (ver.GetTotalCodewords() - ver.GetECBlocksForLevel(lvl).GetTotalECCodewords())
		if 4+count+data <= capacity {
			return ver.GetDimensionForVersion(), nil
		}
	}
	return 0, errors.New("too much data for a QR code")
}
