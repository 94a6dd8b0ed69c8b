package station

import (
	"bytes"
	"flag"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"labelstation/display"
	"labelstation/drivers/printer"
	"labelstation/label"
	"labelstation/protocol"
)

var update = flag.Bool("update", false, "rewrite docs/screens from the current screens")

// screensDir holds the golden screens, the pictures docs/provisioning.md shows.
const screensDir = "../docs/screens"

// goldenStates are the states a station shows, as models: every phase, and every problem.
func goldenStates() []struct {
	name string
	m    Model
} {
	exp := t0.Add(5 * time.Minute)
	code := PairingCode{UserCode: "WDJB-MJHT", URI: "https://pair.labelcloud.example.com/device",
		URIComplete: "https://pair.labelcloud.example.com/device?user_code=WDJB-MJHT", Expires: exp}
	jobs := []protocol.JobSummary{{ID: "1", Title: "Shipping labels", Labels: 3}, {ID: "2", Title: "Shelf tags aisle 4", Labels: 12},
		{ID: "3", Title: "Asset tags", Labels: 1}, {ID: "4", Title: "Returns", Labels: 2}}
	aged := []protocol.JobSummary{
		{ID: "1", Title: "Shipping labels", Labels: 3, Submitted: t0.Add(-2 * time.Hour), Expires: t0.Add(6*time.Hour + 40*time.Minute)},
		{ID: "2", Title: "Shelf tags aisle 4", Labels: 12, Submitted: t0.Add(-25 * time.Minute), Expires: t0.Add(7*time.Hour + 35*time.Minute)},
		{ID: "3", Title: "Returns", Labels: 2, Submitted: t0.Add(-3 * time.Minute), Expires: t0.Add(40 * time.Minute)}}
	fault := func(st printer.Status) string { return fmt.Errorf("%w: %v", ErrPrinterNotReady, st.Fault()).Error() }
	on := Model{Online: true, WasOnline: true, Configured: true}
	with := func(m Model, f func(*Model)) Model { f(&m); return m }
	return []struct {
		name string
		m    Model
	}{
		{"boot", Model{Phase: Boot}},
		{"enrolling", Model{Phase: Enrolling, Code: code}},
		{"enrolling-expired", Model{Phase: Enrolling, Code: with(Model{Code: code}, func(m *Model) { m.Code.Expires = t0 }).Code}},
		{"denied", Model{Phase: Denied}},
		{"setup-problem", Model{Phase: SetupProblem, Setup: "invalid_scope"}},
		{"connecting", Model{Phase: Connecting, Configured: true}},
		{"offline", with(on, func(m *Model) { m.Phase, m.Online = Connecting, false })},
		{"idle", with(on, func(m *Model) { m.Phase = Idle })},
		{"idle-not-configured", with(on, func(m *Model) { m.Phase, m.Configured = Idle, false })},
		{"idle-storage-full", with(on, func(m *Model) { m.Phase, m.StorageFull = Idle, true })},
		{"lookup", with(on, func(m *Model) { m.Phase, m.User = Lookup, "Ann" })},
		{"list-confirm", with(on, func(m *Model) { m.Phase, m.User, m.Jobs, m.Confirm = List, "Ann Müller", jobs, true })},
		{"list-releasing", with(on, func(m *Model) { m.Phase, m.User, m.Jobs, m.Releasing = List, "Ann", jobs[:2], true })},
		{"printing", with(on, func(m *Model) { m.Phase, m.User, m.Title, m.Done, m.Total = Printing, "Ann", "Shipping labels", 1, 3 })},
		{"paused-paper-out", with(on, func(m *Model) {
			m.Phase, m.Done, m.Total, m.Message = Paused, 1, 3, fault(printer.Status{PaperOut: true})
		})},
		{"paused-ribbon-out", with(on, func(m *Model) { m.Phase, m.Message = Paused, fault(printer.Status{RibbonOut: true}) })},
		{"paused-head-open", with(on, func(m *Model) { m.Phase, m.Message = Paused, fault(printer.Status{HeadOpen: true}) })},
		{"paused-printer-offline", with(on, func(m *Model) {
			m.Phase, m.Message = Paused, ErrPrinterNotReady.Error()+": dial tcp: connection refused"
		})},
		{"done", with(on, func(m *Model) { m.Phase, m.User, m.Printed = Done, "Ann", 3 })},
		{"nojobs", with(on, func(m *Model) { m.Phase, m.User = NoJobs, "Ann" })},
		{"unknown-badge", with(on, func(m *Model) { m.Phase = UnknownBadge })},
		{"offline-tap", with(on, func(m *Model) { m.Phase, m.Online, m.Message = Offline, false, "Cloud unreachable" })},
		{"failed-paper-out", with(on, func(m *Model) { m.Phase, m.Message = Failed, fault(printer.Status{PaperOut: true}) })},
		{"failed-storage-full", with(on, func(m *Model) { m.Phase, m.Message = Failed, "Storage full: job refused" })},
		{"failed-badge", with(on, func(m *Model) { m.Phase, m.Message = Failed, "badge: 9 bits: want at least 16" })},
		{"failed-not-configured", with(on, func(m *Model) { m.Phase, m.Message = Failed, "not configured yet: no badge key from the fleet" })},
		{"failed-setup", with(on, func(m *Model) { m.Phase, m.Message = Failed, "journal: database not open" })},
		{"failed", with(on, func(m *Model) { m.Phase, m.Message = Failed, "Parcels: data: line 3: bad quote" })},
		{"list-time-left", with(on, func(m *Model) { m.Phase, m.User, m.Jobs, m.Confirm = List, "Ann", aged, true })},
		{"select-all", with(on, func(m *Model) { m.Phase, m.User, m.Jobs = Select, "Ann", aged })},
		{"select-job", with(on, func(m *Model) { m.Phase, m.User, m.Jobs, m.Cursor = Select, "Ann", aged, 2 })},
		{"select-back", with(on, func(m *Model) { m.Phase, m.User, m.Jobs, m.Cursor = Select, "Ann", aged, 4 })},
		{"select-sending", with(on, func(m *Model) { m.Phase, m.User, m.Jobs, m.Cursor, m.Releasing = Select, "Ann", aged, 1, true })},
		{"preview", with(on, func(m *Model) {
			m.Phase, m.Title, m.PreviewJob, m.PreviewImage = Preview, "Three parcels", "1", goldenLabel()
		})},
		{"kept", with(on, func(m *Model) { m.Phase, m.User = Kept, "Ann" })},
		{"failed-expired", with(on, func(m *Model) {
			m.Phase, m.Message = Failed, "Returns: "+errExpired.Error()+" (expired 2026-11-22T09:00:00Z)"
		})},
		{"printing-offline", with(Model{Configured: true, WasOnline: true}, func(m *Model) {
			m.Phase, m.User, m.Title, m.Done, m.Total, m.OfflineRelease = Printing, "Ann", "Shipping labels", 1, 3, true
		})},
		{"link-wait", with(on, func(m *Model) { m.Phase = LinkWait })},
		{"link-code", with(on, func(m *Model) { m.Phase, m.Link = LinkCode, goldenLink(exp) })},
		{"link-expired", with(on, func(m *Model) { m.Phase = LinkExpired })},
		{"link-refused", with(on, func(m *Model) { m.Phase = LinkRefused })},
		{"link-done", with(on, func(m *Model) { m.Phase, m.User = LinkDone, "Ann Müller" })},
	}
}

