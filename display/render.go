package display

import (
	"fmt"
	"image"
	"strconv"
	"strings"
	"time"
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
	if err := CheckSize(size); err != nil {
		return nil, err
	}
	if v.Kind < 0 || v.Kind >= numKinds {
		return nil, fmt.Errorf("%w: %d", ErrKind, int(v.Kind))
	}
	k := scaleFor(size)
	if v.Kind == Enrolling {
		return enrollScreen(v, size, k), nil
	}
	if v.QR != "" && v.Kind == UnknownBadge {
		fr := &frame{size: size, k: k}
		title := or(v.Title, "Unknown badge")
		lines := or(strings.Join(v.Lines, " "), "Scan to link it")
		attempts := [][]block{
			{words(large, title), words(small, lines)},
			{words(small, title), words(small, lines)},
			{words(small, lines)},
			nil, // the QR alone: it is what links the badge
		}
		if q, ok := fitQR([]string{v.QR}, size, k); ok && fr.qrBeside(q, attempts) {
			return fr, nil
		}
	}
	if v.Kind == Preview && v.Image != nil && !v.Image.Bounds().Empty() {
		return previewScreen(v, size, k), nil
	}
	if v.Kind == Select && v.Hero != "" {
		if fr, ok := selectScreen(v, size, k); ok {
			return fr, nil
		}
		// Too small for the entry's title in the body: it goes in the headline bar.
		v.Title, v.Hero = v.Hero, ""
	}
	fr := &frame{size: size, k: k}
	title, icon, body := screen(v)
	r := fr.body()
	if v.Kind == List && len(v.Jobs) > 0 {
		// Instructions in v.Lines ("Press A to print") keep a row each;
		// the jobs get the rest, down to one.
		rows := (r.Dy() + fr.k) / (small.h*fr.k + fr.k)
		body = append([]block{jobRows(v.Jobs, max(rows-len(body), 1))}, body...)
		fr.header(title, icon, v.Online, fr.column([][]block{body}, r, false, v.Now))
		return fr, nil
	}
	fr.header(title, icon, v.Online, fr.column([][]block{hero(body, fr.k), body, shrink(body)}, r, true, v.Now))
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
	big := func(def string) block { return words(large, or(v.Hero, def)) }
	opt := func(f *bitmapFont, s string) []block {
		if s == "" {
			return nil
		}
		return []block{words(f, s)}
	}
	switch v.Kind {
	case Boot:
		title = "Starting"
		body = append([]block{big("Please wait")}, lines()...)
		body = append(body, opt(small, v.Station)...)
	case Enrolling: // without a QR: layout puts enrollBlocks under the headline
		title = "Enroll station"
	case Denied:
		title = "Not set up"
		body = lines("Pairing denied.", "A new code follows.")
	case Connecting:
		title, icon = "Connecting", true
		body = append([]block{big("Please wait")}, lines()...)
		body = append(body, opt(small, v.Station)...)
	case Idle:
		title, icon = or(v.Station, "Ready"), true
		body = append([]block{big("Tap your badge")}, lines()...)
	case Offline:
		title, icon = "Offline", true
		body = lines("No connection. Try again soon.", "Your jobs are kept.")
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
		body = append([]block{big("No jobs")}, lines("Nothing is waiting for you.")...)
	case Printing:
		title, icon = "Printing", true
		if v.Total > 0 {
			body = []block{labelOf(v.Done, v.Total), progress(v.Done, v.Total)}
		} else {
			body = []block{words(large, "Printing...")}
		}
		body = append(body, lines()...)
	case Paused:
		title, icon = "Paused", true
		// What to do first; where the job stands after, on a second page if need be.
		body = lines("Check the printer.", "Printing resumes when fixed.")
		if v.Total > 0 {
			body = append(body, labelOf(v.Done, v.Total))
		}
	case Done:
		title, icon = "Done", true
		n := "All printed"
		if v.Total > 0 {
			n = plural(v.Total, "label") + " printed"
		}
		body = []block{big(n)}
		if v.User != "" {
			body = append(body, words(small, "Thank you, "+v.User))
		}
		body = append(body, lines()...)
	case Error:
		title, icon = "Error", true
		body = lines("Something went wrong.", "Tap again. If it repeats, call IT.")
	case Select:
		title, icon = "Choose a job", true
		body = lines(previewHint)
	case Preview: // without an image: the label could not be drawn
		title, icon = "Preview", true
		body = lines(previewHint)
	}
	return or(v.Title, title), icon, body
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

// labelOf is the printing progress line, "Label 2 of 5", shortened to
// "Label 2/5" or "2/5" when the counts are too long for the panel's line.
func labelOf(done, total int) block {
	n, t := strconv.Itoa(min(done+1, total)), strconv.Itoa(total)
	return block{f: small, lines: func(cols int) []string {
		for _, s := range []string{"Label " + n + " of " + t, "Label " + n + "/" + t, n + "/" + t} {
			if len(s) <= cols {
				return []string{s}
			}
		}
		return wrap(n+"/"+t, cols)
	}}
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
			if note := fold(j.Note); note != "" && n-len(cnt)-len(note)-2 >= 8 {
				cnt = note + " " + cnt // the time left, where the title keeps 8 columns
			}
			t := clip(fold(j.Title), max(n-len(cnt)-1, 0))
			out = append(out, t+strings.Repeat(" ", max(n-len(t)-len(cnt), 1))+cnt)
		}
		if more > 0 {
			out = append(out, "+"+strconv.Itoa(more)+" more")
		}
		return out
	}}
}

