package station

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	xdraw "golang.org/x/image/draw"

	"labelstation/display"
)

// pairingCode returns a pairing code whose verification_uri_complete is n characters long,
// shaped like a real issuer's: https://<host>/device?user_code=XXXX-XXXX, or a short path for
// very short URLs.
func pairingCode(n int, expires time.Time) PairingCode {
	path, query := "/device", "?user_code=WDJB-MJHT"
	if n < 50 {
		path, query = "/d", "?c=WDJB-MJHT"
	}
	host := "pair-" + strings.Repeat("x", max(n-8-len(path)-len(query)-len("pair-.example.com"), 0)) + ".example.com"
	if n < 50 {
		host = strings.Repeat("l", n-8-len(path)-len(query))
	}
	uri := "https://" + host + path
	return PairingCode{UserCode: "WDJB-MJHT", URI: uri, URIComplete: uri + query, Expires: expires}
}

// zbar decodes img with zbarimg (Debian zbar-tools) and returns the payload.
func zbar(t *testing.T, img image.Image) (string, error) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "qr.png")
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", f).Output()
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(out), "\n"), nil
}

// scale resamples img by num/den: ×4 nearest-neighbour (a crisp close-up) or 0.75 bilinear
// (a camera a little too far away: each 2 px module becomes 1.5 px of grey).
func scale(img image.Image, num, den int, k xdraw.Interpolator) image.Image {
	b := img.Bounds()
	dst := image.NewGray(image.Rect(0, 0, b.Dx()*num/den, b.Dy()*num/den))
	k.Scale(dst, dst.Rect, img, b, xdraw.Src, nil)
	return dst
}

// sameURL compares URLs with the scheme and host case-insensitive (RFC 3986 §6.2.2.1): the
// screen writes them in capitals so the QR encodes them compactly.
func sameURL(a, b string) bool {
	split := func(u string) (string, string) {
		i := strings.Index(u, "://")
		j := strings.IndexAny(u[i+3:], "/?#")
		if j < 0 {
			return u, ""
		}
		return u[:i+3+j], u[i+3+j:]
	}
	ah, ap := split(a)
	bh, bp := split(b)
	return strings.EqualFold(ah, bh) && ap == bp
}

// The pairing screen of the smallest panel, drawn from the model as the daemon draws it, scans:
// for verification URLs of 30, 60 and 90 characters the QR decodes with zbar after a 0.75×
// resample and at ×4. Up to 60 characters it carries the complete URI (code included); a
// 90-character one needs QR version 5 (37 modules, 74 px at 2 px a module) and cannot fit
// 64 px, so the QR carries the shorter verification_uri and the code stays on screen to type.
func TestPairingScreenScans(t *testing.T) {
	if _, err := exec.LookPath("zbarimg"); err != nil {
		t.Skip("zbarimg not installed: apt-get install zbar-tools to run this test")
	}
	for _, size := range []image.Point{{128, 64}, {64, 128}} {
		t.Run(fmt.Sprintf("%dx%d", size.X, size.Y), func(t *testing.T) { pairingScans(t, size) })
	}
}

// pairingScans is TestPairingScreenScans on one panel size. A 64 px wide panel shows the
// code over two lines and the countdown as "5:00".
func pairingScans(t *testing.T, size image.Point) {
	for _, n := range []int{30, 60, 90} {
		c := pairingCode(n, t0.Add(5*time.Minute))
		if len(c.URIComplete) != n {
			t.Fatalf("test URL %q is %d characters, want %d", c.URIComplete, len(c.URIComplete), n)
		}
		v := ViewOf(Model{Phase: Enrolling, Code: c}, t0, "Dock 3")
		img, err := display.Render(v, size)
		if err != nil {
			t.Fatal(err)
		}
		want := c.URIComplete
		if n == 90 {
			want = c.URI
		}
		for _, r := range []struct {
			name     string
			num, den int
			k        xdraw.Interpolator
		}{{"x4", 4, 1, xdraw.NearestNeighbor}, {"x0.75", 3, 4, xdraw.BiLinear}} {
			got, err := zbar(t, scale(img, r.num, r.den, r.k))
			if err != nil || !sameURL(got, want) {
				t.Errorf("%d-char URL at %s: zbar read %q (%v), want %q", n, r.name, got, err, want)
			}
		}
		lines, err := display.Text(v, size)
		if err != nil {
			t.Fatal(err)
		}
		text, joined := strings.Join(lines, " "), strings.Join(lines, "")
		for _, w := range []string{"Scan to", "set up", "WDJB-MJHT", "5:00"} {
			if !strings.Contains(text, w) && !strings.Contains(joined, w) {
				t.Errorf("%d-char URL: the QR page reads %q, missing %q", n, lines, w)
			}
		}
		// The URL to type is on the page that takes turns with the QR.
		if pages, _ := display.Pages(v, size); pages == 2 {
			tv := v
			tv.Now = t0.Add(9 * time.Second)
			ls, _ := display.Text(tv, size)
			joined := strings.Join(ls, "")
			if !strings.Contains(joined, strings.TrimPrefix(c.URI, "https://")) || !strings.Contains(joined, "WDJB-MJHT") {
				t.Errorf("%d-char URL: the text page reads %q", n, ls)
			}
		}
	}
}

// An expired code says so and shows no QR that would lead to a dead code.
func TestPairingCodeExpired(t *testing.T) {
	c := pairingCode(60, t0)
	v := ViewOf(Model{Phase: Enrolling, Code: c}, t0.Add(time.Second), "Dock 3")
	for _, size := range panels {
		lines, err := display.Text(v, size)
		if err != nil {
			t.Fatal(err)
		}
		if lines[0] != "Code expired" || !strings.Contains(strings.Join(lines, " "), "New code") {
			t.Errorf("%v: expired code reads %q", size, lines)
		}
		img, _ := display.Render(v, size)
		if _, err := exec.LookPath("zbarimg"); err == nil {
			if got, err := zbar(t, img); err == nil {
				t.Errorf("%v: expired screen still has a QR: %q", size, got)
			} else if !errors.As(err, new(*exec.ExitError)) {
				t.Fatal(err)
			}
		}
	}
}