// goldenLabel is the first label of the example shipping layout, as the preview shows it.
func goldenLabel() image.Image {
	layout, err := os.ReadFile(filepath.Join("..", "examples", "layouts", "shipping.json"))
	if err != nil {
		panic(err)
	}
	img, err := firstLabel(protocol.Job{Layout: layout, Format: "csv", Data: []byte("name,street,zip,city,tracking\nAda Lovelace,12 Square,4JH,London,TRK0000000001\n")},
		label.Target{Lang: label.LangZPL, DPI: 203})
	if err != nil {
		panic(err)
	}
	return img
}

// goldenSizes: the SSD1306 OLED, the 2.13" e-paper, a 240×240 LCD and the
// SSD1306 upright.
var goldenSizes = []image.Point{{128, 64}, {250, 122}, {240, 240}, {64, 128}}

// The golden screens in docs/screens are what the daemon draws for every state (ViewOf, then
// Render) on each panel size; a screen that drifts fails here until it is looked at and
// regenerated with: go test ./station -run TestGoldenScreens -update
func TestGoldenScreens(t *testing.T) {
	if *update {
		if err := os.MkdirAll(screensDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]bool{}
	for _, st := range goldenStates() {
		for _, size := range goldenSizes {
			img, err := display.Render(ViewOf(st.m, t0, "Dock 3"), size)
			if err != nil {
				t.Fatal(err)
			}
			name := fmt.Sprintf("%s-%dx%d.png", st.name, size.X, size.Y)
			want[name] = true
			path := filepath.Join(screensDir, name)
			var b bytes.Buffer
			if err := png.Encode(&b, img); err != nil {
				t.Fatal(err)
			}
			if *update {
				if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			f, err := os.Open(path)
			if err != nil {
				t.Errorf("%s: %v; regenerate with go test ./station -run TestGoldenScreens -update", name, err)
				continue
			}
			old, err := png.Decode(f)
			f.Close()
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			g, ok := old.(*image.Gray)
			if !ok || g.Rect != img.Rect || !bytes.Equal(g.Pix, img.Pix) {
				t.Errorf("%s drifted from the screen the daemon draws; look at it, then regenerate with -update", name)
			}
		}
	}
	// No stale picture stays behind in the docs.
	files, _ := filepath.Glob(filepath.Join(screensDir, "*.png"))
	for _, f := range files {
		if !want[filepath.Base(f)] {
			if *update {
				os.Remove(f)
				continue
			}
			t.Errorf("%s is no screen the daemon draws any more", f)
		}
	}
}
