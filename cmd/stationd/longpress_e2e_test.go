package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"labelstation/devcloud/jobs"
	"labelstation/station"
)

// Select mode: holding B on the job list goes back to idle with nothing printed, whichever
// entry is shown — from the board's button, and from the web mirror's button held past
// board.long_press_ms. Both jobs stay held in the cloud for the next tap, and alice's tap
// right after backing out is served although the reader's repeat window is a minute: a person
// who pressed a button and taps again means a new tap. The reader's clock steps a second at
// each reading and press, so this does not hang on how fast the steps run.
func TestSelectModeLongPressGoesBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startCloud(t, ctx, cloudOpts{}, io.Discard)
	f := flags{Sim: true, Web: "127.0.0.1:0", badgeNow: steppingClock(time.Second)}
	sections := strings.Replace(selectSections("E2E-0104", ""), `"repeat_ms":1`, `"repeat_ms":60000`, 1)
	h := runStation(t, ctx, c, sections, f)
	h.enroll()
	tok := userToken(t, c, "alice")
	submit(t, c, tok, "First parcels", "shipping", oneRec("First Person", "TRK1000000001"))
	submit(t, c, tok, "Second parcels", "shipping", oneRec("Second Person", "TRK2000000002"))

	h.tap(aliceBadge)
	h.models.waitFor(t, "the job list", phase(station.Select))
	h.press("A")
	h.models.waitFor(t, "cursor on the first job", func(m station.Model) bool { return m.Phase == station.Select && m.Cursor == 1 })
	if err := h.app.Board.(interface{ LongPress(string) error }).LongPress("B"); err != nil {
		t.Fatal(err)
	}
	h.models.waitFor(t, "idle after B held", func(m station.Model) bool {
		if m.Phase == station.Printing || m.Releasing {
			t.Errorf("B held on a job released it (phase %s)", m.Phase)
		}
		return m.Phase == station.Idle
	})

	// The web mirror: B held 1.5 s on the page's button.
	h.tap(aliceBadge)
	h.models.waitFor(t, "the job list again", func(m station.Model) bool { return m.Phase == station.Select && len(m.Jobs) == 2 })
	resp, err := http.PostForm(h.app.WebURL+"/button", url.Values{"name": {"B"}, "held_ms": {"1500"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("web button: %s", resp.Status)
	}
	h.models.waitFor(t, "idle after B held on the page", func(m station.Model) bool {
		if m.Phase == station.Printing || m.Releasing {
			t.Errorf("B held on Print all released the jobs (phase %s)", m.Phase)
		}
		return m.Phase == station.Idle
	})

	if n := len(h.app.SimPrinter.Labels()); n != 0 {
		t.Fatalf("printed %d labels after going back", n)
	}
	if held, err := c.Jobs.Store().List("alice", jobs.StateHeld); err != nil || len(held) != 2 {
		t.Fatalf("alice's jobs are not both held any more: %+v %v", held, err)
	}
}

// steppingClock is a clock that moves on by step at every reading.
func steppingClock(step time.Duration) func() time.Time {
	t0 := time.Now()
	var n atomic.Int64
	return func() time.Time { return t0.Add(time.Duration(n.Add(1)) * step) }
}
