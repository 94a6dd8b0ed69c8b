package main

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"labelstation/devcloud/jobs"
	"labelstation/station"
)

// selectSections is a sim station in select mode; extra adds release fields.
func selectSections(serial, extra string) string {
	return fmt.Sprintf(`"board":{"kind":"sim","serial":%q},
	  "printer":{"url":"tcp://127.0.0.1:9","lang":"zpl","dpi":203},
	  "badge":{"repeat_ms":1},
	  "release":{"mode":"select","screen_seconds":1%s}`, serial, extra)
}

func oneRec(name, tracking string) string {
	return "name,street,zip,city,tracking\n" + name + ",1 Road,1000,Town," + tracking + "\n"
}

// press presses a sim board button.
func (h *harness) press(name string) {
	h.t.Helper()
	if err := h.app.Board.(interface{ Press(string) error }).Press(name); err != nil {
		h.t.Fatal(err)
	}
}

// Select mode: a tap lists alice's two jobs; A moves past "Print all" and the first job, B
// prints the second job only; the first stays held in the cloud.
func TestSelectModePrintsOnlyTheChosenJob(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startCloud(t, ctx, cloudOpts{}, io.Discard)
	f := flags{Sim: true, Web: "127.0.0.1:0"}
	h := runStation(t, ctx, c, selectSections("E2E-0101", ""), f)
	h.enroll()
	tok := userToken(t, c, "alice")
	j1 := submit(t, c, tok, "First parcels", "shipping", oneRec("First Person", "TRK1000000001"))
	j2 := submit(t, c, tok, "Second parcels", "shipping", oneRec("Second Person", "TRK2000000002"))

	h.tap(aliceBadge)
	m := h.models.waitFor(t, "the job list", phase(station.Select))
	if len(m.Jobs) != 2 {
		t.Fatalf("list has %d jobs, want 2", len(m.Jobs))
	}
	want := m.Jobs[1]
	h.press("A")
	h.models.waitFor(t, "cursor on the first job", func(m station.Model) bool { return m.Phase == station.Select && m.Cursor == 1 })
	h.press("A")
	h.models.waitFor(t, "cursor on the second job", func(m station.Model) bool { return m.Phase == station.Select && m.Cursor == 2 })
	h.press("B")
	labels, err := h.app.SimPrinter.WaitLabels(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	h.models.waitFor(t, "done", phase(station.Done))
	other := j1
	if want.ID == j1.ID {
		other = j2
	}
	waitJobState(t, ctx, c, want.ID, jobs.StatePrinted)
	if n := len(h.app.SimPrinter.Labels()); n != 1 {
		t.Fatalf("printer has %d labels, want only the chosen job's", n)
	}
	wantTRK := map[string]string{j1.ID: "TRK1000000001", j2.ID: "TRK2000000002"}
	if !strings.Contains(labels[0], wantTRK[want.ID]) {
		t.Errorf("printed label is not the chosen job's (%s):\n%s", want.Title, labels[0])
	}
	if held, err := c.Jobs.Store().List("alice", jobs.StateHeld); err != nil || len(held) != 1 || held[0].ID != other.ID {
		t.Fatalf("alice's other job is not held any more: %+v %v", held, err)
	}
}

// Preview, then "later": the job stays on the station. With the broker cut, a tap of the same
// badge prints it from the journal ("Offline - printing jobs already here"), and its status
// reaches the cloud once the broker is back.
func TestOfflineReleaseOfJobKeptAfterPreview(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startCloud(t, ctx, cloudOpts{}, io.Discard)
	f := flags{Sim: true, Web: "127.0.0.1:0"}
	h := runStation(t, ctx, c, selectSections("E2E-0102", `,"preview":true,"offline_seconds":600`), f)
	h.enroll()
	j := submit(t, c, userToken(t, c, "alice"), "Kept parcels", "shipping", oneRec("Kept Person", "TRK3000000003"))

	h.tap(aliceBadge)
	m := h.models.waitFor(t, "the job list", phase(station.Select))
	if len(m.Jobs) != 1 || m.Cursor != 0 {
		t.Fatalf("list %+v cursor %d, want the one job under the cursor", m.Jobs, m.Cursor)
	}
	h.press("B")
	m = h.models.waitFor(t, "the preview", phase(station.Preview))
	if m.PreviewJob != j.ID || m.PreviewImage == nil {
		t.Fatalf("preview of %q (image %v), want %q with its label", m.PreviewJob, m.PreviewImage != nil, j.ID)
	}
	h.press("A")
	h.models.waitFor(t, "kept on the station", phase(station.Kept))
	if n := len(h.app.SimPrinter.Labels()); n != 0 {
		t.Fatalf("printed %d labels after 'later'", n)
	}
	h.models.waitFor(t, "idle", phase(station.Idle))

	if err := c.StopBroker(); err != nil {
		t.Fatal(err)
	}
	h.models.waitFor(t, "offline", func(m station.Model) bool { return !m.Online })
	h.tap(aliceBadge)
	h.models.waitFor(t, "printing offline", func(m station.Model) bool { return m.Phase == station.Printing && m.OfflineRelease })
	labels, err := h.app.SimPrinter.WaitLabels(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(labels[0], "TRK3000000003") {
		t.Errorf("offline label is not the kept job's:\n%s", labels[0])
	}
	h.models.waitFor(t, "done", phase(station.Done))
	if got, _ := c.Jobs.Store().Get(j.ID); got.State == jobs.StatePrinted {
		t.Fatalf("the cloud knew the job printed while its broker was down")
	}

	if err := c.StartBroker(); err != nil {
		t.Fatal(err)
	}
	waitJobState(t, ctx, c, j.ID, jobs.StatePrinted)
}

// A person at the station's web mirror taps a badge, moves to the second job with the A button,
// prints it with B, and only that job prints: headless Chromium drives the page.
func TestWebMirrorSelectsAndReleasesInChromium(t *testing.T) {
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
		t.Skip("no Chromium: apt-get install -y chromium (the web mirror test needs it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startCloud(t, ctx, cloudOpts{}, io.Discard)
	f := flags{Sim: true, Web: "127.0.0.1:0"}
	h := runStation(t, ctx, c, selectSections("E2E-0103", ""), f)
	h.enroll()
	tok := userToken(t, c, "alice")
	j1 := submit(t, c, tok, "First parcels", "shipping", oneRec("First Person", "TRK1000000001"))
	j2 := submit(t, c, tok, "Second parcels", "shipping", oneRec("Second Person", "TRK2000000002"))

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU)
	alloc, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(alloc)
	defer bcancel()
	watchdog := time.AfterFunc(2*time.Minute, bcancel)
	defer watchdog.Stop()

	click := func(sel string) {
		t.Helper()
		if _, err := chromedp.Run(bctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
			t.Fatalf("click %s: %v", sel, err)
		}
	}
	// The first Run starts the browser; a timeout on it would stop the browser, so the deadline
	// comes from the watchdog.
	if _, err := chromedp.Run(bctx, chromedp.Navigate(h.app.WebURL+"/")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(bctx, chromedp.SetValue(chromedp.CSS(`input[name=uid]`), aliceBadge)); err != nil {
		t.Fatal(err)
	}
	click(`form[data-post=tap] button`)
	m := h.models.waitFor(t, "the job list", phase(station.Select))
	if len(m.Jobs) != 2 {
		t.Fatalf("list has %d jobs, want 2", len(m.Jobs))
	}
	want := m.Jobs[1]
	click(`button[value=A]`)
	h.models.waitFor(t, "cursor on the first job", func(m station.Model) bool { return m.Phase == station.Select && m.Cursor == 1 })
	click(`button[value=A]`)
	h.models.waitFor(t, "cursor on the second job", func(m station.Model) bool { return m.Phase == station.Select && m.Cursor == 2 })
	click(`button[value=B]`)
	labels, err := h.app.SimPrinter.WaitLabels(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	waitJobState(t, ctx, c, want.ID, jobs.StatePrinted)
	h.models.waitFor(t, "done", phase(station.Done))
	wantTRK := map[string]string{j1.ID: "TRK1000000001", j2.ID: "TRK2000000002"}
	if n := len(h.app.SimPrinter.Labels()); n != 1 || !strings.Contains(labels[0], wantTRK[want.ID]) {
		t.Fatalf("printer has %d labels; want only %q:\n%s", n, want.Title, labels[0])
	}
}
