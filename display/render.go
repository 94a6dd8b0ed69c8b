package display

import (
	"fmt"
	"image"
	"strconv"
	"strings"
	"time"

	"github.com/skip2/go-qrcode"
)

// Render draws v for a panel of the given size: black ink on white, every
// pixel 0x00 or 0xff (e-paper and printed previews use it as is; OLED
// drivers invert). It never reads the clock, so the same View always gives
// the same pixels.
func Render(v View, size image.Point) (*image.Gray, error) {
	fr, err := layout(v, size)
	if err != nil {
		return nil, err
	}
	return fr.paint(), nil
}

// layout decides where everything of v goes on a panel of size.
func layout(v View, size image.Point) (*frame, error) {
	if m := MinSize(); size.X < m.X || size.Y < m.Y {
		return nil, fmt.Errorf("%w: %dx%d, need at least %dx%d", ErrTooSmall, size.X, size.Y, m.X, m.Y)
	}
	if v.Kind < 0 || v.Kind >= numKinds {
		return nil, fmt.Errorf("%w: %d", ErrKind, int(v.Kind))
	}
	fr := &frame{size: size, k: scaleFor(size)}
	if v.QR != "" && (v.Kind == Enrolling || v.Kind == UnknownBadge) {
		attempts := enrollBlocks(v, v.Title)
		if v.Kind == UnknownBadge {
			title := or(v.Title, "Unknown badge")
			lines := or(strings.Join(v.Lines, " "), "Scan to link it")
			attempts = [][]block{
				{words(large, title), words(small, lines)},
				{words(small, title), words(small, lines)},
			}
		}
		if fr.qrScreen(v.QR, attempts) {
			return fr, nil
		}
		// The payload is too long for this panel: the text screen still
		// lets a person type the URL and code.
		fr = &frame{size: size, k: fr.k}
	}
	title, icon, body := screen(v)
	r := fr.header(title, icon, v.Online)
	if v.Kind == Enrolling {
		fr.column(enrollBlocks(v, ""), r, true)
		return fr, nil
	}
	if v.Kind == List && len(v.Jobs) > 0 {
		// Instructions in v.Lines ("A: print all") keep a row each; the
		// jobs get the rest, down to one.
		rows := (r.Dy() + fr.k) / (small.h*fr.k + fr.k)
		body = append([]block{jobRows(v.Jobs, max(rows-len(body), 1))}, body...)
		fr.column([][]block{body}, r, false)
		return fr, nil
	}
	fr.column([][]block{hero(body, fr.k), body, shrink(body)}, r, true)
	return fr, nil
}

// screen returns the headline, whether the headline shows the link status,
// and the body of every text screen. v.Title replaces the headline and
// v.Lines the default explanation, so the station can be more specific;
// the large line, progress and greeting stay.
func screen(v View) (title string, icon bool, body []block) {
	lines := func(def ...string) []block {
		ls := v.Lines
		if len(ls) == 0 {
			ls = def
		}
		var bs []block
		for _, l := range ls {
			if strings.TrimSpace(l) != "" {
				bs = append(bs, words(small, l))
			}
		}
		return bs
	}
	opt := func(f *bitmapFont, s string) []block {
		if s == "" {
			return nil
		}
		return []block{words(f, s)}
	}
	switch v.Kind {
	case Boot:
		title = "Starting"
		body = append([]block{words(large, "Please wait")}, lines()...)
		body = append(body, opt(small, v.Station)...)
	case Enrolling: // without a QR: layout puts enrollBlocks under the headline
		title = "Enroll station"
	case Denied:
		title = "Not enrolled"
		body = lines("Code denied or expired.", "New code soon...")
	case Connecting:
		title, icon = "Connecting", true
		body = append([]block{words(large, "Please wait")}, lines()...)
		body = append(body, opt(small, v.Station)...)
	case Idle:
		title, icon = or(v.Station, "Ready"), true
		body = append([]block{words(large, "Tap your badge")}, lines()...)
	case Offline:
		title, icon = "Offline", true
		body = lines("No cloud link.", "Retrying; jobs are kept.")
	case Lookup:
		title, icon = "One moment", true
		body = []block{words(large, "Looking up")}
		if v.User != "" {
			body = append(body, words(small, "jobs for "+v.User))
		}
		body = append(body, lines()...)
	case UnknownBadge: // without a QR payload for self-association
		title, icon = "Unknown badge", true
		body = lines("Badge not known.", "Ask an admin to add it.")
	case List:
		title, icon = or(v.User, "Your jobs"), true
		if len(v.Jobs) == 0 {
			body = []block{words(large, "No jobs")}
		}
		body = append(body, lines()...)
	case NoJobs:
		title, icon = or(v.User, "No jobs"), true
		body = append([]block{words(large, "No jobs")}, lines("Nothing is held for you.")...)
	case Printing:
		title, icon = "Printing", true
		if v.Total > 0 {
			body = []block{words(small, fmt.Sprintf("Label %d of %d", min(v.Done+1, v.Total), v.Total)), progress(v.Done, v.Total)}
		} else {
			body = []block{words(large, "Printing...")}
		}
		body = append(body, lines()...)
	case Paused:
		title, icon = "Paused", true
		body = append(lines("Printer needs attention"), words(small, "Printing resumes when fixed."))
	case Done:
		title, icon = "Done", true
		n := "All printed"
		if v.Total > 0 {
			n = plural(v.Total, "label") + " printed"
		}
		body = []block{words(large, n)}
		if v.User != "" {
			body = append(body, words(small, "Thank you, "+v.User))
		}
		body = append(body, lines()...)
	case Error:
		title, icon = "Error", true
		body = lines("Something went wrong.")
	}
	return or(v.Title, title), icon, body
}

