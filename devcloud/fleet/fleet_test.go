package fleet_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"labelstation/devcloud"
	"labelstation/devcloud/fleet"
	"labelstation/internal/fleettest"
	"labelstation/protocol"
)

type client struct {
	t     *testing.T
	base  string
	token string
}

func (c client) do(method, path string, body any) (int, []byte) {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, r)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// waitFor reads the registry's events until cond holds on the station's record.
func waitFor(t *testing.T, c *devcloud.Cloud, ev <-chan fleet.Event, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for !cond() {
		select {
		case <-ev:
		case <-deadline:
			t.Fatalf("timed out waiting for %s: %s", what, dump(c))
		}
	}
}

// The fleet leg end to end: a real station behind the embedded broker follows its group's and
// its own config, refuses a bad one with the path, runs a group command, and a late will of an
// older boot does not mark it offline.
func TestFleetEndToEnd(t *testing.T) {
	c := fleettest.StartCloud(t)
	ev, cancel := c.Fleet.Subscribe()
	defer cancel()
	admin, err := c.UserToken(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	api := client{t: t, base: c.URL, token: admin}

	bob, _ := c.UserToken(context.Background(), "bob")
	if code, body := (client{t: t, base: c.URL, token: bob}).do("GET", "/v1/fleet/stations", nil); code != http.StatusUnauthorized || !strings.Contains(string(body), `"code":"unauthorized"`) {
		t.Fatalf("a user who is not a fleet manager: %d %s", code, body)
	}

	dir := t.TempDir()
	// The station has started five times before.
	if err := os.WriteFile(filepath.Join(dir, "boot"), []byte("5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	id, pr, _ := fleettest.RunStation(t, c, dir, "FLEET-1")
	get := func() fleet.Station { st, _ := c.Fleet.Get(id); return st }
	waitFor(t, c, ev, "first config applied", func() bool {
		st := get()
		return st.Online && st.Reported != nil && st.Desired != nil && st.Reported.Versions.Station == st.Desired.Version
	})

	// Group membership, then the group's config.
	if code, body := api.do("PUT", "/v1/fleet/stations/"+id+"/group", map[string]string{"group": "lab"}); code != 200 {
		t.Fatalf("set group: %d %s", code, body)
	}
	code, body := api.do("PUT", "/v1/fleet/groups/lab/config", map[string]any{"v": 1, "printer": map[string]any{"dpi": 300}, "release": map[string]any{"mode": "confirm"}})
	if code != 200 {
		t.Fatalf("group config: %d %s", code, body)
	}
	var gdoc fleet.Doc
	json.Unmarshal(body, &gdoc)
	waitFor(t, c, ev, "group config applied", func() bool {
		st := get()
		return st.Reported != nil && st.Reported.Group == "lab" && st.Reported.Versions.Group == gdoc.Version
	})

	// A merge patch of the station's own document keeps the badge key it already had.
	code, body = api.do("PATCH", "/v1/fleet/stations/"+id+"/config", map[string]any{"release": map[string]any{"mode": "all"}})
	if code != 200 {
		t.Fatalf("patch: %d %s", code, body)
	}
	var sdoc fleet.Doc
	json.Unmarshal(body, &sdoc)
	if !strings.Contains(string(sdoc.Config), "hash_key") || !strings.Contains(string(sdoc.Config), `"mode":"all"`) {
		t.Fatalf("merged document %s", sdoc.Config)
	}
	waitFor(t, c, ev, "patch applied", func() bool {
		st := get()
		return st.Reported != nil && st.Reported.Applied && st.Reported.Versions.Station == sdoc.Version
	})
	good := get().Reported.Hash

	// A bad value is refused with its path; the station keeps running what it had.
	code, body = api.do("PATCH", "/v1/fleet/stations/"+id+"/config", map[string]any{"display": map[string]any{"rotate": 45}})
	if code != 200 {
		t.Fatalf("bad patch: %d %s", code, body)
	}
	json.Unmarshal(body, &sdoc)
	waitFor(t, c, ev, "refusal", func() bool {
		r := get().Reported
		return r != nil && r.Version == sdoc.Version && !r.Applied
	})
	if r := get().Reported; r.Path != "display.rotate" || r.Hash != good {
		t.Fatalf("refusal report %+v", r)
	}

	// A command to the group reaches the member.
	code, body = api.do("POST", "/v1/fleet/groups/lab/commands", map[string]any{"name": "test_print"})
	if code != http.StatusAccepted {
		t.Fatalf("command: %d %s", code, body)
	}
	var cmd fleet.Command
	json.Unmarshal(body, &cmd)
	waitFor(t, c, ev, "command done", func() bool {
		got, _ := c.Fleet.CommandStatus(cmd.ID)
		return got.Results[id].Status == protocol.CmdDone
	})
	if code, body := api.do("GET", "/v1/fleet/commands/"+cmd.ID, nil); code != 200 || !strings.Contains(string(body), `"status":"done"`) {
		t.Fatalf("command result: %d %s", code, body)
	}
	if n := pr.Labels(); n != 1 {
		t.Errorf("%d labels, want the self-test label", n)
	}

	// A will of an older boot, published late, does not mark the station offline.
	boot := get().Boot
	if boot != 6 {
		t.Fatalf("boot %d in presence, want 6", boot)
	}
	late := protocol.Presence{V: protocol.Version, Station: id, Online: false, Boot: boot - 1}
	if err := c.Jobs.Publish(protocol.StationTopic(id, protocol.LeafPresence), false, late); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(30 * time.Second)
wait:
	for {
		select {
		case e := <-ev:
			if e.Kind == "stale_presence" && e.Station == id {
				break wait
			}
		case <-deadline:
			t.Fatal("the late will was not seen")
		}
	}
	if !get().Online {
		t.Fatal("a late will of an older boot marked the station offline")
	}

	// The list shows it.
	code, body = api.do("GET", "/v1/fleet/stations", nil)
	if code != 200 || !strings.Contains(string(body), `"group":"lab"`) || !strings.Contains(string(body), `"online":true`) {
		t.Fatalf("list: %d %s", code, body)
	}
}

// The event stream delivers registry events as server-sent events.
func TestFleetEventStream(t *testing.T) {
	c := fleettest.StartCloud(t)
	admin, err := c.UserToken(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", c.URL+"/v1/fleet/events", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	api := client{t: t, base: c.URL, token: admin}
	if code, body := api.do("PUT", "/v1/fleet/groups/lab/config", map[string]any{"printer": map[string]any{"dpi": 600}}); code != 200 {
		t.Fatalf("group config: %d %s", code, body)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "data: ") {
			if !strings.Contains(line, `"kind":"desired"`) || !strings.Contains(line, `"group":"lab"`) {
				t.Fatalf("event %s", line)
			}
			return
		}
	}
	t.Fatalf("stream ended: %v", sc.Err())
}

// A caller over its rate gets 429 with Retry-After and the error body.
func TestFleetRateLimit(t *testing.T) {
	reg, err := fleet.New(fleet.Options{Publish: func(string, bool, any) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	api, err := fleet.NewAPI(reg, fleet.APIOptions{Rate: 0.001, Burst: 2, Authorize: func(*http.Request, string) (string, error) { return "m", nil }})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: api.Handler()}
	go srv.Serve(ln)
	defer srv.Close()
	cl := client{t: t, base: "http://" + ln.Addr().String(), token: "x"}
	for i := range 2 {
		if code, body := cl.do("GET", "/v1/fleet/stations", nil); code != 200 {
			t.Fatalf("request %d: %d %s", i, code, body)
		}
	}
	req, _ := http.NewRequest("GET", cl.base+"/v1/fleet/stations", nil)
	req.Header.Set("Authorization", "Bearer x")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct{ Code, Message, ID string }
	json.NewDecoder(resp.Body).Decode(&e)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || e.Code != "rate_limited" || e.ID == "" {
		t.Fatalf("over the rate: %d retry-after %q %+v", resp.StatusCode, resp.Header.Get("Retry-After"), e)
	}
}

func TestMergePatch(t *testing.T) {
	// RFC 7396 Appendix A, a few of its cases.
	for _, tc := range []struct{ target, patch, want string }{
		{`{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"b"}`, `{"b":"c"}`, `{"a":"b","b":"c"}`},
		{`{"a":"b"}`, `{"a":null}`, `{}`},
		{`{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`, `{"a":{"b":"d"}}`},
		{`{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`},
		{`{"e":null}`, `{"a":1}`, `{"a":1,"e":null}`},
		{`[1,2]`, `{"a":"b","c":null}`, `{"a":"b"}`},
	} {
		var target, patch any
		json.Unmarshal([]byte(tc.target), &target)
		json.Unmarshal([]byte(tc.patch), &patch)
		got, _ := json.Marshal(fleet.MergePatch(target, patch))
		if string(got) != tc.want {
			t.Errorf("MergePatch(%s, %s) = %s, want %s", tc.target, tc.patch, got, tc.want)
		}
	}
}

func dump(c *devcloud.Cloud) string {
	b, _ := json.Marshal(c.Fleet.Stations())
	return string(b)
}
