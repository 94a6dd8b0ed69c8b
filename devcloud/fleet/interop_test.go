package fleet_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"labelstation/devcloud"
	"labelstation/devcloud/fleet"
	"labelstation/internal/fleettest"
	"labelstation/protocol"
)

// The whole fleet leg, unchanged, on each broker: devcloud's embedded one, Mosquitto 2 with
// deploy/mosquitto's configuration and the ACL file devcloud keeps, and the NATS server's MQTT
// gateway (the last two started by the test on free ports; skipped with a message where not
// installed).
func TestFleetInterop(t *testing.T) {
	for _, b := range []struct {
		name  string
		start func(*testing.T) fleettest.Broker
	}{
		{"embedded", func(*testing.T) fleettest.Broker { return fleettest.Broker{} }},
		{"mosquitto", fleettest.MosquittoCloudACL},
		{"nats", fleettest.NATS},
	} {
		t.Run(b.name, func(t *testing.T) { fleetScenario(t, b.start(t)) })
	}
}

// fleetScenario: desired config per group and per station → reported; commands to a group and
// to a station → results; telemetry; presence with its boot counter, the will when the
// connection is cut, and a late will of an older boot ignored after a restart.
func fleetScenario(t *testing.T, b fleettest.Broker) {
	c := fleettest.StartCloudOn(t, b)
	ev, cancel := c.Fleet.Subscribe()
	defer cancel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "boot"), []byte("5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	px := fleettest.NewProxy(t, c.BrokerURL)
	id, pr, stop := fleettest.RunStationVia(t, c, dir, "INTEROP-1", px.URL())
	get := func() fleet.Station { st, _ := c.Fleet.Get(id); return st }
	waitFor(t, c, ev, "online with the first config applied", func() bool {
		st := get()
		return st.Online && st.Boot == 6 && st.Reported != nil && st.Desired != nil && st.Reported.Applied && st.Reported.Versions.Station == st.Desired.Version
	})

	// Group membership, the group's document, then the station's own on top.
	if b.Grant != nil {
		b.Grant(t, id, "lab")
	}
	doc, err := c.Fleet.SetGroup(id, "lab")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, c, ev, "in group lab", func() bool {
		r := get().Reported
		return r != nil && r.Group == "lab" && r.Versions.Station == doc.Version
	})
	gdoc, err := c.Fleet.SetGroupConfig("lab", json.RawMessage(`{"v":1,"printer":{"dpi":300},"telemetry":{"interval_s":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, c, ev, "the group's config applied", func() bool {
		r := get().Reported
		return r != nil && r.Applied && r.Versions.Group == gdoc.Version
	})
	groupHash := get().Reported.Hash
	var own map[string]any
	json.Unmarshal(c.Fleet.StationDoc(id).Config, &own)
	own["printer"] = map[string]any{"dpi": 600}
	raw, _ := json.Marshal(own)
	sdoc, err := c.Fleet.SetStationConfig(id, raw)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, c, ev, "the station's own config applied", func() bool {
		r := get().Reported
		return r != nil && r.Applied && r.Versions.Station == sdoc.Version && r.Versions.Group == gdoc.Version
	})
	if get().Reported.Hash == groupHash {
		t.Fatal("the station's own dpi did not win over its group's")
	}

	// Commands: one to the group, one to the station.
	for _, cmd := range []struct{ target, id, name string }{{"group:lab", "ping-1", protocol.CmdPing}, {id, "print-1", protocol.CmdTestPrint}} {
		if _, err := c.Fleet.Send(cmd.target, cmd.id, cmd.name, nil, time.Minute); err != nil {
			t.Fatal(err)
		}
		waitFor(t, c, ev, cmd.name+" done", func() bool {
			got, _ := c.Fleet.CommandStatus(cmd.id)
			return got.Results[id].Status == protocol.CmdDone
		})
	}
	if n := pr.Labels(); n != 1 {
		t.Errorf("%d labels, want the self-test label", n)
	}

	// Telemetry every second, naming the boot and the config.
	waitFor(t, c, ev, "telemetry", func() bool {
		st := get()
		return st.Telemetry != nil && st.Telemetry.Boot == 6 && st.Reported != nil && st.Telemetry.ConfigHash == st.Reported.Hash
	})

	// The connection cut: the broker publishes the will; the station comes back by itself.
	px.Cut()
	waitFor(t, c, ev, "offline by the will", func() bool { return !get().Online })
	waitFor(t, c, ev, "back online", func() bool { st := get(); return st.Online && st.Boot == 6 })

	// A restart counts a boot; a late will of the previous boot does not mark it offline.
	stop()
	id2, _, _ := fleettest.RunStationVia(t, c, dir, "INTEROP-1", px.URL())
	if id2 != id {
		t.Fatalf("station id %s after the restart, want %s", id2, id)
	}
	waitFor(t, c, ev, "online after the restart", func() bool {
		st := get()
		return st.Online && st.Boot == 7 && st.Reported != nil && st.Reported.Applied && st.Reported.Versions.Station == sdoc.Version
	})
	late := protocol.Presence{V: protocol.Version, Station: id, Online: false, Boot: 6}
	if err := c.Jobs.Publish(protocol.StationTopic(id, protocol.LeafPresence), false, late); err != nil {
		t.Fatal(err)
	}
	waitForEvent(t, c, ev, "stale_presence", id)
	if !get().Online {
		t.Fatal("a late will of an older boot marked the station offline")
	}
}

func waitForEvent(t *testing.T, c *devcloud.Cloud, ev <-chan fleet.Event, kind, station string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case e := <-ev:
			if e.Kind == kind && e.Station == station {
				return
			}
		case <-deadline:
			t.Fatalf("no %s event for %s: %s", kind, station, dump(c))
		}
	}
}
