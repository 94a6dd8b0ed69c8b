package main

import (
	"context"
	"encoding/hex"
	"io"
	"strings"
	"testing"
	"time"

	"labelstation/board/fakepi"
	"labelstation/station"
)

// A badge reader on a loose cable: the daemon keeps restarting it, the screen says so after a
// few failures instead of inviting taps, and once the cable is back the next tap is read.
func TestBadgeReaderUnpluggedAndBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startCloud(t, ctx, cloudOpts{}, io.Discard)
	h := runStation(t, ctx, c, `"board":{"kind":"fakepi"},
	  "display":{"kind":"ssd1306","width":128,"height":64},
	  "badge":{"reader":"pn532-i2c","repeat_ms":1},
	  "printer":{"url":"tcp://127.0.0.1:9","lang":"zpl","dpi":203},
	  "release":{"mode":"confirm","screen_seconds":1}`, flags{})
	pi := h.app.Board.(*fakepi.Pi)
	h.enroll()

	pi.PN532.Unplug()
	m := h.models.waitFor(t, "the reader fault", func(m station.Model) bool { return m.ReaderFault != "" })
	if m.Phase != station.Idle {
		t.Fatalf("reader fault in phase %s, want idle", m.Phase)
	}
	if v := station.ViewOf(m, time.Now(), ""); v.Title != station.ReaderProblem {
		t.Fatalf("screen title %q, want %q", v.Title, station.ReaderProblem)
	}
	if !strings.Contains(m.ReaderFault, "not acknowledged") {
		t.Errorf("fault %q does not name the bus error", m.ReaderFault)
	}

	pi.PN532.Plug()
	uid, _ := hex.DecodeString(aliceBadge)
	pi.PN532.Present(uid)
	h.models.waitFor(t, "the tap after the reader came back", func(m station.Model) bool {
		return m.Phase == station.Lookup || m.Phase == station.List || m.Phase == station.NoJobs
	})
	h.models.waitFor(t, "the fault cleared", func(m station.Model) bool { return m.ReaderFault == "" })
	pi.PN532.Remove()
	h.stop() // the log is complete once the station stopped
	logs := h.logs.String()
	for _, want := range []string{"badge: reader failed; restarting", "badge: reader recovered"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}
