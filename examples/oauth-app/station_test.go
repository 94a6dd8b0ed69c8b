package main

import (
	"context"
	"encoding/hex"
	"image"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"labelstation/devcloud"
	"labelstation/devcloud/jobs"
	"labelstation/display"
	"labelstation/drivers/badge"
	"labelstation/drivers/printer"
	"labelstation/internal/fleettest"
	"labelstation/provisioning"
	"labelstation/station"
	"labelstation/station/cloud"
	"labelstation/station/config"
	"labelstation/station/journal"
	"labelstation/station/trust"
)

// enrolled is a station's grant: one access token.
type enrolled struct{ id, tok string }

func (e enrolled) Enrolled() bool                                        { return true }
func (e enrolled) Enroll(context.Context, func(provisioning.Code)) error { return nil }
func (e enrolled) Token(context.Context) (*oauth2.Token, error) {
	return &oauth2.Token{AccessToken: e.tok}, nil
}
func (e enrolled) Invalidate()       {}
func (e enrolled) StationID() string { return e.id }
func (e enrolled) Reset() error      { return nil }
func (e enrolled) RetryNow()         {}

// paper is the printer hardware: it counts the labels.
type paper struct {
	mu sync.Mutex
	n  int
}

func (p *paper) Send(context.Context, []byte) error { p.mu.Lock(); p.n++; p.mu.Unlock(); return nil }
func (p *paper) Status(context.Context) (printer.Status, error) {
	return printer.Status{}, nil
}
func (p *paper) labels() int { p.mu.Lock(); defer p.mu.Unlock(); return p.n }

// models keeps the station's screens, in order, for whoever waits for one.
type models struct {
	mu    sync.Mutex
	seen  []station.Model
	waits []chan struct{}
}

func (m *models) observe(s station.Model) {
	m.mu.Lock()
	m.seen = append(m.seen, s)
	ws := m.waits
	m.waits = nil
	m.mu.Unlock()
	for _, w := range ws {
		close(w)
	}
}

// mark is where the screens of what happens next begin.
func (m *models) mark() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.seen)
}

func (m *models) last() station.Model {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.seen) == 0 {
		return station.Model{}
	}
	return m.seen[len(m.seen)-1]
}

// waitFor returns the first screen from index from on that cond accepts, and its index.
func (m *models) waitFor(ctx context.Context, from int, cond func(station.Model) bool) (int, error) {
	for {
		m.mu.Lock()
		for i := from; i < len(m.seen); i++ {
			if cond(m.seen[i]) {
				m.mu.Unlock()
				return i, nil
			}
		}
		from = len(m.seen)
		w := make(chan struct{})
		m.waits = append(m.waits, w)
		m.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			return from, ctx.Err()
		}
	}
}

// runStation runs a real station core with sim hardware and a badge reader the test taps.
func runStation(t *testing.T, c *devcloud.Cloud, serial string) (*badge.Sim, *paper, *models) {
	t.Helper()
	tok := fleettest.Enroll(t, c, serial)
	p, err := c.Auth.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	j, err := journal.Open(filepath.Join(dir, "journal.db"), journal.Options{})
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
	cfg.Cloud.Issuer, cfg.Cloud.Broker, cfg.Printer.URL = c.URL, c.BrokerURL, "tcp://127.0.0.1:9"
	ctx, cancel := context.WithCancel(context.Background())
	reader := badge.NewSim("test")
	badges := make(chan badge.Badge, 4)
	pumpDone := make(chan error, 1)
	go func() { pumpDone <- badge.Pump(ctx, reader, badges, badge.PumpOptions{Repeat: time.Millisecond}) }()
	pr, ms := &paper{}, &models{}
	s, err := station.New(station.Options{
		Config: cfg, Panel: display.None(image.Pt(128, 64)), Printer: pr, Journal: j,
		Enroller: enrolled{id: p.StationID, tok: tok},
		DialCloud: func(o cloud.Options) (station.Cloud, error) {
			v, err := trust.NewVerifier(trust.VerifierOptions{Station: o.StationID, Keys: keys, Window: window})
			if err != nil {
				return nil, err
			}
			o.Verify = v
			return cloud.New(o)
		},
		Badges: badges, Observe: ms.observe, Version: "test", Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if err := <-pumpDone; err != nil && ctx.Err() == nil {
			t.Errorf("badge pump: %v", err)
		}
		reader.Halt()
		j.Close()
	})
	return reader, pr, ms
}

// TestJobPrintsAtTheUsersBadge: a job the example submits with bob's consent is released by
// bob's badge at a real station, and alice's badge does not release it.
func TestJobPrintsAtTheUsersBadge(t *testing.T) {
	c, _, _ := startCloud(t, nil)
	reader, pr, ms := runStation(t, c, "APPS-0001")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := ms.waitFor(ctx, 0, func(m station.Model) bool { return m.Phase == station.Idle && m.Configured && m.Online }); err != nil {
		t.Fatalf("station idle and online: %v (at %+v)", err, ms.last())
	}
	if err := c.Jobs.WaitOnline(ctx); err != nil {
		t.Fatal(err)
	}
	app := newApp(t, c)
	if err := app.Authorize(ctx, signInAndAllow(t, "bob", password(t, c, "bob"))); err != nil {
		t.Fatal(err)
	}
	job, err := app.Submit(ctx, parcel)
	if err != nil {
		t.Fatal(err)
	}
	// A tap's result: the first result screen after its lookup.
	tap := func(user string) station.Phase {
		t.Helper()
		from := ms.mark()
		uid, _ := hex.DecodeString(badgeOf(t, c, user))
		if err := reader.Tap(ctx, uid); err != nil {
			t.Fatal(err)
		}
		i, err := ms.waitFor(ctx, from, func(m station.Model) bool { return m.Phase == station.Lookup })
		if err == nil {
			i, err = ms.waitFor(ctx, i, func(m station.Model) bool {
				return !m.Busy && (m.Phase == station.Done || m.Phase == station.NoJobs || m.Phase == station.UnknownBadge || m.Phase == station.Failed)
			})
		}
		if err != nil {
			t.Fatalf("tap of %s: %v (at %+v)", user, err, ms.last())
		}
		ms.mu.Lock()
		defer ms.mu.Unlock()
		return ms.seen[i].Phase
	}
	if ph := tap("alice"); ph != station.NoJobs || pr.labels() != 0 {
		t.Fatalf("alice's tap: %v, %d labels; want no jobs", ph, pr.labels())
	}
	if ph := tap("bob"); ph != station.Done {
		t.Fatalf("bob's tap: %v, want done", ph)
	}
	if _, err := c.Jobs.Store().WaitFor(ctx, job.ID, func(j jobs.Job) bool { return j.State == jobs.StatePrinted }); err != nil {
		t.Fatalf("bob's job %s not printed: %v", job.ID, err)
	}
	if pr.labels() != 1 {
		t.Fatalf("%d labels printed, want 1", pr.labels())
	}
}

func badgeOf(t *testing.T, c *devcloud.Cloud, user string) string {
	t.Helper()
	for _, u := range c.Seed.Users {
		if u.ID == user && len(u.Badges) > 0 {
			return u.Badges[0]
		}
	}
	t.Fatalf("no badge for %s", user)
	return ""
}
