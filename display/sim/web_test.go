package sim

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"labelstation/board"
)

// The page sends how long a button was held; the handler turns it into a short or long press
// with the panel's threshold.
func TestHandlerLongPress(t *testing.T) {
	p, err := New(Options{Size: size, LongPress: 600 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	buttons := make(chan board.Press, 4)
	srv := httptest.NewServer(p.Handler(nil, func(pr board.Press) { buttons <- pr }))
	t.Cleanup(srv.Close)
	if body := get(t, srv.URL+"/", http.StatusOK); !strings.Contains(body, "600 ms or longer") || !strings.Contains(body, "const longMs =  600 ;") {
		t.Errorf("page does not tell the long-press time:\n%s", body)
	}
	for _, c := range []struct {
		held  string
		want  board.Press
		reply string
	}{
		{"", board.Press{Name: "B"}, "pressed B"},
		{"0", board.Press{Name: "A"}, "pressed A"},
		{"599", board.Press{Name: "B"}, "pressed B"},
		{"600", board.Press{Name: "B", Long: true}, "long press B"},
		{"2500", board.Press{Name: "A", Long: true}, "long press A"},
	} {
		resp, err := http.PostForm(srv.URL+"/button", url.Values{"name": {c.want.Name}, "held_ms": {c.held}})
		if err != nil {
			t.Fatal(err)
		}
		if got := read(t, resp, http.StatusOK); !strings.Contains(got, c.reply) {
			t.Errorf("held_ms %q: reply %q, want %q", c.held, got, c.reply)
		}
		if got := <-buttons; got != c.want {
			t.Errorf("held_ms %q: onButton got %+v, want %+v", c.held, got, c.want)
		}
	}
	for _, held := range []string{"-1", "1.5", "soon", "9999999999"} {
		resp, err := http.PostForm(srv.URL+"/button", url.Values{"name": {"A"}, "held_ms": {held}})
		if err != nil {
			t.Fatal(err)
		}
		if got := read(t, resp, http.StatusBadRequest); !strings.Contains(got, "held_ms") {
			t.Errorf("held_ms %q: reply %q does not name the field", held, got)
		}
	}
	if len(buttons) != 0 {
		t.Error("a rejected press reached the station")
	}
	if _, err := New(Options{Size: size, LongPress: -time.Second}); err == nil {
		t.Error("negative LongPress accepted")
	}
}

// A person holds B on the page with the mouse: the page reports a long press while the button
// is still down and nothing more on release; a click is a short press; Space held on a
// focused button is a long press too. Headless Chromium drives the page.
func TestWebButtonsHoldInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium; run without -short")
	}
	var bin string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Skip("no Chromium: apt-get install -y chromium (the web button test needs it)")
	}
	p, err := New(Options{Size: size, LongPress: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	buttons := make(chan board.Press, 8)
	srv := httptest.NewServer(p.Handler(nil, func(pr board.Press) { buttons <- pr }))
	t.Cleanup(srv.Close)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()))
	alloc, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(alloc)
	defer bcancel()
	watchdog := time.AfterFunc(time.Minute, bcancel)
	defer watchdog.Stop()
	if err := chromedp.Do(bctx, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`button[value=B]`))); err != nil {
		t.Fatal(err)
	}
	next := func(what string) board.Press {
		t.Helper()
		select {
		case pr := <-buttons:
			return pr
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: no press reached the handler", what)
		case <-bctx.Done():
			t.Fatalf("%s: browser gone: %v", what, bctx.Err())
		}
		return board.Press{}
	}
	box, err := chromedp.Run(bctx, chromedp.Evaluate[[]float64](`(() => { const r = document.querySelector("button[value=B]").getBoundingClientRect(); return [r.x + r.width/2, r.y + r.height/2]; })()`))
	if err != nil || len(box) != 2 {
		t.Fatalf("where is B: %v %v", box, err)
	}
	x, y := box[0], box[1]
	held := func(p *input.DispatchMouseEventParams) { p.Buttons, p.ClickCount = 1, 1 }
	once := func(p *input.DispatchMouseEventParams) { p.ClickCount = 1 }
	key := func(typ input.DispatchKeyEventType) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, input.DispatchKeyEvent, input.DispatchKeyEventParams{Type: typ, Key: " ", Code: "Space", WindowsVirtualKeyCode: 32})
			return err
		})
	}

	// Mouse down on B and hold: the long press arrives while the button is still down.
	if err := chromedp.Do(bctx, chromedp.MouseEvent(chromedp.MousePressed, x, y, chromedp.ButtonLeft, held)); err != nil {
		t.Fatal(err)
	}
	if got := next("holding B"); got != (board.Press{Name: "B", Long: true}) {
		t.Fatalf("holding B: got %+v, want a long press of B", got)
	}
	if err := chromedp.Do(bctx, chromedp.MouseEvent(chromedp.MouseReleased, x, y, chromedp.ButtonLeft, once)); err != nil {
		t.Fatal(err)
	}
	// A click of A: one short press, and none left over from the release of B.
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`button[value=A]`))); err != nil {
		t.Fatal(err)
	}
	if got := next("click A"); got != (board.Press{Name: "A"}) {
		t.Fatalf("click A: got %+v, want a short press of A (the release of B must send nothing)", got)
	}
	// Space held on the focused B.
	if err := chromedp.Do(bctx, chromedp.Focus(chromedp.CSS(`button[value=B]`)), key(input.DispatchKeyEventTypeRawKeyDown)); err != nil {
		t.Fatal(err)
	}
	if got := next("Space held on B"); got != (board.Press{Name: "B", Long: true}) {
		t.Fatalf("Space held on B: got %+v, want a long press of B", got)
	}
	if err := chromedp.Do(bctx, key(input.DispatchKeyEventTypeKeyUp)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`button[value=A]`))); err != nil {
		t.Fatal(err)
	}
	if got := next("click A again"); got != (board.Press{Name: "A"}) {
		t.Fatalf("click A again: got %+v, want a short press of A", got)
	}
}
