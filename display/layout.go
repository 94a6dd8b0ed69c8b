package display

import (
	"fmt"
	"image"
	"strings"
	"time"
)

// frame is a laid-out screen: what goes where, before any pixel is set.
// Keeping layout apart from painting lets tests check geometry (nothing out
// of bounds, nothing overlapping) for every screen at every size.
//
// bg are black backgrounds (the headline bar) that text may sit on; texts,
// icons, bars and the QR's zone are foreground and never overlap.
type frame struct {
	size  image.Point
	k     int // pixel scale of fonts and strokes
	bg    []image.Rectangle
	texts []textItem
	icons []iconItem
	bars  []barItem
	qr    *qrItem
	pic   *picItem // the Preview screen's label
	pages int      // pages taking turns; 0 or 1 when the screen fits
}

type textItem struct {
	at    image.Point // top-left of the ink box
	s     string
	f     *bitmapFont
	k     int
	white bool
}

func (t textItem) rect() image.Rectangle {
	return image.Rect(t.at.X, t.at.Y, t.at.X+t.f.width(t.s, t.k), t.at.Y+t.f.h*t.k)
}

// iconItem is a small pixel pattern, one string per row, '#' = ink.
type iconItem struct {
	at    image.Point
	pat   []string
	k     int
	white bool
}

func (ic iconItem) rect() image.Rectangle {
	return image.Rect(ic.at.X, ic.at.Y, ic.at.X+len(ic.pat[0])*ic.k, ic.at.Y+len(ic.pat)*ic.k)
}

// barItem is a progress bar: an outline with done/total of its inside filled.
type barItem struct {
	r           image.Rectangle
	done, total int
	k           int
}

// The status icons are 7×7 so they fit the 16 px headline bar at 128×64.
var (
	iconOnline = []string{
		"..###..",
		".#####.",
		"#######",
		"#######",
		"#######",
		".#####.",
		"..###..",
	}
	iconOffline = []string{
		"#.....#",
		".#...#.",
		"..#.#..",
		"...#...",
		"..#.#..",
		".#...#.",
		"#.....#",
	}
)

// scaleFor picks the whole-pixel scale: 1 at 128×64, 2 at 250×122, 240×240
// and 320×240. Whole multiples keep 1-bit glyphs and QR modules sharp.
func scaleFor(size image.Point) int {
	return max(1, min(size.X/120, size.Y/60))
}

// block is one paragraph of a column: its lines for a given width in runes,
// or a progress bar when bar is set.
type block struct {
	f     *bitmapFont
	lines func(cols int) []string
	bar   *[2]int // done, total
	up    int     // extra pixel scale over the frame's
	word  int     // longest word, in runes, for words blocks
}

func (b block) scale(k int) int { return k + b.up }

// hero returns blocks with the large text one scale up, so the one thing
// to read (“Tap your badge”) fills a bigger panel. Only for k >= 2: at
// 128×64 the design is already as large as it can be.
func hero(bs []block, k int) []block {
	if k < 2 {
		return bs
	}
	out := make([]block, len(bs))
	for i, b := range bs {
		out[i] = b
		if b.f == large {
			out[i].up = 1
		}
	}
	return out
}

func words(f *bitmapFont, s string) block {
	s = fold(s)
	longest := 0
	for _, w := range strings.Fields(s) {
		longest = max(longest, len(w))
	}
	return block{f: f, lines: func(n int) []string { return hyphenWrap(s, n) }, word: longest}
}

// chars breaks where it must: URLs and codes have no spaces, so a line
// ends after a '/', '.', ':', '?', '&', '=' or '-' in its second half —
// unless that costs a line over breaking after exactly cols runes.
func chars(f *bitmapFont, s string) block {
	s = fold(s)
	return block{f: f, lines: func(n int) []string {
		nice, hard := breakAt(s, n, true), breakAt(s, n, false)
		if len(nice) > len(hard) {
			return hard
		}
		return nice
	}}
}

