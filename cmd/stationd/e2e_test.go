package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"labelstation/board/fakepi"
	"labelstation/devcloud"
	"labelstation/devcloud/jobs"
	"labelstation/devcloud/seed"
	"labelstation/drivers/printer"
	"labelstation/drivers/printer/simprinter"
	"labelstation/provisioning"
	"labelstation/station"
)

// The end-to-end tests run devcloud (authorization server, embedded broker, job API) and a
// simulated station in this process, over real loopback sockets.

const (
	aliceBadge = "04A1B2C3D4E580" // examples/devcloud-seed.json
	bobBadge   = "0E5F1C2A"
)

// models records every model the station's state machine produced, so a test waits for a state
// (in order) instead of sleeping.
type models struct {
	mu      sync.Mutex
	all     []station.Model
	changed chan struct{}
	cursor  int
}

func newModels() *models { return &models{changed: make(chan struct{})} }

func (w *models) observe(m station.Model) {
	w.mu.Lock()
	w.all = append(w.all, m)
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
}

// waitFor returns the first model after the previous match that satisfies pred.
func (w *models) waitFor(t *testing.T, what string, pred func(station.Model) bool) station.Model {
	t.Helper()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		for ; w.cursor < len(w.all); w.cursor++ {
			if m := w.all[w.cursor]; pred(m) {
				w.cursor++
				w.mu.Unlock()
				return m
			}
		}
		ch := w.changed
		last := station.Model{}
		if n := len(w.all); n > 0 {
			last = w.all[n-1]
		}
		w.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s; last state %s (%q)", what, last.Phase, last.Message)
		}
	}
}

func phase(p station.Phase) func(station.Model) bool {
	return func(m station.Model) bool { return m.Phase == p }
}

type harness struct {
	t      *testing.T
	ctx    context.Context
	cloud  *devcloud.Cloud
	app    *appliance
	models *models
	logs   *bytes.Buffer
	stop   func() // stops the station and closes its hardware; idempotent
}

type cloudOpts struct {
	codeTTL, accessTTL time.Duration
	broker             string // an external broker instead of the embedded one
}

func startCloud(t *testing.T, ctx context.Context, o cloudOpts, logw io.Writer) *devcloud.Cloud {
	t.Helper()
	sd, err := seed.Load(filepath.Join("..", "..", "examples", "devcloud-seed.json"))
	if err != nil {
		t.Fatal(err)
	}
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opt := devcloud.Options{HTTP: httpLn, Broker: o.broker, ServiceClientID: fmt.Sprintf("devcloud-%d", time.Now().UnixNano())}
	if o.broker == "" {
		if opt.MQTT, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	c, err := devcloud.Start(ctx, devcloud.Options{
		HTTP: opt.HTTP, MQTT: opt.MQTT, Broker: opt.Broker, ServiceClientID: opt.ServiceClientID, Seed: sd, PollEvery: time.Second, DeviceCodeTTL: o.codeTTL, AccessTTL: o.accessTTL,
		Logger: testLogger(logw),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// startStation writes a station config for the cloud and runs stationd --sim against it.
func startStation(t *testing.T, ctx context.Context, c *devcloud.Cloud, serial string, f flags) *harness {
	t.Helper()
	f.Sim, f.Web = true, "127.0.0.1:0"
	return runStation(t, ctx, c, fmt.Sprintf(`"board":{"kind":"sim","serial":%q},
	  "printer":{"url":"tcp://127.0.0.1:9","lang":"zpl","dpi":203},
	  "badge":{"repeat_ms":1},
	  "release":{"mode":"all","screen_seconds":1}`, serial), f)
}

// runStation writes a station config for the cloud — sections is the JSON after the station and
// cloud sections — and runs stationd with it until the test ends or h.stop.
func runStation(t *testing.T, ctx context.Context, c *devcloud.Cloud, sections string, f flags) *harness {
	t.Helper()
	return runStationCloud(t, ctx, c, fmt.Sprintf(`{"issuer":%q,"broker":%q}`, c.URL, c.BrokerURL), sections, f)
}

// runStationCloud is runStation with the config's cloud section given.
func runStationCloud(t *testing.T, ctx context.Context, c *devcloud.Cloud, cloudSection, sections string, f flags) *harness {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`{"v":1,"station":{"state_dir":%q},"cloud":%s,%s}`, filepath.Join(dir, "state"), cloudSection, sections)
	return runStationConfig(t, ctx, c, cfg, f)
}

// runStationConfig runs stationd with the config document cfg until the test ends or h.stop.
func runStationConfig(t *testing.T, ctx context.Context, c *devcloud.Cloud, cfg string, f flags) *harness {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "stationd.json")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, ctx: ctx, cloud: c, models: newModels(), logs: &bytes.Buffer{}}
	f.Config = path
	f.observe = h.models.observe
	a, err := build(ctx, f, lockedWriter(h.logs))
	if err != nil {
		t.Fatal(err)
	}
	h.app = a
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); a.Station.Run(sctx) }()
	h.stop = sync.OnceFunc(func() {
		cancel()
		<-done
		a.Close()
	})
	t.Cleanup(func() {
		h.stop()
		if t.Failed() {
			t.Logf("station log:\n%s", h.logs.String())
		}
	})
	return h
}

