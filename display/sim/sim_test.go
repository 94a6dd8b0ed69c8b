package sim

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"labelstation/board"
	"labelstation/display"
	"labelstation/display/displaytest"
)

var size = image.Pt(128, 64)

func frames(t *testing.T) []*image.Gray {
	t.Helper()
	var out []*image.Gray
	for _, v := range displaytest.Views(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))[:3] {
		img, err := display.Render(v, size)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, img)
	}
	return out
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func readPNG(t *testing.T, r io.Reader) *image.Gray {
	t.Helper()
	img, err := png.Decode(r)
	if err != nil {
		t.Fatal(err)
	}
	g, ok := img.(*image.Gray)
	if !ok {
		t.Fatalf("PNG decoded as %T, want *image.Gray", img)
	}
	return g
}

func TestShowWritesFrames(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "frames")
	p, err := New(Options{Dir: dir, Size: size})
	if err != nil {
		t.Fatal(err)
	}
	fs := frames(t)
	for _, f := range fs {
		if err := p.Show(f); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range fs {
		got := readFile(t, filepath.Join(dir, "frame-00000"+string(rune('1'+i))+".png"))
		if !slices.Equal(got.Pix, want.Pix) {
			t.Errorf("frame %d on disk differs from the frame shown", i+1)
		}
	}
	if got := readFile(t, filepath.Join(dir, "latest.png")); !slices.Equal(got.Pix, fs[2].Pix) {
		t.Error("latest.png is not the last frame shown")
	}
	if err := p.Show(image.NewGray(image.Rect(0, 0, 64, 32))); err == nil || !strings.Contains(err.Error(), "64x32 does not match panel 128x64") {
		t.Errorf("wrong-size frame: err = %v", err)
	}
	if err := p.Halt(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "frame-000004.png")); err != nil {
		t.Error("Halt's blank frame was not written")
	}
	n, img, err := p.WaitFrame(ctx(t), 3)
	if err != nil || n != 4 {
		t.Fatalf("after Halt: frame %d, %v", n, err)
	}
	if g := img.(*image.Gray); slices.ContainsFunc(g.Pix, func(b uint8) bool { return b != 0xff }) {
		t.Error("Halt did not blank the panel")
	}
}

