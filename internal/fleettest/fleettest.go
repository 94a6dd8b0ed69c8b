// Package fleettest runs a development cloud and real station cores with sim hardware for the
// fleet tests of devcloud and stationctl.
package fleettest

import (
	"context"
	"encoding/json"
	"image"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"labelstation/devcloud"
	"labelstation/devcloud/seed"
	"labelstation/display"
	"labelstation/drivers/badge"
	"labelstation/drivers/printer"
	"labelstation/provisioning"
	"labelstation/station"
	"labelstation/station/cloud"
	"labelstation/station/config"
	"labelstation/station/journal"
	"labelstation/station/trust"
)

// seedPath finds the example seed from this file, whatever the test's directory.
func seedPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "examples", "devcloud-seed.json")
}

func StartCloud(t *testing.T) *devcloud.Cloud {
	t.Helper()
	sd, err := seed.Load(seedPath())
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
func Enroll(t *testing.T, c *devcloud.Cloud, serial string) string {
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

// Paper is the printer hardware: it takes every label.
type Paper struct {
	mu sync.Mutex
	n  int
}

func (p *Paper) Send(context.Context, []byte) error { p.mu.Lock(); p.n++; p.mu.Unlock(); return nil }
func (p *Paper) Status(context.Context) (printer.Status, error) {
	return printer.Status{}, nil
}

// Labels counts the labels sent.
func (p *Paper) Labels() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// RunStation runs the real station core with sim hardware against the cloud's broker.
func RunStation(t *testing.T, c *devcloud.Cloud, dir, serial string) (string, *Paper, func()) {
	t.Helper()
	return RunStationVia(t, c, dir, serial, c.BrokerURL)
}

// RunStationVia is RunStation connecting to the broker at brokerURL (a proxy in front of it).
func RunStationVia(t *testing.T, c *devcloud.Cloud, dir, serial, brokerURL string) (string, *Paper, func()) {
	t.Helper()
	tok := Enroll(t, c, serial)
	p, err := c.Auth.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(filepath.Join(t.TempDir(), "journal.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := trust.OpenKeys(trust.KeysOptions{URL: strings.TrimRight(c.URL, "/") + "/oauth/keys", File: filepath.Join(dir, trust.KeysFile)})
	if err != nil {
		t.Fatal(err)
	}
	window, err := trust.OpenWindow(filepath.Join(dir, trust.WindowFile))
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.Station.StateDir = dir
	cfg.Cloud.Issuer, cfg.Cloud.Broker, cfg.Printer.URL = c.URL, brokerURL, "tcp://127.0.0.1:9"
	pr := &Paper{}
	s, err := station.New(station.Options{
		Config: cfg, Panel: display.None(image.Pt(128, 64)), Printer: pr, Journal: j,
		Enroller: staticEnroller{id: p.StationID, tok: tok},
		DialCloud: func(o cloud.Options) (station.Cloud, error) {
			// Verified like stationd does: the cloud's keys from its JWKS, group messages
			// for the group the station follows.
			v, err := trust.NewVerifier(trust.VerifierOptions{Station: o.StationID, Keys: keys, Window: window,
				Groups: func() []string {
					if g := o.Group(); g != "" {
						return []string{g}
					}
					return nil
				}})
			if err != nil {
				return nil, err
			}
			o.Verify = v
			return cloud.New(o)
		},
		Badges: make(chan badge.Badge), Version: "test", Logger: debugLog(),
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

// debugLog logs the station to stderr when FLEETTEST_LOG is set.
func debugLog() *slog.Logger {
	if os.Getenv("FLEETTEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