// pairingCode waits for the next ENROLLING screen with a code.
func (h *harness) pairingCode() station.Model {
	h.t.Helper()
	return h.models.waitFor(h.t, "a pairing code", func(m station.Model) bool { return m.Phase == station.Enrolling && m.Code.UserCode != "" })
}

// tapAndPrint taps badge and waits until the printer holds labels labels and the cloud has
// recorded job j as printed.
func (h *harness) tapAndPrint(badge string, j jobs.Job, labels int) {
	h.t.Helper()
	h.tap(badge)
	if _, err := h.app.SimPrinter.WaitLabels(h.ctx, labels); err != nil {
		h.t.Fatal(err)
	}
	waitJobState(h.t, h.ctx, h.cloud, j.ID, jobs.StatePrinted)
}

// enroll approves the pairing code the station shows, as alice.
func (h *harness) enroll() {
	h.t.Helper()
	m := h.pairingCode()
	if err := h.cloud.Auth.Approve(m.Code.UserCode, "alice"); err != nil {
		h.t.Fatalf("approve: %v", err)
	}
	h.models.waitFor(h.t, "idle and configured", func(m station.Model) bool { return m.Phase == station.Idle && m.Configured })
}

func (h *harness) tap(uidHex string) {
	h.t.Helper()
	uid, err := hex.DecodeString(uidHex)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.app.Reader.Tap(h.ctx, uid); err != nil {
		h.t.Fatalf("tap: %v", err)
	}
}