// TestKeep: old frames go, an earlier run's frames go at New, other files
// stay.
func TestKeep(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"frame-000009.png", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p, err := New(Options{Dir: dir, Size: size, Keep: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frames(t) {
		if err := p.Show(f); err != nil {
			t.Fatal(err)
		}
	}
	names, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range names {
		names[i] = filepath.Base(n)
	}
	if want := []string{"frame-000002.png", "frame-000003.png", "latest.png", "notes.txt"}; !slices.Equal(names, want) {
		t.Errorf("files %q, want %q", names, want)
	}
}

func readFile(t *testing.T, name string) *image.Gray {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return readPNG(t, f)
}

func TestOptions(t *testing.T) {
	for _, c := range []struct {
		opt  Options
		want string
	}{
		{Options{}, "Options.Size 0x0"},
		{Options{Size: size, Scale: 99}, "Options.Scale 99"},
		{Options{Size: size, Keep: -1}, "Options.Keep -1"},
		{Options{Size: size, Badges: []Badge{{Name: "Ann", UID: []byte{1}}, {Name: "Bob"}}}, `Options.Badges[1] ("Bob")`},
	} {
		_, err := New(c.opt)
		if !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want ErrOptions naming %s", c.opt, err, c.want)
		}
	}
}

func TestWaitFrame(t *testing.T) {
	p, err := New(Options{Size: size})
	if err != nil {
		t.Fatal(err)
	}
	f := frames(t)[0]
	go p.Show(f)
	n, img, err := p.WaitFrame(ctx(t), 0)
	if err != nil || n != 1 {
		t.Fatalf("WaitFrame = %d, %v", n, err)
	}
	if !slices.Equal(img.(*image.Gray).Pix, f.Pix) {
		t.Error("WaitFrame returned a different image")
	}
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := p.WaitFrame(c, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled WaitFrame: err = %v", err)
	}
}

func TestHandler(t *testing.T) {
	p, err := New(Options{Size: size, Badges: []Badge{{Name: "Ann", UID: []byte{0x04, 0xa2, 0x3b, 0x91}}}})
	if err != nil {
		t.Fatal(err)
	}
	taps := make(chan []byte, 4)
	buttons := make(chan board.Press, 4)
	srv := httptest.NewServer(p.Handler(func(uid []byte) { taps <- uid }, func(pr board.Press) { buttons <- pr }))
	t.Cleanup(srv.Close)

	body := get(t, srv.URL+"/", http.StatusOK)
	for _, want := range []string{`EventSource("events")`, `value="04a23b91">Ann<`, `value="A">A<`, `width="512"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}

	// The event stream says which frame is current, then each new one.
	req, _ := http.NewRequestWithContext(ctx(t), "GET", srv.URL+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("events Content-Type = %q", ct)
	}
	ev := bufio.NewReader(resp.Body)
	expectEvent(t, ev, "data: 0")
	f := frames(t)[1]
	if err := p.Show(f); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, ev, "data: 1")

	img := get(t, srv.URL+"/frame.png", http.StatusOK)
	if got := readPNG(t, strings.NewReader(img)); !slices.Equal(got.Pix, f.Pix) {
		t.Error("/frame.png is not the frame shown")
	}

	for _, c := range []struct {
		uid  string
		want []byte
	}{{"04:A2:3B:91", []byte{0x04, 0xa2, 0x3b, 0x91}}, {"0x0102030405", []byte{1, 2, 3, 4, 5}}} {
		if got := post(t, srv.URL+"/tap", "uid", c.uid, http.StatusOK); !strings.Contains(got, "tapped") {
			t.Errorf("tap reply %q", got)
		}
		if got := <-taps; !bytes.Equal(got, c.want) {
			t.Errorf("tap %q: onTap got % x, want % x", c.uid, got, c.want)
		}
	}
	for _, c := range []struct{ uid, want string }{
		{"zz", `uid "zz" is not hex`},
		{"abc", `uid "abc" is not hex`},
		{"", "uid is empty"},
		{strings.Repeat("ab", 11), "is 11 bytes, want at most 10"},
	} {
		if got := post(t, srv.URL+"/tap", "uid", c.uid, http.StatusBadRequest); !strings.Contains(got, c.want) {
			t.Errorf("tap %q: reply %q, want it to say %q", c.uid, got, c.want)
		}
	}

	post(t, srv.URL+"/button", "name", "B", http.StatusOK)
	if got := <-buttons; got != (board.Press{Name: "B"}) {
		t.Errorf("onButton got %+v", got)
	}
	if got := post(t, srv.URL+"/button", "name", "C", http.StatusBadRequest); !strings.Contains(got, `unknown button "C", have A, B`) {
		t.Errorf("button C: reply %q", got)
	}
	if len(taps)+len(buttons) != 0 {
		t.Error("a rejected request reached the station")
	}
	get(t, srv.URL+"/tap", http.StatusMethodNotAllowed)
}

func TestHandlerWithoutCallbacks(t *testing.T) {
	p, err := New(Options{Size: size, Badges: []Badge{{Name: "Ann", UID: []byte{1}}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler(nil, nil))
	t.Cleanup(srv.Close)
	if body := get(t, srv.URL+"/", http.StatusOK); strings.Contains(body, "Ann") || strings.Contains(body, `data-post="tap"`) {
		t.Error("page offers taps with no onTap")
	}
	post(t, srv.URL+"/tap", "uid", "01", http.StatusNotFound)
}

func expectEvent(t *testing.T, r *bufio.Reader, want string) {
	t.Helper()
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(line) != want {
		t.Fatalf("event %q, want %q", line, want)
	}
	if blank, _ := r.ReadString('\n'); blank != "\n" {
		t.Fatalf("event not ended by a blank line: %q", blank)
	}
}

func get(t *testing.T, u string, status int) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	return read(t, resp, status)
}

func post(t *testing.T, u, key, val string, status int) string {
	t.Helper()
	resp, err := http.PostForm(u, url.Values{key: {val}})
	if err != nil {
		t.Fatal(err)
	}
	return read(t, resp, status)
}

func read(t *testing.T, resp *http.Response, status int) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d: %s", resp.Request.Method, resp.Request.URL, resp.StatusCode, status, b)
	}
	return string(b)
}

// BenchmarkShow is the simulator's share of tap feedback: copy, PNG
// encode and two file writes per frame.
func BenchmarkShow(b *testing.B) {
	for _, dir := range []string{"", b.TempDir()} {
		name := "memory"
		if dir != "" {
			name = "files"
		}
		b.Run(name, func(b *testing.B) {
			p, err := New(Options{Dir: dir, Size: size, Keep: 10})
			if err != nil {
				b.Fatal(err)
			}
			img, err := display.Render(display.View{Kind: display.Lookup, User: "Ann"}, size)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Show(img); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
