package auth_test

import (
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

var updateImg = flag.Bool("update-img", false, "write the approval page screenshots to docs/img")

func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium: apt-get install -y chromium (the approval page screenshot test needs it)")
	return ""
}

// box is an element's place on the screen, in CSS pixels.
type box struct {
	Top, Left, Width, Height float64
	Visible                  bool
}

func (b box) bottom() float64 { return b.Top + b.Height }

// TestApprovalPageOnPhoneAndDesktop signs in and looks at the approval page as a phone
// (390×844) and a laptop (1280×800) show it: both buttons visible without scrolling and at least
// 44 px tall (the usual minimum touch target), stacked full-width on the phone.
func TestApprovalPageOnPhoneAndDesktop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium twice; run without -short")
	}
	bin := chromium(t)
	for _, vp := range []struct {
		name          string
		width, height int
		phone         bool
	}{
		{"390x844", 390, 844, true},
		{"1280x800", 1280, 800, false},
	} {
		t.Run(vp.name, func(t *testing.T) {
			f := newFixture(t, nil)
			d := f.deviceCode("10000000a1b2c3d4")
			code := d["user_code"].(string)

			opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox,
				chromedp.DisableGPU, chromedp.WindowSize(vp.width, vp.height), chromedp.Flag("hide-scrollbars", true))
			alloc, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
			defer cancel()
			ctx, cancel := chromedp.NewContext(alloc)
			defer cancel()
			// The first Run starts the browser; a timeout on it would stop the browser, so the
			// deadline comes from a watchdog instead.
			watchdog := time.AfterFunc(2*time.Minute, cancel)
			defer watchdog.Stop()

			shot := func(name string) {
				t.Helper()
				png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
				if err != nil {
					t.Fatal(err)
				}
				dir := t.TempDir()
				if *updateImg {
					dir = filepath.Join("..", "..", "docs", "img")
				}
				if err := os.WriteFile(filepath.Join(dir, "approval-"+name+"-"+vp.name+".png"), png, 0o644); err != nil {
					t.Fatal(err)
				}
			}

			err := chromedp.Do(ctx,
				chromedp.EmulateViewport(int64(vp.width), int64(vp.height), chromedp.EmulateScale(1)),
				chromedp.Navigate(f.url+"/device?user_code="+code),
				chromedp.WaitVisible(chromedp.ID("password")),
			)
			if err != nil {
				t.Fatal(err)
			}
			if vp.phone {
				shot("signin")
			}
			err = chromedp.Do(ctx,
				chromedp.SendKeys(chromedp.ID("user"), "alice"),
				chromedp.SendKeys(chromedp.ID("password"), alicePassword),
				chromedp.Click(chromedp.CSS(`form[action="/device/login"] button`)),
				chromedp.WaitVisible(chromedp.ID("approve")),
			)
			if err != nil {
				t.Fatal(err)
			}
			js, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({
				vw: window.innerWidth, vh: window.innerHeight,
				boxes: ["approve", "deny"].map(id => {
					const e = document.getElementById(id), r = e.getBoundingClientRect(), s = getComputedStyle(e);
					return {Top: r.top, Left: r.left, Width: r.width, Height: r.height,
						Visible: s.visibility !== "hidden" && s.display !== "none" && r.width > 0 && r.height > 0};
				}),
				text: document.body.innerText})`))
			if err != nil {
				t.Fatal(err)
			}
			var m struct {
				VW, VH float64
				Boxes  []box
				Text   string
			}
			if err := json.Unmarshal([]byte(js), &m); err != nil {
				t.Fatal(err)
			}
			shot("decide")
			approve, deny := m.Boxes[0], m.Boxes[1]
			if m.VW != float64(vp.width) {
				t.Errorf("viewport %vx%v, want %dx%d", m.VW, m.VH, vp.width, vp.height)
			}
			for name, b := range map[string]box{"Approve": approve, "Deny": deny} {
				if !b.Visible || b.Height < 44 || b.Top < 0 || b.bottom() > m.VH || b.Left < 0 || b.Left+b.Width > m.VW {
					t.Errorf("%s button %+v: want visible, ≥ 44 px tall, inside the %vx%v viewport", name, b, m.VW, m.VH)
				}
			}
			if vp.phone {
				if deny.Top < approve.bottom() || approve.Width < 0.7*m.VW {
					t.Errorf("on a phone the buttons stack full-width: approve %+v deny %+v", approve, deny)
				}
			} else if deny.Top != approve.Top {
				t.Errorf("on a laptop the buttons sit side by side: approve %+v deny %+v", approve, deny)
			}
			for _, want := range []string{code, "10000000a1b2c3d4", "Label release station", "Print the label jobs", "Stay enrolled", "Signed in as Alice"} {
				if !strings.Contains(m.Text, want) {
					t.Errorf("the page does not say %q:\n%s", want, m.Text)
				}
			}
			if !vp.phone {
				return
			}
			// A tap on Approve enrolls the station.
			err = chromedp.Do(ctx,
				chromedp.Click(chromedp.ID("approve")),
				chromedp.WaitVisible(chromedp.CSS(`p.msg[role="status"]`)),
			)
			if err != nil {
				t.Fatal(err)
			}
			shot("done")
			f.clock.Advance(5 * time.Second)
			if st, m := f.poll(d["device_code"].(string)); st != http.StatusOK {
				t.Fatalf("poll after approving in the browser: %d %v", st, m)
			}
			// An unknown code is said in words.
			err = chromedp.Do(ctx,
				chromedp.Navigate(f.url+"/device?user_code=BBBB-BBBB"),
				chromedp.WaitVisible(chromedp.CSS(`p.msg.error`)),
			)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`p.msg.error`)))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(msg, "No station is waiting for the code BBBB-BBBB.") {
				t.Errorf("unknown code message %q", msg)
			}
			shot("unknown-code")
		})
	}
}