// userToken gets an access token for the app registered to user (client_credentials grant).
func userToken(t *testing.T, c *devcloud.Cloud, user string) string {
	t.Helper()
	tok, err := c.UserToken(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// submit posts a job through the Submit Print Job API as a multipart form, like a web app would.
func submit(t *testing.T, c *devcloud.Cloud, token, title, layout, csv string) jobs.Job {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	w.WriteField("title", title)
	w.WriteField("format", layout)
	fw, _ := w.CreateFormFile("data", "records.csv")
	fw.Write([]byte(csv))
	w.Close()
	req, _ := http.NewRequest(http.MethodPost, c.URL+"/v1/jobs", &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit: %s %s", resp.Status, b)
	}
	var j jobs.Job
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusAccepted {
		// Large data is validated in the background: wait until the job is held.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		got, err := c.Jobs.Store().WaitFor(ctx, j.ID, func(j jobs.Job) bool { return j.State != jobs.StateValidating })
		if err != nil || got.State != jobs.StateHeld {
			t.Fatalf("submit: %+v %v", got, err)
		}
		return got
	}
	return j
}

const threeRecords = "name,street,zip,city,tracking\n" +
	"Ada Lovelace,12 Square,4JH,London,TRK0000000001\n" +
	"Grace Hopper,1 Navy Way,20001,Arlington,TRK0000000002\n" +
	"Alan Turing,2 Bletchley Park,MK3,Milton Keynes,TRK0000000003\n"

func TestEndToEndEnrollSubmitTapPrint(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var cloudLog bytes.Buffer
	c := startCloud(t, ctx, cloudOpts{}, lockedWriter(&cloudLog))
	h := startStation(t, ctx, c, "E2E-0001", flags{})
	h.enroll()

	appToken := userToken(t, c, "alice")
	j := submit(t, c, appToken, "Three parcels", "shipping", threeRecords)
	if j.Labels != 3 || j.State != jobs.StateHeld {
		t.Fatalf("submitted job = %+v, want 3 labels held", j)
	}

	h.tap(aliceBadge)
	h.models.waitFor(t, "lookup screen", phase(station.Lookup))
	labels, err := h.app.SimPrinter.WaitLabels(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	h.models.waitFor(t, "done screen", phase(station.Done))
	for i, rec := range []struct{ name, tracking string }{{"Ada Lovelace", "TRK0000000001"}, {"Grace Hopper", "TRK0000000002"}, {"Alan Turing", "TRK0000000003"}} {
		if !strings.Contains(labels[i], rec.name) || !strings.Contains(labels[i], rec.tracking) {
			t.Errorf("label %d does not carry %q and %q:\n%s", i+1, rec.name, rec.tracking, labels[i])
		}
		if !strings.HasPrefix(strings.TrimSpace(labels[i]), "^XA") {
			t.Errorf("label %d is not a ZPL format: %.40q", i+1, labels[i])
		}
	}
	waitJobState(t, ctx, c, j.ID, jobs.StatePrinted)

	// A second tap finds nothing held and prints nothing.
	h.models.waitFor(t, "idle again", phase(station.Idle))
	h.tap(aliceBadge)
	h.models.waitFor(t, "no jobs", phase(station.NoJobs))
	if n := len(h.app.SimPrinter.Labels()); n != 3 {
		t.Fatalf("printer has %d labels after the second tap, want 3", n)
	}

	// No token of this run appears in any log: the station's grant, nor the app's token.
	raw, err := os.ReadFile(filepath.Join(h.app.Config.Station.StateDir, provisioning.TokenFile))
	if err != nil {
		t.Fatal(err)
	}
	var grant struct{ AccessToken, RefreshToken string }
	if err := json.Unmarshal(raw, &struct {
		A *string `json:"access_token"`
		R *string `json:"refresh_token"`
	}{&grant.AccessToken, &grant.RefreshToken}); err != nil || grant.AccessToken == "" || grant.RefreshToken == "" {
		t.Fatalf("token file: %v %+v", err, grant)
	}
	logs := h.logs.String() + cloudLog.String()
	for name, secret := range map[string]string{"access token": grant.AccessToken, "refresh token": grant.RefreshToken, "app token": appToken} {
		if strings.Contains(logs, secret) {
			t.Errorf("the %s appears in the logs", name)
		}
	}
}

// waitJobState waits for the cloud to record a job state reported by the station.
func waitJobState(t *testing.T, ctx context.Context, c *devcloud.Cloud, id, state string) {
	t.Helper()
	if _, err := c.Jobs.Store().WaitFor(ctx, id, func(j jobs.Job) bool { return j.State == state }); err != nil {
		t.Fatal(err)
	}
}

func TestUnknownBadgePrintsNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := startCloud(t, ctx, cloudOpts{}, io.Discard)
	h := startStation(t, ctx, c, "E2E-0002", flags{})
	h.enroll()
	submit(t, c, userToken(t, c, "alice"), "Held", "shipping", threeRecords)
	h.tap("DEADBEEF")
	h.models.waitFor(t, "the code that links the badge", phase(station.LinkCode))
	if n := len(h.app.SimPrinter.Labels()); n != 0 {
		t.Fatalf("printer received %d labels for an unknown badge", n)
	}
	if held, err := c.Jobs.Store().List("alice", jobs.StateHeld); err != nil || len(held) != 1 {
		t.Fatalf("alice's job is no longer held: %+v", held)
	}
}

func TestBrokerDownAtTapThenBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startCloud(t, ctx, cloudOpts{}, io.Discard)
	h := startStation(t, ctx, c, "E2E-0003", flags{})
	h.enroll()

	if err := c.StopBroker(); err != nil {
		t.Fatal(err)
	}
	h.models.waitFor(t, "offline", func(m station.Model) bool { return !m.Online })
	// The job API keeps taking jobs while the broker is down.
	j := submit(t, c, userToken(t, c, "bob"), "During the outage", "shipping", threeRecords)
	h.tap(bobBadge)
	m := h.models.waitFor(t, "offline screen", phase(station.Offline))
	if m.Message == "" {
		t.Error("offline screen has no message")
	}
	if n := len(h.app.SimPrinter.Labels()); n != 0 {
		t.Fatalf("printed %d labels while offline", n)
	}

	if err := c.StartBroker(); err != nil {
		t.Fatal(err)
	}
	h.models.waitFor(t, "idle after reconnect", func(m station.Model) bool { return m.Phase == station.Idle && m.Online })
	// The cloud's job service reconnects with its own backoff; a tap before it is back would
	// (rightly) show "offline" again.
	if err := c.Jobs.WaitOnline(ctx); err != nil {
		t.Fatal(err)
	}
	h.tapAndPrint(bobBadge, j, 3)
}

func TestPairingDeniedShowsNewCode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := startCloud(t, ctx, cloudOpts{}, io.Discard)
	h := startStation(t, ctx, c, "E2E-0004", flags{deniedDelay: 50 * time.Millisecond})
	first := h.pairingCode()
	if err := c.Auth.Deny(first.Code.UserCode); err != nil {
		t.Fatal(err)
	}
	h.models.waitFor(t, "denied screen", phase(station.Denied))
	second := h.models.waitFor(t, "a new pairing code", func(m station.Model) bool {
		return m.Phase == station.Enrolling && m.Code.UserCode != "" && m.Code.UserCode != first.Code.UserCode
	})
	if err := c.Auth.Approve(second.Code.UserCode, "alice"); err != nil {
		t.Fatal(err)
	}
	h.models.waitFor(t, "idle", phase(station.Idle))
}

