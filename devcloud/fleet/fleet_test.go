package fleet_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"image"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"labelstation/devcloud"
	"labelstation/devcloud/fleet"
	"labelstation/devcloud/seed"
	"labelstation/display"
	"labelstation/drivers/badge"
	"labelstation/drivers/printer"
	"labelstation/protocol"
	"labelstation/provisioning"
	"labelstation/station"
	"labelstation/station/cloud"
	"labelstation/station/config"
	"labelstation/station/journal"
)

func startCloud(t *testing.T) *devcloud.Cloud {
	t.Helper()
	sd, err := seed.Load(filepath.Join("..", "..", "examples", "devcloud-seed.json"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := devcloud.Start(ctx, devcloud.Options{HTTP: h, MQTT: m, Seed: sd, FleetAdmins: []string{"alice"}, PollEvery: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// enroll runs the device flow for one station, approved by alice; it returns the token.
func enroll(t *testing.T, c *devcloud.Cloud, serial string) string {
	t.Helper()
	resp, err := http.PostForm(c.Auth.DeviceAuthURL(), url.Values{"client_id": {"station"}, "scope": {"printing offline_access"}, "serial_number": {serial}})
	if err != nil {
		t.Fatal(err)
	}
	var da struct {
		DeviceCode string `json:"device_code"`
		UserCode   string `json:"user_code"`
	}
	json.NewDecoder(resp.Body).Decode(&da)
	resp.Body.Close()
	if err := c.Auth.Approve(da.UserCode, "alice"); err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	// The approval is in before the first poll; a poll sooner than the interval is told to
	// slow down (RFC 8628 §3.5), so poll at the interval.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for range 10 {
		<-tick.C
		resp, err = http.PostForm(c.Auth.TokenURL(), url.Values{"client_id": {"station"}, "grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {da.DeviceCode}})
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&tok)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if tok.AccessToken != "" {
			break
		}
	}
	if tok.AccessToken == "" {
		t.Fatalf("device token: %s", tok.Error)
	}
	return tok.AccessToken
}

// staticEnroller is an enrolled station's grant: one access token.
type staticEnroller struct{ id, tok string }

func (e staticEnroller) Enrolled() bool                                        { return true }
func (e staticEnroller) Enroll(context.Context, func(provisioning.Code)) error { return nil }
func (e staticEnroller) Token(context.Context) (*oauth2.Token, error) {
	return &oauth2.Token{AccessToken: e.tok}, nil
}
func (e staticEnroller) Invalidate()       {}
func (e staticEnroller) StationID() string { return e.id }
func (e staticEnroller) Reset() error      { return nil }
func (e staticEnroller) RetryNow()         {}

// paper is the printer hardware: it takes every label.
type paper struct {
	mu sync.Mutex
	n  int
}

func (p *paper) Send(context.Context, []byte) error { p.mu.Lock(); p.n++; p.mu.Unlock(); return nil }
func (p *paper) Status(context.Context) (printer.Status, error) {
	return printer.Status{}, nil
}

// runStation runs the real station core with sim hardware against the cloud's broker.
func runStation(t *testing.T, c *devcloud.Cloud, dir, serial string) (string, *paper, func()) {
	t.Helper()
	tok := enroll(t, c, serial)
	p, err := c.Auth.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(filepath.Join(t.TempDir(), "journal.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.Station.StateDir = dir
	cfg.Cloud.Issuer, cfg.Cloud.Broker, cfg.Printer.URL = c.URL, c.BrokerURL, "tcp://127.0.0.1:9"
	pr := &paper{}
	s, err := station.New(station.Options{
		Config: cfg, Panel: display.None(image.Pt(128, 64)), Printer: pr, Journal: j,
		Enroller:  staticEnroller{id: p.StationID, tok: tok},
		DialCloud: func(o cloud.Options) (station.Cloud, error) { return cloud.New(o) },
		Badges:    make(chan badge.Badge), Version: "test", Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	stop := func() { cancel(); <-done; j.Close() }
	t.Cleanup(stop)
	return p.StationID, pr, stop
}

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
	c := startCloud(t)
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

	id, pr, _ := runStation(t, c, t.TempDir(), "FLEET-1")
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
	pr.mu.Lock()
	if pr.n != 1 {
		t.Errorf("%d labels, want the self-test label", pr.n)
	}
	pr.mu.Unlock()

	// A will of an older boot, published late, does not mark the station offline.
	boot := get().Boot
	if boot == 0 {
		t.Fatal("no boot counter in presence")
	}
	late := protocol.Presence{V: 1, Station: id, Online: false, Boot: boot - 1}
	if err := c.Jobs.Publish(protocol.StationTopic(id, protocol.LeafPresence), false, late); err != nil {
		t.Fatal(err)
	}
	// A marker after it: the registry sees messages of one topic in order.
	if err := c.Jobs.Publish(protocol.StationTopic(id, protocol.LeafPresence), false, protocol.Presence{V: 1, Station: id, Online: true, State: "marker", Boot: boot}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, c, ev, "marker", func() bool { return get().State == "marker" })
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
	c := startCloud(t)
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

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}
