package fleet_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"labelstation/devcloud/fleet"
	"labelstation/internal/fleettest"
	"labelstation/protocol"
)

// On Mosquitto, group membership set through the fleet API reaches the broker through the ACL
// file devcloud keeps: the station reads its new group's config with no hand-written rule, and
// once it left the group the broker no longer lets it read the group's topics.
func TestMosquittoACLFollowsMembership(t *testing.T) {
	b := fleettest.MosquittoCloudACL(t)
	c := fleettest.StartCloudOn(t, b)
	ev, cancel := c.Fleet.Subscribe()
	defer cancel()
	admin, err := c.UserToken(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	api := client{t: t, base: c.URL, token: admin}
	id, _, stop := fleettest.RunStationVia(t, c, t.TempDir(), "ACL-1", b.URL)
	get := func() fleet.Station { st, _ := c.Fleet.Get(id); return st }
	waitFor(t, c, ev, "online with the first config applied", func() bool {
		st := get()
		return st.Online && st.Reported != nil && st.Desired != nil && st.Reported.Applied && st.Reported.Versions.Station == st.Desired.Version
	})
	section := "\nuser " + id + "\ntopic read lrs/v1/grp/lab/config/desired\ntopic read lrs/v1/grp/lab/cmd\n"
	if acl := readACL(t, b.ACLFile); strings.Contains(acl, "user "+id) || !strings.Contains(acl, "pattern read lrs/v1/st/%u/#") {
		t.Fatalf("ACL file at start, want the deployed rules and no section for %s:\n%s", id, acl)
	}

	// A name that could widen a rule is refused at the API, naming the field's problem.
	if code, body := api.do("PUT", "/v1/fleet/stations/"+id+"/group", map[string]string{"group": "lab/#"}); code != http.StatusBadRequest || !strings.Contains(string(body), `group \"lab/#\"`) {
		t.Fatalf("bad group name: %d %s", code, body)
	}

	// Into the group, then the group's config.
	if code, body := api.do("PUT", "/v1/fleet/stations/"+id+"/group", map[string]string{"group": "lab"}); code != http.StatusOK {
		t.Fatalf("put group: %d %s", code, body)
	}
	if acl := readACL(t, b.ACLFile); !strings.Contains(acl, section) {
		t.Fatalf("ACL file after joining lab, want\n%s\nin:\n%s", section, acl)
	}
	code, body := api.do("PUT", "/v1/fleet/groups/lab/config", json.RawMessage(`{"v":1,"printer":{"dpi":300}}`))
	if code != http.StatusOK {
		t.Fatalf("put group config: %d %s", code, body)
	}
	var gdoc fleet.Doc
	if err := json.Unmarshal(body, &gdoc); err != nil || gdoc.Version == 0 {
		t.Fatalf("group config answer %s: %v", body, err)
	}
	waitFor(t, c, ev, "the group's config applied", func() bool {
		r := get().Reported
		return r != nil && r.Applied && r.Group == "lab" && r.Versions.Group == gdoc.Version
	})

	// Out of the group: the section goes, and the broker refuses the group's topics.
	if code, body := api.do("PUT", "/v1/fleet/stations/"+id+"/group", map[string]string{"group": ""}); code != http.StatusOK {
		t.Fatalf("leave group: %d %s", code, body)
	}
	if acl := readACL(t, b.ACLFile); strings.Contains(acl, "user "+id) {
		t.Fatalf("ACL file after leaving lab still has a section for %s:\n%s", id, acl)
	}
	waitFor(t, c, ev, "out of the group", func() bool { r := get().Reported; return r != nil && r.Applied && r.Group == "" })
	stop()

	// Logged in as the station, subscribed to the group's topics and to its own: neither the
	// retained group config nor a new one arrives before a marker sent after them on its own topic.
	got := make(chan string, 16)
	mc := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL).SetClientID(id).SetUsername(id).SetPassword("x").
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { got <- m.Topic() }))
	if tok := mc.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect as %s: %v", id, tok.Error())
	}
	defer mc.Disconnect(0)
	marker := protocol.StationTopic(id, "acl-marker")
	filters := map[string]byte{marker: 1}
	for _, f := range protocol.GroupTopics("lab") {
		filters[f] = 1
	}
	if tok := mc.SubscribeMultiple(filters, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	if code, body := api.do("PUT", "/v1/fleet/groups/lab/config", json.RawMessage(`{"v":1,"printer":{"dpi":600}}`)); code != http.StatusOK {
		t.Fatalf("second group config: %d %s", code, body)
	}
	if err := c.Jobs.Publish(marker, false, map[string]int{"v": 1}); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case topic := <-got:
			if topic == marker {
				return
			}
			t.Fatalf("a station no longer in group lab read %s", topic)
		case <-time.After(30 * time.Second):
			t.Fatal("the marker on the station's own topic never arrived")
		}
	}
}

func readACL(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A station the seed puts in a group joins it at its first presence, before Mosquitto could
// reload the ACL; it still gets the group's config, published again after the reload.
func TestMosquittoACLSeedGroup(t *testing.T) {
	b := fleettest.MosquittoCloudACL(t)
	c := fleettest.StartCloudOn(t, b)
	ev, cancel := c.Fleet.Subscribe()
	defer cancel()
	gdoc, err := c.Fleet.SetGroupConfig("warehouse", json.RawMessage(`{"v":1,"printer":{"dpi":300}}`))
	if err != nil {
		t.Fatal(err)
	}
	id, _, _ := fleettest.RunStationVia(t, c, t.TempDir(), "SIM-0001", b.URL)
	get := func() fleet.Station { st, _ := c.Fleet.Get(id); return st }
	waitFor(t, c, ev, "the seed group's config applied", func() bool {
		r := get().Reported
		return r != nil && r.Applied && r.Group == "warehouse" && r.Versions.Group == gdoc.Version
	})
	if acl := readACL(t, b.ACLFile); !strings.Contains(acl, "\nuser "+id+"\ntopic read lrs/v1/grp/warehouse/config/desired\n") {
		t.Fatalf("no section for %s in:\n%s", id, acl)
	}
}
