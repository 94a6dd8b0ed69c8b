package display

import (
	"errors"
	"image"
	"strings"
	"testing"
	"time"
)

// A 64x128 panel (an SSD1306 upright) is accepted; panels smaller than both
// 120x64 and 64x128 are refused with their size named.
func TestCheckSizePortrait(t *testing.T) {
	for _, ok := range []image.Point{{64, 128}, {128, 64}, {122, 250}, {80, 160}} {
		if err := CheckSize(ok); err != nil {
			t.Errorf("%v: %v", ok, err)
		}
	}
	for _, bad := range []image.Point{{128, 32}, {64, 64}, {96, 64}, {64, 127}, {63, 128}, {32, 128}} {
		err := CheckSize(bad)
		name := strings.Trim(strings.ReplaceAll(bad.String(), ",", "x"), "()")
		if !errors.Is(err, ErrTooSmall) || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "64x128") {
			t.Errorf("%v: err = %v, want ErrTooSmall naming %s and 64x128", bad, err, name)
		}
	}
}

// readAll is every line of every page of v at size, in order.
func readAll(t *testing.T, v View, size image.Point) []string {
	t.Helper()
	n, err := Pages(v, size)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := range n {
		pv := v
		pv.Now = time.Unix(int64(i)*int64(pageTime/time.Second), 0)
		ls, err := Text(pv, size)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ls...)
	}
	return out
}

// unbreak joins lines as a reader does: a line ending in a hyphen that
// wrapping added runs on into the next.
func unbreak(ls []string) string {
	var b strings.Builder
	for i, l := range ls {
		if strings.HasSuffix(l, "-") && i+1 < len(ls) {
			b.WriteString(strings.TrimSuffix(l, "-"))
			continue
		}
		b.WriteString(l + " ")
	}
	return b.String()
}

// On 64x128 the idle, printing, fault and error screens say everything they
// say on 128x64 — headline and explanation over pages if need be, nothing cut.
func TestPortraitScreensReadWhole(t *testing.T) {
	size := image.Pt(64, 128)
	for _, c := range []struct {
		v    View
		want []string
	}{
		{View{Kind: Idle, Station: "Dock 3", Online: true}, []string{"Dock 3", "Tap your badge"}},
		{View{Kind: Connecting}, []string{"Connecting", "Please wait"}},
		{View{Kind: Printing, Done: 1, Total: 3, Lines: []string{"Shipping labels"}}, []string{"Printing", "2/3", "Shipping labels"}},
		{View{Kind: Paused, Title: "Paper out", Lines: []string{"Load labels, close the lid.", "Printing resumes when fixed."}},
			[]string{"Paper out", "Load labels, close the lid.", "Printing resumes when fixed."}},
		{View{Kind: Error}, []string{"Error", "Something went wrong.", "Tap again. If it repeats, call IT."}},
		{View{Kind: Offline}, []string{"Offline", "No connection. Try again soon.", "Your jobs are kept."}},
		{View{Kind: Done, Total: 3, User: "Ann"}, []string{"Done", "3 labels printed", "Thank you, Ann"}},
	} {
		ls := readAll(t, c.v, size)
		got := strings.Join(strings.Fields(unbreak(ls)), " ")
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("%v: reads %q, missing %q", c.v.Kind, ls, w)
			}
		}
		for _, l := range ls {
			if strings.HasSuffix(l, "..") && !strings.HasSuffix(l, "...") {
				t.Errorf("%v: line %q is cut", c.v.Kind, l)
			}
		}
	}
}

// The pairing screen upright keeps a QR at 2 px a module with its quiet
// zone inside the 64 px width, the heading, code and countdown under it.
func TestPortraitPairing(t *testing.T) {
	size := image.Pt(64, 128)
	v := View{Kind: Enrolling, QR: "https://pair.labelcloud.example.com/device?user_code=WDJB-MJHT", Code: "WDJB-MJHT",
		URL: "https://pair.labelcloud.example.com/device", Now: time.Unix(0, 0), Expires: time.Unix(300, 0)} // the QR page's turn
	fr, err := layout(v, size)
	if err != nil {
		t.Fatal(err)
	}
	checkFrame(t, "pairing 64x128", fr)
	if fr.qr == nil || fr.qr.m < minModule {
		t.Fatalf("qr = %+v, want one at >= %d px a module", fr.qr, minModule)
	}
	if side := (len(fr.qr.bits) + 2) * fr.qr.m; side > size.X {
		t.Errorf("QR with quiet zone is %d px, wider than %d", side, size.X)
	}
	got := strings.Join(fr.textStrings(), "")
	for _, w := range []string{"Scan to", "WDJB-MJHT", "5:00"} {
		if !strings.Contains(got, w) {
			t.Errorf("QR page reads %q, missing %q", fr.textStrings(), w)
		}
	}
	// The URL to type and the code take turns with the QR, a page each.
	var ls []string
	for _, after := range []time.Duration{qrTime + time.Second, qrTime + pageTime + time.Second} {
		tv := v
		tv.Now = time.Unix(0, 0).Add(after)
		page, err := Text(tv, size)
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, page...)
	}
	if j := strings.Join(ls, ""); !strings.Contains(j, "pair.labelcloud.example.com/device") || !strings.Contains(j, "WDJB-MJHT") {
		t.Errorf("text page reads %q, want the URL and code", ls)
	}
}

func (fr *frame) textStrings() []string {
	var out []string
	for _, t := range fr.texts {
		out = append(out, t.s)
	}
	return out
}
