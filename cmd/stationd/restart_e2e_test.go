package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"labelstation/devcloud"
	"labelstation/devcloud/jobs"
	"labelstation/devcloud/jobs/jobstest"
	"labelstation/devcloud/seed"
	"labelstation/drivers/printer"
	"labelstation/station"
)

// startCloudAt starts devcloud on the given addresses ("127.0.0.1:0" for any) with its state
// in st, as cmd/devcloud does with --store.
func startCloudAt(t *testing.T, ctx context.Context, httpAddr, mqttAddr string, st jobs.Store, logw *bytes.Buffer) *devcloud.Cloud {
	t.Helper()
	sd, err := seed.Load(filepath.Join("..", "..", "examples", "devcloud-seed.json"))
	if err != nil {
		t.Fatal(err)
	}
	httpLn, err := net.Listen("tcp", httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	mqttLn, err := net.Listen("tcp", mqttAddr)
	if err != nil {
		httpLn.Close()
		t.Fatal(err)
	}
	c, err := devcloud.Start(ctx, devcloud.Options{HTTP: httpLn, MQTT: mqttLn, Seed: sd, Store: st, PollEvery: time.Second,
		Logger: testLogger(lockedWriter(logw))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// All of devcloud — web side, authorization server, job service, fleet registry and the
// embedded broker — stops while a job it released is printing, and starts again on the same
// store. Nothing is lost: the station reconnects by itself with the grant it has (no pairing
// again), its journaled statuses are acknowledged, the job ends printed, another user's held
// job, the badge key, the fleet's documents and the group membership are all still there.
func TestCloudRestartMidReleaseLosesNothing(t *testing.T) {
	jobstest.ForEach(t, func(t *testing.T, k jobstest.Kind) {
		if !k.Durable {
			t.Skip("memory is not durable")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		spec := k.Spec(t)
		var logs bytes.Buffer
		defer func() {
			if t.Failed() {
				t.Logf("cloud log:\n%s", logs.String())
			}
		}()
		st := jobstest.Open(t, spec)
		c := startCloudAt(t, ctx, "127.0.0.1:0", "127.0.0.1:0", st, &logs)
		h := startStation(t, ctx, c, "E2E-RESTART-"+k.Name, flags{})
		h.enroll()
		stationID, ok := c.Auth.StationBySerial("E2E-RESTART-" + k.Name)
		if !ok {
			t.Fatal("no station id for the serial")
		}

		// Fleet state: a group with its own document, the station in it, a station document.
		if _, err := c.Fleet.SetGroupConfig("dock", json.RawMessage(`{"v":1}`)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Fleet.SetGroup(stationID, "dock"); err != nil {
			t.Fatal(err)
		}
		before, _ := c.Fleet.Get(stationID)
		groupBefore, _ := c.Fleet.GroupDoc("dock")

		token := userToken(t, c, "alice")
		released := submit(t, c, token, "Three parcels", "shipping", threeRecords)
		held := submit(t, c, userToken(t, c, "bob"), "One parcel", "shipping",
			"name,street,zip,city,tracking\nBob,1 Road,1,Town,TRK0000000009\n")

		// The paper runs out after the first label: the job is released and half printed when
		// the cloud goes away, the rest waits in the printer until the cloud is back.
		h.app.SimPrinter.PaperOutAfter(1)
		h.tap(aliceBadge)
		if _, err := h.app.SimPrinter.WaitLabels(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Jobs.Store().WaitFor(ctx, released.ID, func(j jobs.Job) bool { return j.State != jobs.StateHeld }); err != nil {
			t.Fatal(err)
		}

		if got, _ := c.Jobs.Store().Get(released.ID); got.State == jobs.StatePrinted || got.Station != stationID {
			t.Fatalf("job before the restart: %+v, want released to %s and not printed", got, stationID)
		}
		httpAddr, mqttAddr := c.URL[len("http://"):], c.BrokerURL[len("tcp://"):]
		if err := c.Close(); err != nil {
			t.Fatalf("stop cloud: %v", err)
		}
		if err := st.Close(); err != nil {
			t.Fatalf("close store: %v", err)
		}
		h.models.waitFor(t, "the station offline", func(m station.Model) bool { return !m.Online })
		h.models.mu.Lock()
		restartAt := len(h.models.all)
		h.models.mu.Unlock()

		st = jobstest.Open(t, spec)
		c = startCloudAt(t, ctx, httpAddr, mqttAddr, st, &logs)
		h.cloud = c
		h.app.SimPrinter.SetStatus(printer.Status{})

		if _, err := h.app.SimPrinter.WaitLabels(ctx, 3); err != nil {
			t.Fatal(err)
		}
		waitJobState(t, ctx, c, released.ID, jobs.StatePrinted)
		if got, _ := c.Jobs.Store().Get(released.ID); got.Printed != 3 || got.Station != stationID {
			t.Fatalf("released job after the restart: %+v", got)
		}
		if got, err := c.Jobs.Store().Get(held.ID); err != nil || got.State != jobs.StateHeld {
			t.Fatalf("held job after the restart: %+v %v", got, err)
		}
		if id, ok := c.Auth.StationBySerial("E2E-RESTART-" + k.Name); !ok || id != stationID {
			t.Fatalf("station id after the restart: %q %v, want %q", id, ok, stationID)
		}
		after, ok := c.Fleet.Get(stationID)
		if !ok || after.Group != "dock" || after.Desired == nil || after.Desired.Version != before.Desired.Version {
			t.Fatalf("fleet record after the restart: %+v, before %+v", after, before)
		}
		if g, ok := c.Fleet.GroupDoc("dock"); !ok || g.Version != groupBefore.Version {
			t.Fatalf("group document after the restart: %+v %v, want version %d", g, ok, groupBefore.Version)
		}
		if g := c.GroupsOf(stationID); !slices.Equal(g, []string{"dock"}) {
			t.Fatalf("broker groups after the restart: %v", g)
		}

		// Bob's badge still opens his held job: the badge key and the release path survived.
		h.models.waitFor(t, "idle", phase(station.Idle))
		h.tapAndPrint(bobBadge, held, 4)

		h.models.mu.Lock()
		since := slices.Clone(h.models.all[restartAt:])
		h.models.mu.Unlock()
		for _, m := range since {
			if m.Phase == station.Enrolling {
				t.Fatalf("the station paired again after the restart: %s %q", m.Phase, m.Message)
			}
		}
		if n := len(h.app.SimPrinter.Labels()); n != 4 {
			t.Fatalf("printer has %d labels, want 4", n)
		}
		t.Log(fmt.Sprintf("station %s came back after the restart with %d screen changes", stationID, len(since)))
	})
}
