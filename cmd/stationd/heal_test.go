package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"labelstation/devcloud/jobs"
	"labelstation/station"
)

// A job the journal has no room for is refused, acknowledged and reported failed with the
// reason; the station says "Storage full" and the next job that fits still prints.
func TestStorageFullIsShownReportedAndDoesNotClog(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startCloud(t, ctx, cloudOpts{}, io.Discard)
	h := runStation(t, ctx, c, `"board":{"kind":"sim","serial":"E2E-HEAL-1"},
	  "printer":{"url":"tcp://127.0.0.1:9","lang":"zpl","dpi":203},
	  "badge":{"repeat_ms":1},
	  "release":{"mode":"all","screen_seconds":1},
	  "journal":{"max_mb":1}`, flags{Sim: true, Web: "127.0.0.1:0"})
	h.enroll()

	var big strings.Builder
	big.WriteString("name,street,zip,city,tracking\n")
	for i := range 20000 {
		fmt.Fprintf(&big, "Customer %05d,%d Long Street,%05d,Some City,TRK%010d\n", i, i, i, i)
	}
	token := userToken(t, c, "alice")
	j := submit(t, c, token, "Too big", "shipping", big.String())
	h.tap(aliceBadge)
	m := h.models.waitFor(t, "storage full", func(m station.Model) bool { return m.StorageFull })
	if m.Phase != station.Failed || !strings.Contains(m.Message, "Storage full") {
		t.Errorf("model %s %q, want the failed screen saying storage full", m.Phase, m.Message)
	}
	got, err := c.Jobs.Store().WaitFor(ctx, j.ID, func(j jobs.Job) bool { return j.State == jobs.StateFailed })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got.Error, "storage full") {
		t.Errorf("cloud error %q does not say storage full", got.Error)
	}
	if n := len(h.app.SimPrinter.Labels()); n != 0 {
		t.Fatalf("printed %d labels of a refused job", n)
	}

	h.models.waitFor(t, "idle", phase(station.Idle))
	small := submit(t, c, token, "Fits", "shipping", threeRecords)
	h.tapAndPrint(aliceBadge, small, 3)
	h.models.waitFor(t, "storage usable again", func(m station.Model) bool { return !m.StorageFull })
}

// The in-memory broker restarts right after the last label reached the printer — around the
// final status and its acknowledgement, which the restart may swallow. The cloud still ends
// with the job printed: the station resends from its journal until the job service acks.
func TestBrokerRestartAroundFinalStatus(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startCloud(t, ctx, cloudOpts{}, io.Discard)
	h := startStation(t, ctx, c, "E2E-HEAL-2", flags{})
	h.enroll()
	j := submit(t, c, userToken(t, c, "alice"), "Three parcels", "shipping", threeRecords)
	h.tap(aliceBadge)
	if _, err := h.app.SimPrinter.WaitLabels(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if err := c.StopBroker(); err != nil {
		t.Fatal(err)
	}
	if err := c.StartBroker(); err != nil {
		t.Fatal(err)
	}
	waitJobState(t, ctx, c, j.ID, jobs.StatePrinted)
	if got, _ := c.Jobs.Store().Get(j.ID); got.Printed != 3 {
		t.Fatalf("cloud job %+v", got)
	}
	if n := len(h.app.SimPrinter.Labels()); n != 3 {
		t.Fatalf("printer has %d labels, want 3", n)
	}
}
