package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"labelstation/devcloud"
	"labelstation/devcloud/seed"
	"labelstation/protocol"
	"labelstation/provisioning"
	"labelstation/station"
	"labelstation/station/config"
	"labelstation/station/trust"
	"labelstation/station/trust/trusttest"
)

// attacker is a client with the broker's service account: it reads and writes every station's
// topics, as a compromised or misconfigured broker, or a peer the broker trusts too much, could.
type attacker struct {
	c   paho.Client
	mu  sync.Mutex
	got map[string][][]byte
	new chan struct{}
}

func newAttacker(t *testing.T, c *devcloud.Cloud) *attacker {
	t.Helper()
	user, pass := c.ServiceLogin()
	a := &attacker{got: map[string][][]byte{}, new: make(chan struct{}, 64)}
	a.c = paho.NewClient(paho.NewClientOptions().AddBroker(c.BrokerURL).SetClientID("mallory").
		SetUsername(user).SetPassword(pass).SetOrderMatters(false))
	if tok := a.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("attacker connect: %v", tok.Error())
	}
	t.Cleanup(func() { a.c.Disconnect(0) })
	tok := a.c.Subscribe(protocol.Root+"/st/#", 1, func(_ paho.Client, m paho.Message) {
		a.mu.Lock()
		a.got[m.Topic()] = append(a.got[m.Topic()], m.Payload())
		a.mu.Unlock()
		select {
		case a.new <- struct{}{}:
		default:
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("attacker subscribe: %v", tok.Error())
	}
	return a
}

// captured waits for a message on topic and returns the latest.
func (a *attacker) captured(t *testing.T, topic string) []byte {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		a.mu.Lock()
		all := a.got[topic]
		a.mu.Unlock()
		if len(all) > 0 {
			return all[len(all)-1]
		}
		select {
		case <-a.new:
		case <-deadline:
			t.Fatalf("attacker saw nothing on %s", topic)
		}
	}
}

func (a *attacker) publish(t *testing.T, topic string, retained bool, payload []byte) {
	t.Helper()
	tok := a.c.Publish(topic, 1, retained, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("attacker publish %s: %v", topic, tok.Error())
	}
}

const oneRecord = "name,street,zip,city,tracking\nAda Lovelace,12 Square,4JH,London,TRK0000000001\n"

