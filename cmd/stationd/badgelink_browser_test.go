package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"labelstation/devcloud"
	"labelstation/devcloud/jobs"
	"labelstation/station"
)

// newBadge is a card no user of the seed has.
const newBadge = "04C0FFEE112233"

func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium: apt-get install -y chromium to run the badge linking browser test")
	return ""
}

// qrOnPanel reads the QR code the simulated panel shows, waiting for the screen worker to draw
// it; "" when zbarimg is not installed.
func qrOnPanel(t *testing.T, ctx context.Context, h *harness) string {
	t.Helper()
	if _, err := exec.LookPath("zbarimg"); err != nil {
		t.Log("zbarimg not installed (apt-get install zbar-tools): the QR on the panel is not read")
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	last := -1
	for {
		seq, img, err := h.app.Panel.WaitFrame(ctx, last)
		if err != nil {
			t.Fatalf("no frame with a readable QR on the panel: %v", err)
		}
		last = seq
		if got, ok := zbarRead(t, img); ok {
			return got
		}
	}
}

// zbarRead decodes a QR code in img, scaled ×4 as a phone's camera sees it close up.
func zbarRead(t *testing.T, img image.Image) (string, bool) {
	t.Helper()
	b := img.Bounds()
	big := image.NewGray(image.Rect(0, 0, b.Dx()*4, b.Dy()*4))
	for y := range big.Rect.Dy() {
		for x := range big.Rect.Dx() {
			big.Set(x, y, img.At(b.Min.X+x/4, b.Min.Y+y/4))
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, big); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "panel.png")
	if err := os.WriteFile(f, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", f).Output()
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(out)), true
}

// An employee taps a badge the cloud does not know; the station shows a QR code. Headless
// Chromium opens the code's URL as their phone would, signs in as Alice and confirms; the next
// tap of the same badge releases and prints Alice's held job.
func TestBadgeLinkInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium; run without -short")
	}
	bin := chromiumPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := startCloud(t, ctx, cloudOpts{}, io.Discard)
	h := startStation(t, ctx, c, "LINK-0001", flags{})
	h.enroll()
	j := submit(t, c, userToken(t, c, "alice"), "Three parcels", "shipping", threeRecords)

	h.tap(newBadge)
	m := h.models.waitFor(t, "the link code", phase(station.LinkCode))
	u := m.Link.Code.URIComplete
	if !strings.HasPrefix(u, c.URL+"/device/badge?code=") || !strings.HasSuffix(u, m.Link.Code.UserCode) {
		t.Fatalf("link URL %q, want devcloud's badge page with the code %s", u, m.Link.Code.UserCode)
	}
	if left := time.Until(m.Link.Code.Expires); left < 4*time.Minute || left > 5*time.Minute {
		t.Errorf("the code has %v left, want about 5 minutes", left)
	}
	if got := qrOnPanel(t, ctx, h); got != "" && !strings.EqualFold(got, u) {
		t.Fatalf("the panel's QR reads %q, want %q", got, u)
	}
	if n := len(h.app.SimPrinter.Labels()); n != 0 {
		t.Fatalf("an unknown badge printed %d labels", n)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(390, 844))
	alloc, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(alloc)
	defer bcancel()
	// The first action starts the browser; a timeout on its context would stop the browser,
	// so the deadline comes from a watchdog instead.
	watchdog := time.AfterFunc(2*time.Minute, bcancel)
	defer watchdog.Stop()
	if err := chromedp.Do(bctx,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(1)),
		chromedp.Navigate(u),
		chromedp.WaitVisible(chromedp.ID("user")),
		chromedp.SendKeys(chromedp.ID("user"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), password(t, c, "alice")),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("link")),
	); err != nil {
		t.Fatalf("browser: sign in: %v", err)
	}
	question, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("p.big")))
	if err != nil {
		t.Fatalf("browser: read the question: %v", err)
	}
	// On a phone both buttons are in view without scrolling and big enough to tap.
	js, err := chromedp.Run(bctx, chromedp.Evaluate[string](`JSON.stringify({vw: window.innerWidth, vh: window.innerHeight,
		boxes: ["link", "cancel"].map(id => { const r = document.getElementById(id).getBoundingClientRect();
			return {top: r.top, left: r.left, width: r.width, height: r.height}; })})`))
	if err != nil {
		t.Fatalf("browser: measure the buttons: %v", err)
	}
	var layout struct {
		VW, VH float64
		Boxes  []struct{ Top, Left, Width, Height float64 }
	}
	if err := json.Unmarshal([]byte(js), &layout); err != nil || len(layout.Boxes) != 2 || layout.VW != 390 {
		t.Fatalf("button layout %s: %v", js, err)
	}
	for i, b := range layout.Boxes {
		if b.Height < 44 || b.Top < 0 || b.Top+b.Height > layout.VH || b.Left < 0 || b.Left+b.Width > layout.VW {
			t.Errorf("button %d %+v: want ≥ 44 px tall, inside the %vx%v viewport", i, b, layout.VW, layout.VH)
		}
	}
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.ID("link")), chromedp.WaitVisible(chromedp.ID("message"))); err != nil {
		t.Fatalf("browser: confirm: %v", err)
	}
	result, err := chromedp.Run(bctx, chromedp.Text(chromedp.ID("message")))
	if err != nil {
		t.Fatalf("browser: read the answer: %v", err)
	}
	if !strings.Contains(question, "Link badge …") || !strings.Contains(question, "to Alice Adler?") {
		t.Fatalf("the page asks %q", question)
	}
	if !strings.Contains(result, "is now linked to Alice Adler") {
		t.Fatalf("after confirming the page says %q", result)
	}

	// The station hears of it and says so; the same badge again now finds Alice's job and
	// prints it.
	linked := h.models.waitFor(t, "the badge linked screen", phase(station.LinkDone))
	if linked.User != "Alice Adler" {
		t.Errorf("the linked screen greets %q, want Alice Adler", linked.User)
	}
	h.tap(newBadge)
	listed := h.models.waitFor(t, "Alice's jobs", func(m station.Model) bool {
		return (m.Phase == station.List || m.Phase == station.Printing) && m.User == "Alice Adler"
	})
	if listed.Phase == station.List && (len(listed.Jobs) != 1 || listed.Jobs[0].ID != j.ID) {
		t.Fatalf("listed %+v, want %s", listed.Jobs, j.ID)
	}
	if _, err := h.app.SimPrinter.WaitLabels(ctx, 3); err != nil {
		t.Fatal(err)
	}
	waitJobState(t, ctx, c, j.ID, jobs.StatePrinted)
	done := h.models.waitFor(t, "done", phase(station.Done))
	if done.Link != (station.BadgeLink{}) {
		t.Errorf("the link code outlived the link: %+v", done.Link)
	}
}

// password is the sign-in password devcloud generated for a seed user.
func password(t *testing.T, c *devcloud.Cloud, user string) string {
	t.Helper()
	for _, u := range c.Seed.Users {
		if u.ID == user && u.Password != "" {
			return u.Password
		}
	}
	t.Fatalf("no password for %s", user)
	return ""
}