// narrow says the panel is too narrow for the headline beside the status
// icon (a 64×128 OLED upright): the headline then takes the bar's whole
// width over up to two small lines, and the icon moves to the bottom-right
// corner, under the body.
func (fr *frame) narrow() bool { return fr.size.X < MinSize().X }

// barHeight is the height of the inverted headline bar.
func (fr *frame) barHeight() int {
	if fr.narrow() {
		return 2*small.h*fr.k + 3*fr.k
	}
	return large.h*fr.k + 2*fr.k
}

// body is the area under the headline bar (and above the status icon of a
// narrow panel).
func (fr *frame) body() image.Rectangle {
	k := fr.k
	bottom := fr.size.Y
	if fr.narrow() {
		bottom -= small.h*k + k // the icon and page mark's row
	}
	return image.Rect(2*k, fr.barHeight()+k, fr.size.X-2*k, bottom)
}

// narrowHeader is header for a narrow panel: the title over up to two
// lines of the full bar width (a word too long for a line is broken with
// a hyphen), the page mark and the icon at the bottom-right corner.
func (fr *frame) narrowHeader(title string, icon, online bool, mark string) {
	k, w, h := fr.k, fr.size.X, fr.size.Y
	barH := fr.barHeight()
	fr.bg = append(fr.bg, image.Rect(0, 0, w, barH))
	cols := small.cols(w-4*k, k)
	ls := hyphenWrap(fold(title), cols)
	if len(ls) > 2 {
		// The second line takes as much of the rest as fits, so a job title
		// keeps a dozen characters rather than a word and a half.
		ls = append(ls[:1], clip(after(fold(title), ls[0]), cols))
	}
	var head []textItem
	y := (barH - (len(ls)*small.h*k + (len(ls)-1)*k)) / 2
	for _, l := range ls {
		head = append(head, textItem{at: image.Pt(2*k, y), s: l, f: small, k: k, white: true})
		y += small.h*k + k
	}
	right := w - 2*k
	if icon {
		pat := iconOffline
		if online {
			pat = iconOnline
		}
		ic := iconItem{pat: pat, k: k}
		ic.at = image.Pt(right-len(pat[0])*k, h-k-len(pat)*k)
		fr.icons = append(fr.icons, ic)
		right = ic.at.X - 2*k
	}
	if mark != "" {
		// The page mark shares the bottom row, left of the icon.
		mw := small.width(mark, k)
		head = append(head, textItem{at: image.Pt(max(right-mw, 0), h-small.h*k), s: mark, f: small, k: k})
	}
	fr.texts = append(head, fr.texts...)
}

