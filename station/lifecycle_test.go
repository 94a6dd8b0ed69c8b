package station

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"labelstation/protocol"
	"labelstation/provisioning"
	"labelstation/station/cloud"
	"labelstation/station/config"
)

// fakeEnroller is enrolled with tokens that name no station until the server is fixed after
// fixAfter refreshes.
type fakeEnroller struct {
	mu        sync.Mutex
	id        string
	refreshes int
	fixAfter  int
	invalid   bool
}

var _ Enroller = (*fakeEnroller)(nil)

func (f *fakeEnroller) Enrolled() bool { return true }
func (f *fakeEnroller) Enroll(context.Context, func(provisioning.Code)) error {
	return errors.New("not called: already enrolled")
}
func (f *fakeEnroller) Token(context.Context) (*oauth2.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.invalid {
		f.invalid = false
		if f.refreshes++; f.refreshes >= f.fixAfter {
			f.id = "device-7f3a"
		}
	}
	return &oauth2.Token{AccessToken: "at"}, nil
}
func (f *fakeEnroller) Invalidate()       { f.mu.Lock(); f.invalid = true; f.mu.Unlock() }
func (f *fakeEnroller) StationID() string { f.mu.Lock(); defer f.mu.Unlock(); return f.id }
func (f *fakeEnroller) Reset() error      { return nil }
func (f *fakeEnroller) RetryNow()         {}

type idleCloud struct{}

func (idleCloud) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (idleCloud) Lookup(context.Context, string) (protocol.LookupReply, error) {
	return protocol.LookupReply{}, cloud.ErrOffline
}
func (idleCloud) Release(context.Context, string, []string) (protocol.ReleaseReply, error) {
	return protocol.ReleaseReply{}, cloud.ErrOffline
}
func (idleCloud) Kick()                                      {}
func (idleCloud) ReportConfig(protocol.ConfigReported) error { return nil }
func (idleCloud) SetState(string)                            {}

// Tokens without the station claim and a cloud link that cannot be built are shown as setup
// problems and retried; the lifecycle goes on to connect once the server is fixed.
func TestLifecycleRetriesSetupProblems(t *testing.T) {
	enr := &fakeEnroller{fixAfter: 3}
	dialed := make(chan string, 1)
	dials := 0
	s := &Station{
		opt: Options{Enroller: enr, SetupRetry: time.Millisecond, TokenCheck: time.Hour, Now: time.Now,
			DialCloud: func(o cloud.Options) (Cloud, error) {
				if dials++; dials == 1 {
					return nil, errors.New("cloud: broker URL refused")
				}
				dialed <- o.StationID
				return idleCloud{}, nil
			}},
		log: slog.New(slog.DiscardHandler), cfg: config.Defaults(), events: make(chan Event, 64), reenroll: make(chan struct{}, 1), stopped: make(chan struct{}),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.lifecycle(ctx) }()
	defer func() { cancel(); <-done }()

	var got []Event
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev := <-s.events:
			got = append(got, ev)
			continue
		case id := <-dialed:
			if id != "device-7f3a" {
				t.Fatalf("dialled as %q", id)
			}
		case <-deadline:
			t.Fatalf("never connected; events %v", got)
		}
		break
	}
	for len(s.events) > 0 {
		got = append(got, <-s.events)
	}
	want := []Event{SetupRefused{Code: "no sub claim"}, SetupRefused{Code: "no sub claim"}, SetupRefused{Code: "no sub claim"},
		Enrolled{}, SetupRefused{Code: "cloud link"}, Enrolled{}}
	if len(got) != len(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d = %#v, want %#v (all %v)", i, got[i], want[i], got)
		}
	}
	enr.mu.Lock()
	defer enr.mu.Unlock()
	if enr.refreshes != 3 {
		t.Fatalf("%d refreshes, want one per setup retry", enr.refreshes)
	}
}