// Two enrolled stations on one devcloud. Whoever holds the broker's keys to the kingdom sends
// station B forged, replayed and misaddressed jobs, config and commands: B prints, applies and
// runs none of them, and reports every one to the cloud.
func TestForgedMessagesNeitherPrintNorApply(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := startCloud(t, ctx, cloudOpts{}, io.Discard)
	mallory := newAttacker(t, c)
	a := startStation(t, ctx, c, "TRUST-A", flags{})
	a.enroll()
	b := startStation(t, ctx, c, "TRUST-B", flags{})
	b.enroll()
	idA, idB := a.app.Prov.StationID(), b.app.Prov.StationID()

	// Genuine traffic the attacker records: a job printed on A, one printed on B, A's config.
	tok := userToken(t, c, "alice")
	ja := submit(t, c, tok, "for A", "shipping", oneRecord)
	a.tapAndPrint(aliceBadge, ja, 1)
	jb := submit(t, c, tok, "for B", "shipping", oneRecord)
	b.tapAndPrint(aliceBadge, jb, 1)
	jobA := mallory.captured(t, protocol.StationTopic(idA, protocol.LeafJob))
	jobB := mallory.captured(t, protocol.StationTopic(idB, protocol.LeafJob))
	cfgA := mallory.captured(t, protocol.StationTopic(idA, protocol.LeafConfigDesired))
	fleetB, err := os.ReadFile(filepath.Join(b.app.Config.Station.StateDir, config.SourcesFile))
	if err != nil {
		t.Fatal(err)
	}
	printedB := len(b.app.SimPrinter.Labels())

	// Mallory's own key, published under the cloud's kid, and under a kid of her own.
	mk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sameKid, err := protocol.NewSealer(mk, c.MessageKeyID, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ownKid, _ := protocol.NewSealer(mk, "mallory-1", nil, nil)
	var genuine protocol.Job
	if err := json.Unmarshal(protocol.Unverified(jobA), &genuine); err != nil {
		t.Fatal(err)
	}
	forgedJob := func(id string) []byte {
		j := genuine
		j.ID, j.Title, j.Data = id, "INJECTED", []byte("name,street,zip,city,tracking\nINJECTED,x,x,x,x\n")
		out, _ := json.Marshal(j)
		return out
	}
	forgedCfg := func(version int64) []byte {
		out, _ := json.Marshal(protocol.ConfigDesired{V: protocol.Version, Version: version,
			Config: json.RawMessage(`{"v":1,"printer":{"dpi":600},"badge":{"hash_key":"00112233445566778899aabbccddeeff"}}`)})
		return out
	}
	forgedCmd := func(id string) []byte {
		out, _ := json.Marshal(protocol.Command{V: protocol.Version, ID: id, Name: "reenroll"})
		return out
	}
	seal := func(s *protocol.Sealer, topic string, msg []byte) []byte {
		out, err := s.Seal(topic, msg)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	jobTopic := protocol.StationTopic(idB, protocol.LeafJob)
	cfgTopic := protocol.StationTopic(idB, protocol.LeafConfigDesired)
	cmdTopic := protocol.StationTopic(idB, protocol.LeafCmd)
	attacks := []struct {
		name, topic string
		retained    bool
		payload     []byte
		id, reason  string
	}{
		{"unsigned job", jobTopic, false, forgedJob("evil-1"), "evil-1", "unsigned"},
		{"job signed by another key under the cloud's kid", jobTopic, false, seal(sameKid, jobTopic, forgedJob("evil-2")), "evil-2", "bad_signature"},
		{"job signed by an unknown key", jobTopic, false, seal(ownKid, jobTopic, forgedJob("evil-3")), "evil-3", "unknown_key"},
		{"A's genuine job sent to B", jobTopic, false, jobA, ja.ID, "misaddressed"},
		{"B's genuine job replayed", jobTopic, false, jobB, jb.ID, "replayed"},
		{"unsigned retained config", cfgTopic, true, forgedCfg(9001), "9001", "unsigned"},
		{"config signed by another key", cfgTopic, true, seal(sameKid, cfgTopic, forgedCfg(9002)), "9002", "bad_signature"},
		{"A's genuine config sent to B", cfgTopic, true, cfgA, "", "misaddressed"},
		{"unsigned command", cmdTopic, false, forgedCmd("cmd-evil-1"), "cmd-evil-1", "unsigned"},
		{"command signed by another key", cmdTopic, false, seal(sameKid, cmdTopic, forgedCmd("cmd-evil-2")), "cmd-evil-2", "bad_signature"},
	}
	for _, at := range attacks {
		mallory.publish(t, at.topic, at.retained, at.payload)
	}
	events, err := c.Jobs.WaitEvents(ctx, idB, len(attacks))
	if err != nil {
		t.Fatalf("%v; station log:\n%s", err, b.logs.String())
	}
	for _, at := range attacks {
		if !slices.ContainsFunc(events, func(e protocol.Event) bool {
			return e.Kind == protocol.EventRefused && e.Reason == at.reason && (at.id == "" || e.ID == at.id)
		}) {
			t.Errorf("%s: not reported as %s; events %+v", at.name, at.reason, events)
		}
	}

	// Nothing printed, applied or run. The station is still B, still idle, and still works.
	if n := len(b.app.SimPrinter.Labels()); n != printedB {
		t.Errorf("B's printer has %d labels, had %d", n, printedB)
	}
	for _, l := range b.app.SimPrinter.Labels() {
		if strings.Contains(l, "INJECTED") {
			t.Errorf("B printed an injected label")
		}
	}
	if now, _ := os.ReadFile(filepath.Join(b.app.Config.Station.StateDir, config.SourcesFile)); !bytes.Equal(now, fleetB) {
		t.Errorf("B's fleet config changed:\n%s\nwas\n%s", now, fleetB)
	}
	if b.app.Prov.StationID() != idB || !b.app.Prov.Enrolled() {
		t.Errorf("B lost its enrollment")
	}
	if n := len(c.Jobs.Events(idA)); n != 0 {
		t.Errorf("A reported %d refusals; nothing was sent to it", n)
	}
	jb2 := submit(t, c, tok, "after the attack", "shipping", oneRecord)
	b.models.waitFor(t, "idle", phase(station.Idle))
	b.tapAndPrint(aliceBadge, jb2, printedB+1)
}

// The cloud behind a private CA: the station reaches issuer, keys and broker over TLS only when
// cloud.ca_file names that CA.
func TestPrivateCAEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ca := trusttest.NewCA(t)
	caFile := ca.File(t, t.TempDir())
	clientTLS, err := trust.TLSConfig(caFile)
	if err != nil {
		t.Fatal(err)
	}
	sd, err := seed.Load(filepath.Join("..", "..", "examples", "devcloud-seed.json"))
	if err != nil {
		t.Fatal(err)
	}
	httpLn, _ := net.Listen("tcp", "127.0.0.1:0")
	mqttLn, _ := net.Listen("tcp", "127.0.0.1:0")
	c, err := devcloud.Start(ctx, devcloud.Options{HTTP: httpLn, MQTT: mqttLn, Seed: sd, PollEvery: time.Second,
		TLS: ca.ServerTLS(t), ClientTLS: clientTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !strings.HasPrefix(c.URL, "https://") || !strings.HasPrefix(c.BrokerURL, "mqtts://") {
		t.Fatalf("cloud at %s and %s", c.URL, c.BrokerURL)
	}
	sections := `"board":{"kind":"sim","serial":"TLS-1"},"printer":{"url":"tcp://127.0.0.1:9","lang":"zpl","dpi":203},
	  "badge":{"repeat_ms":1},"release":{"mode":"all","screen_seconds":1}`

	// Without the CA the station does not trust the issuer: it never gets past discovery.
	short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
	defer cancelShort()
	_, err = buildWith(t, short, c.URL, c.BrokerURL, sections)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without ca_file: %v, want a certificate error", err)
	}

	// With it: enrollment and the keys over https, then a badge lookup and its sealed reply
	// over mqtts.
	h := runStationCloud(t, ctx, c, fmt.Sprintf(`{"issuer":%q,"broker":%q,"ca_file":%q}`, c.URL, c.BrokerURL, caFile), sections, flags{Sim: true, Web: "127.0.0.1:0"})
	h.enroll()
	h.tap(aliceBadge)
	h.models.waitFor(t, "no jobs (a verified lookup reply)", phase(station.NoJobs))
}

// The metadata must name the issuer the station was configured with (RFC 8414 §3.3).
func TestIssuerMismatchRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := startCloud(t, ctx, cloudOpts{}, io.Discard)
	// The same server under another name: "localhost" instead of 127.0.0.1.
	other := strings.Replace(c.URL, "127.0.0.1", "localhost", 1)
	_, err := buildWith(t, ctx, other, c.BrokerURL, `"board":{"kind":"sim","serial":"MISMATCH"},"printer":{"url":"tcp://127.0.0.1:9"}`)
	if err == nil || !strings.Contains(err.Error(), "RFC 8414") || !strings.Contains(err.Error(), c.URL) {
		t.Fatalf("err = %v, want an issuer mismatch naming %s", err, c.URL)
	}
}

// A cleartext issuer or broker on another machine is refused before anything is sent.
func TestCleartextToAnotherHostRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, tt := range []struct{ issuer, broker, field string }{
		{"http://cloud.example", "mqtts://cloud.example:8883", "cloud.issuer"},
		{"https://cloud.example", "mqtt://10.1.2.3:1883", "cloud.broker"},
	} {
		dir := t.TempDir()
		cfg := fmt.Sprintf(`{"v":1,"station":{"state_dir":%q},"cloud":{"issuer":%q,"broker":%q},"board":{"kind":"sim","serial":"X"}}`,
			filepath.Join(dir, "state"), tt.issuer, tt.broker)
		path := filepath.Join(dir, "stationd.json")
		os.WriteFile(path, []byte(cfg), 0o600)
		_, err := build(ctx, flags{Config: path, Sim: true, Web: ""}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.field) || !strings.Contains(err.Error(), "cleartext") {
			t.Errorf("%s / %s: %v, want a cleartext error naming %s", tt.issuer, tt.broker, err, tt.field)
		}
		if _, err := os.Stat(filepath.Join(dir, "state")); err == nil {
			t.Errorf("state dir created for a refused config")
		}
	}
}

