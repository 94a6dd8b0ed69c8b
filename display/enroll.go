package display

import (
	"image"
	"strings"
	"time"

	"github.com/skip2/go-qrcode"
)

// minModule is the smallest QR module drawn, in pixels. At one pixel per
// module a code reads only when the camera sees the panel exactly 1:1; at
// two it survives the blur and scaling of a phone camera on a 0.96" OLED.
const minModule = 2

// qrItem is a QR symbol: zone is the area it owns including its quiet zone.
type qrItem struct {
	zone image.Rectangle
	at   image.Point // top-left module
	bits [][]bool
	m    int // pixels per module
}

// qrCode is an encoded payload.
type qrCode struct {
	payload string
	bits    [][]bool
}

// fitQR encodes the first payload whose symbol fits the panel at
// minModule pixels per module with a module of quiet zone each side, on the
// panel's short side (a wide panel puts text beside it, a squarish one
// under it). It takes the highest error correction level that still fits:
// spare correction is what lets a blurred, resampled camera image of 2 px
// modules decode, and level L is the fallback that gives the lowest
// version and so the largest modules. Payloads are URLs
// with their scheme and host in capitals (both are case-insensitive, RFC
// 3986 §6.2.2.1) so the encoder can pack them in alphanumeric mode at 5.5
// bits a character instead of 8: that brings
// "https://pair.labelcloud.example.com/device?user_code=WDJB-MJHT" (62
// bytes) down to version 3, the largest that fits 64 px at 2 px a module.
func fitQR(payloads []string, size image.Point, k int) (qrCode, bool) {
	side := min(size.X, size.Y)
	if 2*size.X < 3*size.Y {
		side = min(size.X, size.Y*2/3) // leave a third for the text under it
	}
	for _, p := range payloads {
		if p == "" {
			continue
		}
		p = foldURL(p)
		for _, level := range []qrcode.RecoveryLevel{qrcode.High, qrcode.Medium, qrcode.Low} {
			q, err := qrcode.New(p, level)
			if err != nil {
				continue // longer than QR version 40 holds
			}
			q.DisableBorder = true
			bits := q.Bitmap()
			if side/(len(bits)+2) >= minModule {
				return qrCode{payload: p, bits: bits}, true
			}
		}
	}
	return qrCode{}, false
}

// foldURL writes a URL's scheme and host in capitals; the path and query
// are case-sensitive and stay as they are.
func foldURL(u string) string {
	i := strings.Index(u, "://")
	if i < 0 {
		return u
	}
	end := len(u)
	if j := strings.IndexAny(u[i+3:], "/?#"); j >= 0 {
		end = i + 3 + j
	}
	return strings.ToUpper(u[:end]) + u[end:]
}

// qrBeside puts q beside (wide panels) or above (squarish panels) the
// first attempt of text that fits; false if none fits.
func (fr *frame) qrBeside(q qrCode, attempts [][]block) bool {
	k, w, h := fr.k, fr.size.X, fr.size.Y
	n := len(q.bits)
	var zone, col image.Rectangle
	if 2*w >= 3*h {
		m := h / (n + 2)
		zw := (n + 2) * m
		zone = image.Rect(0, (h-zw)/2, zw, (h-zw)/2+zw)
		col = image.Rect(zw, k, w-k, h-k)
		bs, p, ok := fits(attempts, col.Dx(), col.Dy(), k)
		if !ok {
			return false
		}
		fr.place(bs, p, col, true)
	} else {
		reserve := min((n+2)*minModule*k, h*2/3)
		margin := k
		if fr.narrow() {
			margin = 0 // a line more under the QR: glyph cells have blank bottom rows, and the QR's quiet zone is the gap above the text
		}
		bs, p, ok := fits(attempts, w-4*k, h-reserve-margin, k)
		if !ok {
			return false
		}
		col = image.Rect(2*k, h-margin-p.h, w-2*k, h-margin)
		fr.place(bs, p, col, true)
		side := min(w, col.Min.Y-min(margin, k))
		zone = image.Rect((w-side)/2, 0, (w-side)/2+side, side)
	}
	fr.setQR(q, zone)
	return true
}

// setQR centres q in zone at the largest whole module size that leaves a
// module of quiet zone.
func (fr *frame) setQR(q qrCode, zone image.Rectangle) {
	n := len(q.bits)
	m := min(zone.Dx(), zone.Dy()) / (n + 2)
	at := image.Pt(zone.Min.X+(zone.Dx()-n*m)/2, zone.Min.Y+(zone.Dy()-n*m)/2)
	if m == minModule {
		at = gridPhase(at, zone, n*m)
	}
	fr.qr = &qrItem{zone: zone, at: at, bits: q.bits, m: m}
}

