package fleet_test

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"labelstation/devcloud/fleet"
	"labelstation/devcloud/jobs/jobstest"
	"labelstation/devcloud/records"
	"labelstation/protocol"
)

// published records what a registry publishes.
type published struct {
	mu  sync.Mutex
	all map[string]protocol.ConfigDesired // by topic, the last retained document
}

func (p *published) publish(topic string, retained bool, v any) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if d, ok := v.(protocol.ConfigDesired); ok && retained {
		p.all[topic] = d
	}
	return nil
}

func newRegistry(t *testing.T, rec records.Store, p *published, now func() time.Time) *fleet.Registry {
	t.Helper()
	r, err := fleet.New(fleet.Options{Publish: p.publish, Records: rec, Now: now,
		DefaultConfig: json.RawMessage(`{"v":1,"badge":{"hash_key":"00"}}`)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func handle(t *testing.T, r *fleet.Registry, station, leaf string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	r.Handle(protocol.StationTopic(station, leaf), b)
}

// A registry opened again on the same store knows what the last one knew: stations with their
// last-known state, desired documents and versions, groups, commands and their results; and it
// republishes the desired documents a broker without retained messages lost.
func TestRegistryKeepsItsStateAcrossRestarts(t *testing.T) {
	jobstest.ForEach(t, func(t *testing.T, k jobstest.Kind) {
		if !k.Durable {
			t.Skip("memory is not durable")
		}
		spec := k.Spec(t)
		clock := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
		now := func() time.Time { return clock }
		st := jobstest.Open(t, spec)
		p := &published{all: map[string]protocol.ConfigDesired{}}
		r := newRegistry(t, st.(records.Store), p, now)

		handle(t, r, "st-a", protocol.LeafPresence, protocol.Presence{V: protocol.Version, Station: "st-a", Online: true, State: "idle", Version: "1.2.3", Boot: 7})
		handle(t, r, "st-a", protocol.LeafTelemetry, protocol.Telemetry{V: protocol.Version, State: "idle", LabelsPrinted: 42})
		handle(t, r, "st-a", protocol.LeafConfigReported, protocol.ConfigReported{V: protocol.Version, Version: 5, Applied: true, Hash: "abc"})
		if _, err := r.SetGroup("st-a", "dock"); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(time.Second)
		sdoc, err := r.SetStationConfig("st-a", json.RawMessage(`{"v":1,"display":{"brightness":50}}`))
		if err != nil {
			t.Fatal(err)
		}
		gdoc, err := r.SetGroupConfig("dock", json.RawMessage(`{"v":1,"release":{"mode":"pick"}}`))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Send("group:dock", "cmd-1", protocol.Commands[0], nil, time.Hour); err != nil {
			t.Fatal(err)
		}
		handle(t, r, "st-a", protocol.LeafCmdResult, protocol.CommandResult{V: protocol.Version, ID: "cmd-1", Status: "done", OK: true})
		before, _ := r.Get("st-a")
		cmdBefore, _ := r.CommandStatus("cmd-1")

		// The restart: the store is closed and opened again, the registry built anew.
		st.Close()
		st = jobstest.Open(t, spec)
		p2 := &published{all: map[string]protocol.ConfigDesired{}}
		r2 := newRegistry(t, st.(records.Store), p2, now)
		after, ok := r2.Get("st-a")
		if !ok {
			t.Fatal("station forgotten")
		}
		b1, _ := json.Marshal(before)
		b2, _ := json.Marshal(after)
		if string(b1) != string(b2) {
			t.Fatalf("station after restart:\n%s\nwant\n%s", b2, b1)
		}
		if after.Desired.Version != sdoc.Version || after.Group != "dock" || after.Telemetry.LabelsPrinted != 42 || after.Reported.Hash != "abc" || after.Boot != 7 {
			t.Fatalf("station after restart: %+v", after)
		}
		if g, ok := r2.GroupDoc("dock"); !ok || g.Version != gdoc.Version || string(g.Config) != string(gdoc.Config) {
			t.Fatalf("group doc after restart: %+v %v", g, ok)
		}
		if m := r2.Members("dock"); len(m) != 1 || m[0] != "st-a" {
			t.Fatalf("members after restart: %v", m)
		}
		cmd, ok := r2.CommandStatus("cmd-1")
		if !ok || len(cmd.Results) != 1 || !cmd.Results["st-a"].OK || len(cmd.Members) != len(cmdBefore.Members) {
			t.Fatalf("command after restart: %+v", cmd)
		}
		// Versions keep growing from the stored ones, whatever the clock says.
		clock = clock.Add(-time.Hour)
		next, err := r2.SetStationConfig("st-a", json.RawMessage(`{"v":1}`))
		if err != nil || next.Version <= sdoc.Version {
			t.Fatalf("next version %d after %d: %v", next.Version, sdoc.Version, err)
		}

		if err := r2.Republish(); err != nil {
			t.Fatal(err)
		}
		if d := p2.all[protocol.GroupTopic("dock", protocol.LeafConfigDesired)]; d.Version != gdoc.Version {
			t.Fatalf("group document republished at version %d, want %d", d.Version, gdoc.Version)
		}
		if d := p2.all[protocol.StationTopic("st-a", protocol.LeafConfigDesired)]; d.Version != next.Version || d.Group != "dock" {
			t.Fatalf("station document republished: %+v", d)
		}
	})
}