// after returns the text that follows first, the first line hyphenWrap
// made of s: the rest of a word it broke with a hyphen, or the next words.
func after(s, first string) string {
	s = strings.Join(strings.Fields(s), " ")
	if strings.HasPrefix(s, first) {
		return strings.TrimSpace(s[len(first):])
	}
	if cut := strings.TrimSuffix(first, "-"); cut != first && strings.HasPrefix(s, cut) {
		return s[len(cut):]
	}
	return s
}

// hyphenWrap is wrap that breaks a word longer than a line after n-1
// characters with a hyphen, so "Connecting" on 8 columns reads
// "Connect-" "ing" rather than being cut mid-word without a sign.
func hyphenWrap(s string, n int) []string {
	if n < 2 {
		return wrap(s, n)
	}
	var parts []string
	for _, w := range strings.Fields(s) {
		if len(w) > n && len(strings.TrimRight(w, ".")) <= n {
			w = w[:n] // "Sending..." keeps a dot or two, not a line of them
		}
		for len(w) > n {
			parts = append(parts, w[:n-1]+"-")
			w = w[n-1:]
		}
		parts = append(parts, w)
	}
	return wrap(strings.Join(parts, " "), n)
}

// header draws the inverted headline bar: the title, then right-aligned
// the page mark ("1/2") of a paged body and the link status icon.
func (fr *frame) header(title string, icon, online bool, mark string) {
	if fr.narrow() {
		fr.narrowHeader(title, icon, online, mark)
		return
	}
	k, w := fr.k, fr.size.X
	barH := fr.barHeight()
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
	var head []textItem
	if mark != "" {
		mw := small.width(mark, k)
		head = append(head, textItem{at: image.Pt(right-mw, (barH-small.h*k)/2), s: mark, f: small, k: k, white: true})
		right -= mw + 2*k
	}
	avail := right - 2*k
	t := fold(title)
	f := large
	if f.width(t, k) > avail {
		f = small
	}
	t = clip(t, f.cols(avail, k))
	head = append([]textItem{{at: image.Pt(2*k, (barH-f.h*k)/2), s: t, f: f, k: k, white: true}}, head...)
	// The headline comes first in reading order, though it is laid out
	// last (it must know whether the body is paged).
	fr.texts = append(head, fr.texts...)
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
	if p := fr.pic; p != nil {
		for y := range p.img.Rect.Dy() {
			copy(img.Pix[(p.at.Y+y)*img.Stride+p.at.X:], p.img.Pix[y*p.img.Stride:y*p.img.Stride+p.img.Rect.Dx()])
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

// Text returns the lines of text Render draws for v at size, headline
// first, in reading order: what a person reads on that screen, for tests
// and logs.
func Text(v View, size image.Point) ([]string, error) {
	fr, err := layout(v, size)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(fr.texts))
	for i, t := range fr.texts {
		out[i] = t.s
	}
	return out, nil
}

// Pages returns how many pages v takes at size (1 when it fits on one);
// they take turns as v.Now advances.
func Pages(v View, size image.Point) (int, error) {
	fr, err := layout(v, size)
	if err != nil {
		return 0, err
	}
	return max(fr.pages, 1), nil
}

// Animated says whether Render's output for v at size changes as v.Now
// advances although nothing else in v does: a countdown or pages taking
// turns. Static screens need no redraw until the View changes.
func Animated(v View, size image.Point) bool {
	if v.Kind == Enrolling && !v.Expires.IsZero() {
		return true
	}
	n, err := Pages(v, size)
	return err == nil && n > 1
}