func breakAt(s string, n int, nice bool) []string {
	var out []string
	for len(s) > n && n > 0 {
		cut := n
		for i := n; nice && i > n/2; i-- {
			if strings.IndexByte("/.:?&=-", s[i-1]) >= 0 {
				cut = i
				break
			}
		}
		out = append(out, s[:cut])
		s = s[cut:]
	}
	return append(out, s)
}

// code keeps a pairing code whole when it fits and otherwise splits it after
// its dash (RFC 8628 §6.1 codes like "WDJB-MJHT"), so it stays easy to read.
func code(f *bitmapFont, s string) block {
	s = fold(s)
	whole := chars(f, s)
	return block{f: f, lines: func(n int) []string {
		if len(s) <= n {
			return []string{s}
		}
		for i := 0; i < len(s); i++ {
			if s[i] == '-' && i+1 <= n && len(s)-i-1 <= n {
				return []string{s[:i+1], s[i+1:]}
			}
		}
		return whole.lines(n)
	}}
}

func progress(done, total int) block {
	return block{f: small, bar: &[2]int{done, total}}
}

// shrink returns blocks with large text set in the small font.
func shrink(bs []block) []block {
	out := make([]block, len(bs))
	for i, b := range bs {
		out[i] = b
		if b.f == large {
			out[i].f = small
		}
	}
	return out
}

// placed is a column's content measured for a width.
type placed struct {
	lines [][]string
	h     int
}

// measure returns the lines of each block and the column height; a line
// gap of k inside a block and 2k between blocks.
func measure(bs []block, w, k int) placed {
	var p placed
	for i, b := range bs {
		if i > 0 {
			p.h += 2 * k
		}
		if b.bar != nil {
			p.lines = append(p.lines, nil)
			p.h += b.f.h * k
			continue
		}
		bk := b.scale(k)
		if (b.up > 0 || b.f == large) && b.word > b.f.cols(w, bk) {
			p.h = 1 << 30 // a large line may wrap between words, never inside one
		}
		ls := b.lines(b.f.cols(w, bk))
		p.lines = append(p.lines, ls)
		p.h += len(ls)*b.f.h*bk + max(len(ls)-1, 0)*k
	}
	return p
}

// pick returns the first attempt whose column fits in w×h pixels; if none
// does, the last one, which place then clips.
func pick(attempts [][]block, w, h, k int) ([]block, placed) {
	for _, a := range attempts {
		if m := measure(a, w, k); m.h <= h {
			return a, m
		}
	}
	a := attempts[len(attempts)-1]
	return a, measure(a, w, k)
}

// column lays out the first attempt that fits in r (see pick). When none
// fits, the barest attempt is split into pages that take turns every
// pageTime, so a long explanation is read whole instead of cut off; the
// returned mark ("1/2") tells the header to show which page this is.
func (fr *frame) column(attempts [][]block, r image.Rectangle, center bool, now time.Time) (mark string) {
	bs, p := pick(attempts, r.Dx(), r.Dy(), fr.k)
	if p.h <= r.Dy() {
		fr.place(bs, p, r, center)
		return ""
	}
	pages := paginate(bs, p, r.Dy(), fr.k)
	if len(pages) < 2 {
		fr.place(bs, p, r, center)
		return ""
	}
	fr.pages = len(pages)
	i := pageAt(now, len(pages), pageTime)
	fr.place(pages[i].bs, pages[i].p, r, center)
	return fmt.Sprintf("%d/%d", i+1, len(pages))
}

// pageTime is how long each page of a paged screen stays: long enough to
// read two short lines at a glance.
const pageTime = 4 * time.Second

// pageAt is the page showing at now when n pages take turns every d,
// counted from the Unix epoch so that every renderer agrees.
func pageAt(now time.Time, n int, d time.Duration) int {
	return int(cyclePos(now, time.Duration(n)*d) / d)
}