// The state directory is the station's alone, whatever mode it was created with; secrets in it
// are 0600 and the panel's frames, meant to be looked at, 0644.
func TestStateFileModes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startCloud(t, ctx, cloudOpts{}, io.Discard)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(state, 0o755)
	cfg := fmt.Sprintf(`{"v":1,"station":{"state_dir":%q},"cloud":{"issuer":%q,"broker":%q},"board":{"kind":"sim","serial":"MODES"},"printer":{"url":"tcp://127.0.0.1:9"},"badge":{"repeat_ms":1}}`,
		state, c.URL, c.BrokerURL)
	h := runStationConfig(t, ctx, c, cfg, flags{Sim: true, Web: "127.0.0.1:0"})
	if fi, _ := os.Stat(state); fi.Mode().Perm() != 0o700 {
		t.Fatalf("state dir mode %v, want 0700", fi.Mode().Perm())
	}
	h.enroll()
	for _, name := range []string{provisioning.TokenFile, config.SourcesFile, "journal.db", trust.KeysFile, trust.WindowFile} {
		fi, err := os.Stat(filepath.Join(state, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	frames, _ := filepath.Glob(filepath.Join(state, "display", "*.png"))
	if len(frames) == 0 {
		t.Fatal("no panel frames written")
	}
	for _, f := range frames {
		if fi, _ := os.Stat(f); fi.Mode().Perm() != 0o644 {
			t.Errorf("%s mode %v, want 0644", filepath.Base(f), fi.Mode().Perm())
		}
	}
}

// buildWith builds (but does not run) a station for issuer and broker.
func buildWith(t *testing.T, ctx context.Context, issuer, broker, sections string) (*appliance, error) {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`{"v":1,"station":{"state_dir":%q},"cloud":{"issuer":%q,"broker":%q},%s}`,
		filepath.Join(dir, "state"), issuer, broker, sections)
	path := filepath.Join(dir, "stationd.json")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := build(ctx, flags{Config: path, Sim: true, Web: ""}, io.Discard)
	if a != nil {
		t.Cleanup(func() { a.Close() })
	}
	return a, err
}
