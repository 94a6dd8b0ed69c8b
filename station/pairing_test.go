package station

import (
	"context"
	"fmt"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"labelstation/drivers/badge"
	"labelstation/provisioning"
	"labelstation/station/cloud"
	"labelstation/station/config"
	"labelstation/station/journal"
)

// codeEnroller is the fake beside Enroller for an unenrolled station: each attempt shows three
// codes (two expire), then waits for RetryNow to start the next attempt.
type codeEnroller struct {
	retry chan struct{}
	codes chan string // every code shown, for the test
}

func (e *codeEnroller) Enrolled() bool { return false }
func (e *codeEnroller) Enroll(ctx context.Context, onCode func(provisioning.Code)) error {
	for attempt := 0; ; attempt++ {
		for i := range 3 {
			c := fmt.Sprintf("A%d-C%d", attempt, i)
			onCode(provisioning.Code{UserCode: c, VerificationURI: "http://ls.lan/d", Expires: time.Now().Add(time.Minute)})
			e.codes <- c
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-e.retry:
		}
	}
}
func (e *codeEnroller) Token(context.Context) (*oauth2.Token, error) { return nil, nil }
func (e *codeEnroller) Invalidate()                                  {}
func (e *codeEnroller) StationID() string                            { return "" }
func (e *codeEnroller) Reset() error                                 { return nil }
func (e *codeEnroller) RetryNow()                                    { e.retry <- struct{}{} }

// The pairing label prints once per enrollment attempt someone asked for (the boot, a button
// press on the denied screen), not for every code that replaces an expired one.
func TestPairingLabelOncePerAttempt(t *testing.T) {
	j, err := journal.Open(t.TempDir()+"/journal.db", journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	cfg := config.Defaults()
	cfg.Printer.PairingLabel = true
	pr := &fakePrinter{}
	enr := &codeEnroller{retry: make(chan struct{}), codes: make(chan string, 10)}
	s, err := New(Options{Config: cfg, Panel: &countingPanel{}, Printer: pr, Journal: j, Enroller: enr,
		Badges: make(chan badge.Badge), DialCloud: func(cloud.Options) (Cloud, error) { return &fakeCloud{}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitCodes := func(n int) {
		t.Helper()
		for range n {
			select {
			case <-enr.codes:
			case <-time.After(30 * time.Second):
				t.Fatal("no pairing code")
			}
		}
	}
	waitLabels := func(want int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for pr.count() < want && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond) // the fake printer has no event to wait on
		}
		s.bg.Wait() // any other print effect has finished too
		if got := pr.count(); got != want {
			t.Fatalf("%d pairing labels printed, want %d", got, want)
		}
	}
	waitCodes(3)
	waitLabels(1)
	s.post(EnrollDenied{})
	s.post(ButtonPressed{Name: "A"}) // on the denied screen: a new attempt
	waitCodes(3)
	waitLabels(2)
}
