package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"labelstation/board/fakepi"
	boardsim "labelstation/board/sim"
	"labelstation/devcloud/fleet"
	"labelstation/drivers/panel/rotate"
	"labelstation/drivers/printer"
	"labelstation/protocol"
	"labelstation/station"
	"labelstation/station/config"
)

// Fleet fields that reach the hardware take effect while stationd runs: each test pushes a
// document through devcloud's fleet registry and the embedded broker, and watches the part at
// its bus.

// push merges patch (RFC 7396) into the station's desired document and returns the station's
// answer to that version.
func (h *harness) push(id, patch string) protocol.ConfigReported {
	h.t.Helper()
	reg := h.cloud.Fleet
	ev, cancel := reg.Subscribe()
	defer cancel()
	var target, p any
	if err := json.Unmarshal(reg.StationDoc(id).Config, &target); err != nil {
		h.t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(patch), &p); err != nil {
		h.t.Fatal(err)
	}
	merged, _ := json.Marshal(fleet.MergePatch(target, p))
	start := time.Now()
	doc, err := reg.SetStationConfig(id, merged)
	if err != nil {
		h.t.Fatal(err)
	}
	deadline := time.After(30 * time.Second)
	for {
		if st, _ := reg.Get(id); st.Reported != nil && st.Reported.Source == protocol.SourceStation && st.Reported.Version == doc.Version {
			h.t.Logf("push %s answered in %v (applied %v)", patch, time.Since(start).Round(time.Millisecond), st.Reported.Applied)
			return *st.Reported
		}
		select {
		case <-ev:
		case <-deadline:
			h.t.Fatalf("no answer to config version %d (%s)", doc.Version, patch)
		}
	}
}

// waitUntil polls a condition of a fake part that has no change notification.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// dialectPrinter is a printer on raw TCP that answers the ZPL (~HS) and the TSPL (ESC ! ?)
// status queries, as a TSC printer with ZPL emulation does, and counts each.
type dialectPrinter struct {
	ln        net.Listener
	zpl, tspl atomic.Int64
}

var tsplQuery = []byte{0x1b, '!', '?'}

func listenDialectPrinter(t *testing.T) *dialectPrinter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dialectPrinter{ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); p.serve(c) }()
		}
	}()
	return p
}

func (p *dialectPrinter) URL() string { return "tcp://" + p.ln.Addr().String() }

func (p *dialectPrinter) serve(c net.Conn) {
	defer c.Close()
	var buf []byte
	tmp := make([]byte, 4096)
	for {
		n, err := c.Read(tmp)
		buf = append(buf, tmp[:n]...)
		for {
			z, s := bytes.Index(buf, []byte("~HS")), bytes.Index(buf, tsplQuery)
			switch {
			case z >= 0 && (s < 0 || z < s):
				p.zpl.Add(1)
				c.Write(printer.FormatZPLHostStatus(printer.Status{}))
				buf = buf[z+3:]
				continue
			case s >= 0:
				p.tspl.Add(1)
				c.Write([]byte{0x00}) // TSPL status byte: ready
				buf = buf[s+len(tsplQuery):]
				continue
			}
			break
		}
		if len(buf) > 2 {
			buf = append([]byte(nil), buf[len(buf)-2:]...)
		}
		if err != nil {
			return
		}
	}
}

func lit(img image.Image) float64 {
	b := img.Bounds()
	n := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y >= 128 {
				n++
			}
		}
	}
	return float64(n) / float64(b.Dx()*b.Dy())
}