// cyclePos is how far into a cycle of whole seconds now is, counted from
// the Unix epoch (in seconds, so that even the zero time works).
func cyclePos(now time.Time, cycle time.Duration) time.Duration {
	c := int64(cycle / time.Second)
	if c <= 0 {
		return 0
	}
	return time.Duration(((now.Unix()%c)+c)%c) * time.Second
}

// page is one screenful of a paged column.
type page struct {
	bs []block
	p  placed
}

// paginate splits measured blocks into pages of at most h pixels, breaking
// between lines; each page keeps the blocks' fonts and spacing.
func paginate(bs []block, p placed, h, k int) []page {
	var pages []page
	var cur page
	flush := func() {
		if len(cur.bs) > 0 {
			pages = append(pages, cur)
		}
		cur = page{}
	}
	for i, b := range bs {
		if b.bar != nil {
			need := b.f.h * k
			if len(cur.bs) > 0 && cur.p.h+2*k+need > h {
				flush()
			}
			if len(cur.bs) > 0 {
				cur.p.h += 2 * k
			}
			cur.bs = append(cur.bs, b)
			cur.p.lines = append(cur.p.lines, nil)
			cur.p.h += need
			continue
		}
		lh := b.f.h * b.scale(k)
		// A paragraph that fits on a page is not split across two.
		bh := len(p.lines[i])*lh + max(len(p.lines[i])-1, 0)*k
		if len(cur.bs) > 0 && cur.p.h+2*k+bh > h && bh <= h {
			flush()
		}
		open := false // whether cur's last block is this one
		for _, l := range p.lines[i] {
			gap := 2 * k
			if open {
				gap = k
			}
			if len(cur.bs) == 0 {
				gap = 0
			}
			if len(cur.bs) > 0 && cur.p.h+gap+lh > h {
				flush()
				open, gap = false, 0
			}
			if !open {
				fixed := b
				cur.bs = append(cur.bs, fixed)
				cur.p.lines = append(cur.p.lines, nil)
				open = true
			}
			last := len(cur.p.lines) - 1
			cur.p.lines[last] = append(cur.p.lines[last], l)
			cur.p.h += gap + lh
		}
	}
	flush()
	return pages
}

// place puts measured blocks into r, centred vertically (and horizontally if
// center). Lines that do not fit are dropped and the last shown line ends
// with "..", so a person sees that there is more.
func (fr *frame) place(bs []block, p placed, r image.Rectangle, center bool) {
	k := fr.k
	start := len(fr.texts)
	y := r.Min.Y
	if p.h < r.Dy() {
		y += (r.Dy() - p.h) / 2
	}
	for i, b := range bs {
		if i > 0 {
			y += 2 * k
		}
		bk := b.scale(k)
		lh := b.f.h * bk
		if b.bar != nil {
			if y+lh > r.Max.Y {
				fr.clipLast(start)
				return
			}
			fr.bars = append(fr.bars, barItem{r: image.Rect(r.Min.X, y, r.Max.X, y+lh), done: b.bar[0], total: b.bar[1], k: k})
			y += lh
			continue
		}
		for j, s := range p.lines[i] {
			if j > 0 {
				y += k
			}
			if y+lh > r.Max.Y {
				fr.clipLast(start)
				return
			}
			x := r.Min.X
			if center {
				x += (r.Dx() - b.f.width(s, bk)) / 2
			}
			fr.texts = append(fr.texts, textItem{at: image.Pt(x, y), s: s, f: b.f, k: bk})
			y += lh
		}
	}
}

// clipLast marks the last text line placed since start as continued,
// keeping its width so centring still holds.
func (fr *frame) clipLast(start int) {
	if len(fr.texts) == start {
		return
	}
	t := &fr.texts[len(fr.texts)-1]
	t.s = clip(t.s+"...", len(t.s))
}