func TestPairingCodeExpiresNewCodeShown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := startCloud(t, ctx, cloudOpts{codeTTL: 1 * time.Second}, io.Discard)
	h := startStation(t, ctx, c, "E2E-0005", flags{})
	first := h.pairingCode()
	second := h.models.waitFor(t, "a fresh code after expiry", func(m station.Model) bool {
		return m.Phase == station.Enrolling && m.Code.UserCode != "" && m.Code.UserCode != first.Code.UserCode
	})
	if !second.Code.Expires.After(first.Code.Expires) {
		t.Errorf("new code expires %v, not after the old one's %v", second.Code.Expires, first.Code.Expires)
	}
}

// A refresh whose response is lost leaves the station with a rotated-away refresh token; the
// server then refuses it (reuse revokes the family), and the station pairs again by itself and
// gets its old identity back because it sends the same serial.
func TestLostRefreshResponseReenrollsWithSameIdentity(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startCloud(t, ctx, cloudOpts{accessTTL: 4 * time.Second}, io.Discard)
	h := startStation(t, ctx, c, "E2E-0006", flags{tokenCheck: 100 * time.Millisecond})
	h.enroll()
	before := h.app.Prov.StationID()
	if before == "" {
		t.Fatal("no station id after enrollment")
	}
	c.Auth.DropNextRefresh(1)
	m := h.pairingCode()
	if err := c.Auth.Approve(m.Code.UserCode, "alice"); err != nil {
		t.Fatal(err)
	}
	h.models.waitFor(t, "idle again", func(m station.Model) bool { return m.Phase == station.Idle && m.Online })
	if after := h.app.Prov.StationID(); after != before {
		t.Fatalf("station id changed from %s to %s", before, after)
	}
	j := submit(t, c, userToken(t, c, "bob"), "After re-enrollment", "shipping", threeRecords)
	h.tapAndPrint(bobBadge, j, 3)
}