// The printer language and its status dialect, and the reader's repeat window, change live on
// a running station; identify flashes the screen, blinks the LED and beeps.
func TestFleetFieldsApplyLive(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startCloud(t, ctx, cloudOpts{}, io.Discard)
	pr := listenDialectPrinter(t)
	h := runStation(t, ctx, c, fmt.Sprintf(`"board":{"kind":"sim","serial":"LIVE-1"},
	  "printer":{"url":%q,"lang":"zpl","dpi":203},
	  "badge":{"repeat_ms":60000},
	  "release":{"mode":"all","screen_seconds":1}`, pr.URL()), flags{Sim: true, Web: "127.0.0.1:0", Printer: pr.URL()})
	h.enroll()
	id := h.app.Prov.StationID()

	// printer.lang: the status query switches from ~HS to ESC ! ? at once.
	rep := h.push(id, `{"printer":{"lang":"tspl"}}`)
	if !rep.Applied || len(rep.RestartRequired) != 0 {
		t.Fatalf("lang push: %+v", rep)
	}
	if pr.tspl.Load() == 0 {
		t.Fatal("the printer was not asked in TSPL")
	}
	zpl, tspl := pr.zpl.Load(), pr.tspl.Load()
	if hl := h.app.Station.Health(ctx); hl.PrinterStatus != "ready" {
		t.Fatalf("printer status %q after the switch", hl.PrinterStatus)
	}
	if pr.zpl.Load() != zpl || pr.tspl.Load() != tspl+1 {
		t.Fatalf("status query after the switch: ~HS %d→%d, ESC!? %d→%d; want only ESC!?", zpl, pr.zpl.Load(), tspl, pr.tspl.Load())
	}

	// badge.repeat_ms: Alice again within a minute is ignored; Bob, read after her, is the next
	// lookup. With the window pushed down to 1 ms, Bob again within the minute is a new tap.
	tap := func(uid string) {
		t.Helper()
		b, _ := hex.DecodeString(uid)
		if err := h.app.Reader.Tap(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	tap(aliceBadge)
	alice := h.models.waitFor(t, "Alice's lookup", phase(station.Lookup)).Badge
	h.models.waitFor(t, "idle", phase(station.Idle))
	tap(aliceBadge)
	tap(bobBadge)
	bob := h.models.waitFor(t, "the next lookup", phase(station.Lookup)).Badge
	if bob == alice {
		t.Fatal("Alice's second tap within the repeat window was not ignored")
	}
	h.models.waitFor(t, "idle", phase(station.Idle))
	if rep := h.push(id, `{"badge":{"repeat_ms":1}}`); !rep.Applied || len(rep.RestartRequired) != 0 {
		t.Fatalf("repeat push: %+v", rep)
	}
	tap(bobBadge)
	if again := h.models.waitFor(t, "Bob's lookup again", phase(station.Lookup)).Badge; again != bob {
		t.Fatalf("lookup of %q, want Bob's", again)
	}
	h.models.waitFor(t, "idle", phase(station.Idle))

	// identify: the screen flashes (inverted frames), then shows the idle screen again.
	seq, before, err := h.app.Panel.WaitFrame(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	plain := lit(before)
	inverse := func(l float64) bool { return l > plain+0.3 || l < plain-0.3 }
	if plain > 0.35 && plain < 0.65 {
		t.Fatalf("idle screen %.0f%% lit: an inverted frame would not tell", 100*plain)
	}
	frames := make(chan float64, 1000)
	fctx, stopFrames := context.WithCancel(ctx)
	defer stopFrames()
	go func() {
		for s := seq; ; {
			n, img, err := h.app.Panel.WaitFrame(fctx, s)
			if err != nil {
				close(frames)
				return
			}
			s = n
			frames <- lit(img)
		}
	}()
	ev, unsub := c.Fleet.Subscribe()
	defer unsub()
	if _, err := c.Fleet.Send(id, "identify-1", protocol.CmdIdentify, json.RawMessage(`{"seconds":1}`), time.Minute); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(30 * time.Second)
	for {
		got, _ := c.Fleet.CommandStatus("identify-1")
		if r := got.Results[id]; r.Status == protocol.CmdDone {
			break
		} else if r.Status == protocol.CmdFailed {
			t.Fatalf("identify failed: %s", r.Error)
		}
		select {
		case <-ev:
		case <-deadline:
			t.Fatal("identify did not finish")
		}
	}
	_, after, _ := h.app.Panel.WaitFrame(ctx, 0)
	stopFrames()
	inverted := 0
	for l := range frames {
		if inverse(l) {
			inverted++
		}
	}
	if inverted == 0 {
		t.Error("the screen did not flash")
	}
	if inverse(lit(after)) {
		t.Error("the screen stayed inverted after identify")
	}
	sb := h.app.Board.(*boardsim.Board)
	led, _ := sb.Output("led")
	buzzer, _ := sb.Output("buzzer")
	if hist := led.(*boardsim.Output).History(); countOn(hist) < 3 {
		t.Errorf("LED history %v: no blinking", hist)
	}
	if !led.(*boardsim.Output).On() {
		t.Error("LED off after identify on an online station")
	}
	if countOn(buzzer.(*boardsim.Output).History()) == 0 {
		t.Error("no beep")
	}
}

func countOn(h []bool) int {
	n := 0
	for _, on := range h {
		if on {
			n++
		}
	}
	return n
}

// The SSD1306 of a fake Pi is turned and dimmed by a push, without a restart: the next frame
// in its GDDRAM is upside down, and command 81 carried the new contrast.
func TestDisplayTurnsAndDimsLive(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startCloud(t, ctx, cloudOpts{}, io.Discard)
	h := runStation(t, ctx, c, `"board":{"kind":"fakepi"},
	  "display":{"kind":"ssd1306","width":128,"height":64,"rotate":0,"contrast":255},
	  "badge":{"reader":"pn532-i2c","repeat_ms":1},
	  "printer":{"url":"tcp://127.0.0.1:9","lang":"zpl","dpi":203},
	  "release":{"mode":"confirm","screen_seconds":1}`, flags{})
	pi := h.app.Board.(*fakepi.Pi)
	h.enroll()
	id := h.app.Prov.StationID()
	// A push that only dims: once command 81 carried it, the screen worker has drawn the
	// configured idle screen.
	if rep := h.push(id, `{"display":{"contrast":254}}`); !rep.Applied {
		t.Fatalf("contrast push: %+v", rep)
	}
	waitUntil(t, "contrast 254", func() bool { return pi.OLED.Contrast() == 254 })
	upright := pi.OLED.Frame()

	rep := h.push(id, `{"display":{"rotate":180,"contrast":40}}`)
	if !rep.Applied || len(rep.RestartRequired) != 0 {
		t.Fatalf("display push: %+v", rep)
	}
	want := turn180(upright)
	waitUntil(t, "the turned frame", func() bool { return bytes.Equal(pi.OLED.Frame().Pix, want.Pix) })
	waitUntil(t, "contrast 40", func() bool { return pi.OLED.Contrast() == 40 })

	// And back.
	if rep := h.push(id, `{"display":{"rotate":0}}`); !rep.Applied {
		t.Fatalf("display push: %+v", rep)
	}
	waitUntil(t, "the upright frame", func() bool { return bytes.Equal(pi.OLED.Frame().Pix, upright.Pix) })
}

func turn180(img *image.Gray) *image.Gray {
	out := image.NewGray(img.Rect)
	w, hgt := img.Rect.Dx(), img.Rect.Dy()
	for y := range hgt {
		for x := range w {
			out.Pix[(hgt-1-y)*out.Stride+w-1-x] = img.Pix[y*img.Stride+x]
		}
	}
	return out
}

// A pushed printer language the printer does not answer in is refused with its path: the
// station rolls back to the last good config, says why in config/reported, and keeps printing
// with it — against the sim printer on TCP, through the embedded broker.
func TestPrinterLanguageRollback(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startCloud(t, ctx, cloudOpts{}, io.Discard)
	h := startStation(t, ctx, c, "LIVE-3", flags{})
	h.enroll()
	id := h.app.Prov.StationID()
	good := h.app.Station.ConfigHash()

	rep := h.push(id, `{"printer":{"lang":"tspl"}}`)
	if rep.Applied || rep.Path != "printer.lang" || rep.Hash != good {
		t.Fatalf("report %+v, want refused at printer.lang with the old hash", rep)
	}
	for _, want := range []string{`"tspl"`, "status", `"zpl"`} {
		if !strings.Contains(rep.Error, want) {
			t.Errorf("reason %q lacks %s", rep.Error, want)
		}
	}
	if got := h.app.Station.Config().Printer.Lang; got != "zpl" {
		t.Fatalf("running printer.lang %q, want zpl kept", got)
	}
	if got := h.app.printer.Lang(); got != "zpl" {
		t.Fatalf("printer driver speaks %q, want zpl", got)
	}
	j := submit(t, c, userToken(t, c, "alice"), "After the refusal", "shipping", threeRecords)
	h.tapAndPrint(aliceBadge, j, 3)
}

// panel120 is a 120×64 panel: wide enough upright, too short for the screens turned upright.
type panel120 struct{}

func (panel120) String() string          { return "panel120" }
func (panel120) ColorModel() color.Model { return color.GrayModel }
func (panel120) Bounds() image.Rectangle { return image.Rect(0, 0, 120, 64) }
func (panel120) Halt() error             { return nil }
func (panel120) Draw(image.Rectangle, image.Image, image.Point) error {
	return nil
}

// A turn whose size the screens cannot fill is refused at display.rotate, before anything
// changed.
func TestTurnTheScreensCannotFillRefused(t *testing.T) {
	sw, err := rotate.NewSwitch(panel120{}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.Printer.URL = "tcp://127.0.0.1:9"
	h := newLiveHardware(cfg, printer.NewRedialer(cfg.Printer.URL, cfg.Printer.Lang), sw, slog.New(slog.DiscardHandler))
	next := cfg
	next.Display.Rotate = 90
	next.Badge.RepeatMS = 5
	err = h.Apply(t.Context(), next)
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Path != "display.rotate" || !strings.Contains(err.Error(), "64x120") {
		t.Fatalf("Apply: %v, want a refusal at display.rotate naming 64x120", err)
	}
	if sw.Degrees() != 0 || h.Repeat() != cfg.Badge.Repeat() {
		t.Fatalf("after the refusal: turned %d, repeat %v; want nothing changed", sw.Degrees(), h.Repeat())
	}
}

// A printer that answers in neither language is away, not broken by the change: the new
// language is taken.
func TestLanguageTakenWhilePrinterAway(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	away := "tcp://" + ln.Addr().String()
	ln.Close() // nobody listens there now: every dial is refused
	cfg := config.Defaults()
	cfg.Printer.URL = away
	pr := printer.NewRedialer(away, cfg.Printer.Lang)
	h := newLiveHardware(cfg, pr, nil, slog.New(slog.DiscardHandler))
	next := cfg
	next.Printer.Lang = "tspl"
	if err := h.Apply(t.Context(), next); err != nil {
		t.Fatalf("Apply with the printer away: %v", err)
	}
	if pr.Lang() != "tspl" {
		t.Fatalf("printer language %q, want tspl", pr.Lang())
	}
}