// gridPhase nudges a symbol of 2 px modules by a pixel or two so that it
// starts on an even column and a row ≡ 1 (mod 4). Where a centred symbol
// falls is arbitrary, but not to a camera that sees the panel a little
// small: of the 16 ways a 4→3 resample can fall on 2 px modules, zbar
// reads version 2-3 symbols at about 10, and this alignment is one of them
// (TestPairingScreenScans).
func gridPhase(at image.Point, zone image.Rectangle, side int) image.Point {
	fit := func(v, lo, hi, mod, want int) int {
		for d := 0; d < mod; d++ {
			for _, c := range []int{v - d, v + d} {
				if ((c%mod)+mod)%mod == want && c >= lo && c+side <= hi {
					return c
				}
			}
		}
		return v
	}
	return image.Pt(fit(at.X, zone.Min.X, zone.Max.X, 2, 0), fit(at.Y, zone.Min.Y, zone.Max.Y, 4, 1))
}

// fits is pick that says whether anything fitted.
func fits(attempts [][]block, w, h, k int) ([]block, placed, bool) {
	bs, p := pick(attempts, w, h, k)
	return bs, p, p.h <= h
}

// qrTime is how long the QR page stays when it takes turns with the page
// showing the URL to type (pageTime a page): longer, because a camera needs
// it still.
const qrTime = 8 * time.Second

// enrollScreen is the pairing screen. With a QR that fits at minModule: the
// QR with "Scan to set up", the code and the countdown beside or under it,
// and the URL too when there is room; when there is not, the QR page takes
// turns with a page that shows the URL to type, the code and the countdown.
// Without a QR that fits, the text page alone. An expired code shows
// that a new one is coming instead of a code that no longer works.
func enrollScreen(v View, size image.Point, k int) *frame {
	fr := &frame{size: size, k: k}
	if !v.Expires.IsZero() && !v.Now.Before(v.Expires) {
		fr.header(or(v.Title, "Code expired"), false, false, fr.column([][]block{
			{words(large, "New code..."), words(small, "Getting a new pairing code.")},
			{words(small, "New code..."), words(small, "Getting a new pairing code.")},
		}, fr.body(), true, v.Now))
		return fr
	}
	if v.Code == "" && v.QR == "" && v.URL == "" {
		fr.header(or(v.Title, "Set up station"), false, false, fr.column([][]block{
			append([]block{words(small, "Getting a code...")}, lineBlocks(v.Lines)...),
			{words(small, "Getting a code...")},
		}, fr.body(), true, v.Now))
		return fr
	}
	var heading, cd, cdShort, u, c, cs []block
	heading = []block{words(small, or(v.Title, "Scan to set up"))}
	if s := countdown(v); s != "" {
		cd = []block{words(small, s)}
		// "5:00" alone still reads as time left beside "Scan to set up",
		// and keeps the countdown on a 64 px wide panel's QR page.
		cdShort = []block{words(small, strings.TrimSuffix(s, " left"))}
	}
	if v.URL != "" {
		u = []block{chars(small, displayURL(v.URL))}
	}
	if v.Code != "" {
		c, cs = []block{code(large, v.Code)}, []block{code(small, v.Code)}
	}
	extra := lineBlocks(v.Lines)
	cat := func(parts ...[]block) []block {
		var out []block
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	if q, ok := fitQR([]string{v.QR, v.URL}, size, k); ok {
		noURL := [][]block{cat(heading, c, cd, extra), cat(heading, c, cd), cat(heading, cs, cd), cat(heading, cs, cdShort), cat(heading, cs), cs}
		if u != nil && fr.qrBeside(q, [][]block{cat(heading, c, u, cd, extra), cat(heading, c, u, cd), cat(heading, cs, u, cd)}) {
			return fr
		}
		// Without room for the URL beside the QR, the QR page takes turns
		// with the text page.
		if u == nil {
			if !fr.qrBeside(q, noURL) {
				fr.setQR(q, image.Rectangle{Max: size})
			}
			return fr
		}
		text := func(now time.Time) *frame { return enrollText(v, size, k, u, c, cs, cd, extra, now) }
		n := max(text(time.Time{}).pages, 1)
		cycle := qrTime + time.Duration(n)*pageTime
		t := cyclePos(v.Now, cycle)
		if t < qrTime {
			if !fr.qrBeside(q, noURL) {
				fr.setQR(q, image.Rectangle{Max: size})
			}
			fr.pages = n + 1
			return fr
		}
		fr = text(time.Unix(0, 0).Add(t - qrTime))
		fr.pages = n + 1
		return fr
	}
	return enrollText(v, size, k, u, c, cs, cd, extra, v.Now)
}

// enrollText is the pairing page without a QR: the URL to type and the
// code to enter there, with the countdown; paged when the URL is long.
func enrollText(v View, size image.Point, k int, u, c, cs, cd, extra []block, now time.Time) *frame {
	cat := func(parts ...[]block) []block {
		var out []block
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	fr := &frame{size: size, k: k}
	title := "Set up: open"
	if u == nil {
		title = "Set up station"
	}
	fr.header(or(v.Title, title), false, false, fr.column([][]block{
		cat(u, c, cd, extra), cat(u, c, cd), cat(u, cs, cd), cat(u, c), cat(u, cs), cat(u, c, cd),
	}, fr.body(), true, now))
	return fr
}

// lineBlocks is one small block per non-blank line.
func lineBlocks(ls []string) []block {
	var bs []block
	for _, l := range ls {
		if strings.TrimSpace(l) != "" {
			bs = append(bs, words(small, l))
		}
	}
	return bs
}