// enrollBlocks lists the enrolling column from richest to barest: the code
// large, the URL to type and the countdown (RFC 8628 §3.3 expires_in) first;
// then without title and free lines, without the countdown, and finally
// with a small code. The code outranks the countdown: it is what a person
// must read.
func enrollBlocks(v View, title string) [][]block {
	c := []block{code(large, v.Code)}
	u := []block{chars(small, displayURL(v.URL))}
	var t, extra []block
	if s := countdown(v); s != "" {
		t = []block{words(small, s)}
	}
	if title != "" {
		extra = append(extra, words(small, title))
	}
	for _, l := range v.Lines {
		if strings.TrimSpace(l) != "" {
			extra = append(extra, words(small, l))
		}
	}
	if v.Code == "" {
		c = nil
	}
	if v.URL == "" {
		u = nil
	}
	if c == nil && u == nil && extra == nil {
		extra = []block{words(small, "Getting a code...")}
	}
	cat := func(parts ...[]block) []block {
		var out []block
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	return [][]block{
		cat(c, u, t, extra),
		cat(c, u, t),
		cat(c, u),
		cat(shrink(c), u, t),
		cat(shrink(c), u),
	}
}

// NextChange returns when Render's output for v next changes although v
// does not: the enrolling countdown ticks each second until the code
// expires. ok is false when the screen is static, so the station needs no
// timer.
func NextChange(v View) (at time.Time, ok bool) {
	if v.Kind != Enrolling || v.Expires.IsZero() || !v.Now.Before(v.Expires) {
		return time.Time{}, false
	}
	// countdown rounds the time left up to whole seconds, so its text
	// changes when the time left crosses a whole second.
	left := v.Expires.Sub(v.Now)
	frac := left % time.Second
	if frac == 0 {
		frac = time.Second
	}
	return v.Now.Add(frac), true
}

// displayURL drops the scheme: a person types "host/device" and the browser
// adds it, and on a 128×64 panel every character counts.
func displayURL(u string) string {
	for _, p := range []string{"https://", "http://"} {
		if strings.HasPrefix(u, p) {
			return u[len(p):]
		}
	}
	return u
}

// countdown is the time left to approve, rounded up to the second so it
// never shows 0:00 while the code is still valid.
func countdown(v View) string {
	if v.Expires.IsZero() {
		return ""
	}
	left := v.Expires.Sub(v.Now)
	if left <= 0 {
		return "Code expired"
	}
	s := int((left + 999_999_999) / 1_000_000_000)
	return fmt.Sprintf("%d:%02d left", s/60, s%60)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

func or(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

// jobRows is the List screen's table: one row per job, title left, label
// count right; when rows run out the last row says how many more there are.
func jobRows(jobs []JobLine, rows int) block {
	return block{f: small, lines: func(n int) []string {
		show := jobs
		more := 0
		if len(jobs) > rows && rows > 0 {
			show, more = jobs[:rows-1], len(jobs)-(rows-1)
		}
		var out []string
		for _, j := range show {
			cnt := "x" + strconv.Itoa(j.Labels)
			t := clip(fold(j.Title), max(n-len(cnt)-1, 0))
			out = append(out, t+strings.Repeat(" ", max(n-len(t)-len(cnt), 1))+cnt)
		}
		if more > 0 {
			out = append(out, "+"+strconv.Itoa(more)+" more")
		}
		return out
	}}
}

// header draws the inverted headline bar and returns the body area under it.
func (fr *frame) header(title string, icon, online bool) image.Rectangle {
	k, w := fr.k, fr.size.X
	barH := large.h*k + 2*k
	fr.bg = append(fr.bg, image.Rect(0, 0, w, barH))
	right := w - k
	if icon {
		pat := iconOffline
		if online {
			pat = iconOnline
		}
		ic := iconItem{pat: pat, k: k, white: true}
		ic.at = image.Pt(w-2*k-len(pat[0])*k, (barH-len(pat)*k)/2)
		fr.icons = append(fr.icons, ic)
		right = ic.at.X - 2*k
	}
	avail := right - 2*k
	t := fold(title)
	f := large
	if f.width(t, k) > avail {
		f = small
	}
	t = clip(t, f.cols(avail, k))
	fr.texts = append(fr.texts, textItem{at: image.Pt(2*k, (barH-f.h*k)/2), s: t, f: f, k: k, white: true})
	return image.Rect(2*k, barH+k, w-2*k, fr.size.Y)
}

// qrItem is a QR symbol: zone is the area it owns including its quiet zone.
type qrItem struct {
	zone image.Rectangle
	at   image.Point // top-left module
	bits [][]bool
	m    int // pixels per module
}

// qrScreen puts a QR code beside (wide panels) or above (squarish panels)
// a column of text. The QR uses error correction level L: a screen is not
// a scratched sticker, and the lowest version gives the largest modules —
// a ~40-byte URL is version 3 (29 modules), 58 px at 2 px/module, which
// fits the 64 px height of a 128×64 panel (ISO/IEC 18004 table 7).
func (fr *frame) qrScreen(payload string, attempts [][]block) (ok bool) {
	q, err := qrcode.New(payload, qrcode.Low)
	if err != nil {
		return false // longer than QR version 40 holds
	}
	q.DisableBorder = true
	bits := q.Bitmap()
	n := len(bits)
	k, w, h := fr.k, fr.size.X, fr.size.Y
	var zone, col image.Rectangle
	if 2*w >= 3*h {
		zone = image.Rect(0, 0, h, h)
		col = image.Rect(h, k, w-k, h-k)
		bs, p := pick(attempts, col.Dx(), col.Dy(), k)
		fr.place(bs, p, col, true)
	} else {
		// Keep room for at least 2k px per module plus a module of quiet
		// zone each side; the text takes what it needs of the rest.
		reserve := min((n+2)*2*k, h*2/3)
		bs, p := pick(attempts, w-4*k, h-reserve-k, k)
		th := min(p.h, h-reserve-k)
		col = image.Rect(2*k, h-k-th, w-2*k, h-k)
		fr.place(bs, p, col, true)
		side := min(w, col.Min.Y-k)
		zone = image.Rect((w-side)/2, 0, (w-side)/2+side, side)
	}
	side := min(zone.Dx(), zone.Dy())
	m := side / (n + 2)
	if m < 1 {
		m = side / n
	}
	if m < 1 {
		return false
	}
	at := image.Pt(zone.Min.X+(zone.Dx()-n*m)/2, zone.Min.Y+(zone.Dy()-n*m)/2)
	fr.qr = &qrItem{zone: zone, at: at, bits: bits, m: m}
	return true
}

// paint sets the pixels of a laid-out frame.
func (fr *frame) paint() *image.Gray {
	img := image.NewGray(image.Rectangle{Max: fr.size})
	fill(img, img.Rect, 0xff)
	for _, b := range fr.bg {
		fill(img, b, 0)
	}
	for _, t := range fr.texts {
		t.f.draw(img, t.at, t.s, t.k, t.white)
	}
	for _, ic := range fr.icons {
		for y, row := range ic.pat {
			for x := 0; x < len(row); x++ {
				if row[x] == '#' {
					p := ic.at.Add(image.Pt(x*ic.k, y*ic.k))
					fill(img, image.Rectangle{Min: p, Max: p.Add(image.Pt(ic.k, ic.k))}, shade(ic.white))
				}
			}
		}
	}
	for _, b := range fr.bars {
		fill(img, b.r, 0)
		in := b.r.Inset(b.k)
		fill(img, in, 0xff)
		in = in.Inset(b.k)
		if b.total > 0 {
			done := min(max(b.done, 0), b.total)
			in.Max.X = in.Min.X + in.Dx()*done/b.total
			fill(img, in, 0)
		}
	}
	if q := fr.qr; q != nil {
		for y, row := range q.bits {
			for x, on := range row {
				if on {
					p := q.at.Add(image.Pt(x*q.m, y*q.m))
					fill(img, image.Rectangle{Min: p, Max: p.Add(image.Pt(q.m, q.m))}, 0)
				}
			}
		}
	}
	return img
}

func shade(white bool) uint8 {
	if white {
		return 0xff
	}
	return 0
}