// The enrollment screen's button prints the pairing label: QR, code, URL and serial.
func TestPairingLabelOnButton(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := startCloud(t, ctx, cloudOpts{}, io.Discard)
	h := startStation(t, ctx, c, "E2E-0007", flags{})
	m := h.pairingCode()
	if err := h.app.Board.(interface{ Press(string) error }).Press("A"); err != nil {
		t.Fatal(err)
	}
	labels, err := h.app.SimPrinter.WaitLabels(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{m.Code.UserCode, "E2E-0007", "/device"} {
		if !strings.Contains(labels[0], want) {
			t.Errorf("pairing label lacks %q:\n%s", want, labels[0])
		}
	}
}

// devcloud and the station also work through an external broker: Mosquitto, where it runs.
func TestEndToEndThroughMosquitto(t *testing.T) {
	if c, err := net.DialTimeout("tcp", "127.0.0.1:1883", 500*time.Millisecond); err != nil {
		t.Skip("Mosquitto is not running on 127.0.0.1:1883; to run this test: apt-get install mosquitto && mosquitto -d")
	} else {
		c.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := startCloud(t, ctx, cloudOpts{broker: "tcp://127.0.0.1:1883"}, io.Discard)
	h := startStation(t, ctx, c, fmt.Sprintf("E2E-MOSQ-%d", time.Now().UnixNano()), flags{})
	h.enroll()
	j := submit(t, c, userToken(t, c, "alice"), "Via Mosquitto", "shipping", threeRecords)
	h.tapAndPrint(aliceBadge, j, 3)
}

func TestTakenWebPortNamesTheFlag(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := startCloud(t, ctx, cloudOpts{}, io.Discard)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`{"v":1,"station":{"state_dir":%q},"cloud":{"issuer":%q,"broker":%q},"printer":{"url":"tcp://127.0.0.1:9"}}`,
		filepath.Join(dir, "state"), c.URL, c.BrokerURL)
	path := filepath.Join(dir, "stationd.json")
	os.WriteFile(path, []byte(cfg), 0o600)
	_, err = build(ctx, flags{Config: path, Sim: true, Web: taken.Addr().String()}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--web") {
		t.Fatalf("build with a taken --web port: %v", err)
	}
}

// The same station on a Raspberry Pi assembled from periph's test doubles: buttons on gpiotest
// pins, the SSD1306 panel and the PN532 reader on a fake I²C bus, and a ZPL printer on a
// pseudo-terminal, so every hardware driver path runs byte for byte.
func TestFakePiStation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startCloud(t, ctx, cloudOpts{}, io.Discard)
	printer, err := simprinter.Listen("127.0.0.1:0", simprinter.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer printer.Close()
	tty, err := printer.ServePTY()
	if err != nil {
		t.Fatal(err)
	}
	h := runStation(t, ctx, c, fmt.Sprintf(`"board":{"kind":"fakepi"},
	  "display":{"kind":"ssd1306","width":128,"height":64},
	  "badge":{"reader":"pn532-i2c","repeat_ms":1},
	  "printer":{"url":"serial://%s?baud=115200","lang":"zpl","dpi":203},
	  "release":{"mode":"confirm","screen_seconds":1}`, tty), flags{})
	pi := h.app.Board.(*fakepi.Pi)
	h.enroll()
	if !pi.OLED.On() || blank(pi.OLED.Frame()) {
		t.Fatal("the OLED shows nothing on the idle screen")
	}

	j := submit(t, c, userToken(t, c, "alice"), "Pi labels", "shipping", threeRecords)
	uid, _ := hex.DecodeString(aliceBadge)
	pi.PN532.Present(uid)
	h.models.waitFor(t, "the job list", phase(station.List))
	pi.PN532.Remove()
	// release.mode confirm: the OK button on its GPIO releases the jobs.
	if err := pi.Press("ok"); err != nil {
		t.Fatal(err)
	}
	labels, err := printer.WaitLabels(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(labels[2], "Alan Turing") {
		t.Errorf("third label lacks its record:\n%s", labels[2])
	}
	waitJobState(t, ctx, c, j.ID, jobs.StatePrinted)
	h.models.waitFor(t, "done", phase(station.Done))

	// Shutdown halts the hardware: the panel is switched off.
	h.stop()
	if pi.OLED.On() {
		t.Error("the OLED is still on after shutdown")
	}
}

func blank(img *image.Gray) bool {
	for _, p := range img.Pix {
		if p != img.Pix[0] {
			return false
		}
	}
	return true
}

// A faulted printer: the station refuses to release (the jobs stay held in the cloud), says
// why, and prints once the fault is cleared.
func TestFaultedPrinterRefusesRelease(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := startCloud(t, ctx, cloudOpts{}, io.Discard)
	h := startStation(t, ctx, c, "E2E-0008", flags{})
	h.enroll()
	j := submit(t, c, userToken(t, c, "alice"), "Waits for paper", "shipping", threeRecords)
	h.app.SimPrinter.SetStatus(printer.Status{PaperOut: true})
	h.tap(aliceBadge)
	m := h.models.waitFor(t, "a refusal", phase(station.Failed))
	if !strings.Contains(m.Message, "paper out") {
		t.Errorf("refusal says %q, want the fault", m.Message)
	}
	if got, _ := c.Jobs.Store().Get(j.ID); got.State != jobs.StateHeld {
		t.Fatalf("job is %s, want still held", got.State)
	}
	h.app.SimPrinter.SetStatus(printer.Status{})
	h.models.waitFor(t, "idle", phase(station.Idle))
	h.tapAndPrint(aliceBadge, j, 3)
}

// The printer dropped the connection while the station was idle (a printer reboot, a network
// blip): the next tap still releases and prints; nobody has to tap twice.
func TestFirstTapAfterPrinterConnectionDrop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := startCloud(t, ctx, cloudOpts{}, io.Discard)
	h := startStation(t, ctx, c, "E2E-0009", flags{})
	h.enroll()
	tok := userToken(t, c, "alice")
	j := submit(t, c, tok, "Before the drop", "shipping", threeRecords)
	h.tapAndPrint(aliceBadge, j, 3)
	h.models.waitFor(t, "idle", phase(station.Idle))

	h.app.SimPrinter.DropConnections()
	j = submit(t, c, tok, "After the drop", "shipping", threeRecords)
	h.tapAndPrint(aliceBadge, j, 6)
	if n := len(h.app.SimPrinter.Labels()); n != 6 {
		t.Fatalf("%d labels on paper, want 6", n)
	}
}
