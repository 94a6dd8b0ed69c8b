package station

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"labelstation/drivers/printer"
	"labelstation/protocol"
	"labelstation/station/cloud"
)

// The one-round-trip tap ends where the two steps end, for every kind of answer: the screens
// of release.mode all do not change.
func TestReleaseAllEndsAsTwoSteps(t *testing.T) {
	alice := &protocol.User{ID: "a", Name: "Alice"}
	expiredJob := protocol.JobSummary{ID: "j0", Title: "Old", Labels: 1, Expires: t0.Add(-time.Second)}
	for _, c := range []struct {
		name     string
		jobs     []protocol.JobSummary // what the cloud released
		busy     bool
		s        Settings
		released []string
	}{
		{"two jobs", twoJobs, false, timed, []string{"j1", "j2"}},
		{"two jobs while another prints", twoJobs, true, timed, []string{"j1", "j2"}},
		{"nothing held", nil, false, timed, nil},
		{"an expired job the cloud released anyway", []protocol.JobSummary{expiredJob, twoJobs[0]}, false, settings, []string{"j0", "j1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tapped := with(idle(), func(m *Model) { m.Busy = c.busy })
			lookup, eff := Step(tapped, BadgeTapped{Hash: "h1"}, t0, c.s)
			if !reflect.DeepEqual(eff, []Effect{DoLookup{Badge: "h1", ReleaseAll: true}}) {
				t.Fatalf("tap effects %#v", eff)
			}
			now := t0.Add(3 * time.Millisecond)
			reply := protocol.LookupReply{User: alice, Jobs: c.jobs}

			// Two steps: the lookup's answer, the release it asks for, the release's answer.
			list, eff := Step(lookup, LookupDone{Reply: reply}, now, c.s)
			var twoSteps Model = list
			if len(eff) == 1 {
				if _, ok := eff[0].(DoRelease); !ok {
					t.Fatalf("lookup effects %#v", eff)
				}
				twoSteps, _ = Step(list, ReleaseDone{Reply: protocol.ReleaseReply{Released: c.released}}, now, c.s)
			}
			// One step.
			oneStep, eff := Step(lookup, LookupDone{Reply: reply, Released: &protocol.ReleaseReply{Released: c.released}}, now, c.s)
			if len(eff) != 0 {
				t.Fatalf("one step effects %#v", eff)
			}
			if !reflect.DeepEqual(oneStep, twoSteps) {
				t.Fatalf("one step ends at\n%+v\ntwo steps at\n%+v", oneStep, twoSteps)
			}
		})
	}
}

// allCloud is the fake beside AllReleaser: it answers LookupRelease with rep/err, and records
// which requests the station made.
type allCloud struct {
	fakeCloud
	rep   protocol.ReleaseReply
	err   error
	mu    sync.Mutex
	calls []string
}

var _ AllReleaser = (*allCloud)(nil)

func (c *allCloud) call(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, name)
}

func (c *allCloud) LookupRelease(context.Context, string) (protocol.ReleaseReply, error) {
	c.call("lookup+release")
	return c.rep, c.err
}

func (c *allCloud) Lookup(context.Context, string) (protocol.LookupReply, error) {
	c.call("lookup")
	return protocol.LookupReply{User: &protocol.User{ID: "alice", Name: "Alice"}, Jobs: twoJobs}, nil
}

func (c *allCloud) Release(context.Context, string, []string) (protocol.ReleaseReply, error) {
	c.call("release")
	return protocol.ReleaseReply{Released: []string{"j1", "j2"}}, nil
}

// faultedPrinter is a printer with its paper out.
type faultedPrinter struct{ fakePrinter }

func (*faultedPrinter) Status(context.Context) (printer.Status, error) {
	return printer.Status{PaperOut: true}, nil
}

// The runtime of a tap in release.mode all: one request when the cloud knows it (and the jobs
// held on the station for the owner are released with it); the lookup of the two steps when
// the cloud does not know it (an older cloud, or one that calls it a bad request), when the
// link cannot send it, or when the printer is not ready, so those taps end as before.
func TestLookupReleaseAllRuntime(t *testing.T) {
	alice := &protocol.User{ID: "alice", Name: "Alice"}
	for _, c := range []struct {
		name      string
		cloud     *allCloud // nil: a link without the one-round-trip request
		printer   Printer
		heldHere  bool // a job of alice's waits on the station (a preview answered "later")
		calls     string
		released  string // LookupDone.Released; "" when the LookupDone is a plain lookup's
		lookupErr string // the LookupDone's reply error code
	}{
		{name: "one request", cloud: &allCloud{rep: protocol.ReleaseReply{User: alice, Jobs: twoJobs, Released: []string{"j1", "j2"}}},
			calls: "[lookup+release]", released: "[j1 j2]"},
		{name: "one request, with a job held here", heldHere: true, cloud: &allCloud{rep: protocol.ReleaseReply{User: alice, Jobs: twoJobs, Released: []string{"j1", "j2"}}},
			calls: "[lookup+release]", released: "[j1 j2 job-1]"},
		{name: "unknown badge", cloud: &allCloud{rep: protocol.ReleaseReply{Error: &protocol.Error{Code: protocol.CodeUnknownBadge, Message: "no"}}},
			calls: "[lookup+release]", lookupErr: protocol.CodeUnknownBadge},
		{name: "an older cloud", cloud: &allCloud{err: fmt.Errorf("%w (no owner in the reply)", cloud.ErrNoReleaseAll)},
			calls: "[lookup+release lookup]"},
		{name: "printer not ready", cloud: &allCloud{}, printer: &faultedPrinter{}, calls: "[lookup]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := c.printer
			if p == nil {
				p = &fakePrinter{}
			}
			s, j := workerStation(t, p)
			s.kick = make(chan struct{}, 1)
			if c.heldHere {
				job := testJob(t)
				job.User = protocol.User{ID: "alice", Name: "Alice"}
				if _, _, err := j.Claim(job); err != nil {
					t.Fatal(err)
				}
				if err := j.Hold(job.ID, true); err != nil {
					t.Fatal(err)
				}
			}
			var cl Cloud = &fakeCloud{}
			if c.cloud != nil {
				cl = c.cloud
			}
			s.cloud = cl
			s.do(context.Background(), DoLookup{Badge: "h1", ReleaseAll: true})
			ev := next(t, s)
			s.bg.Wait()
			d, ok := ev.(LookupDone)
			if !ok || d.Err != nil {
				t.Fatalf("event %#v, want a LookupDone", ev)
			}
			if got := fmt.Sprint(c.cloud.calls); got != c.calls {
				t.Errorf("requests %s, want %s", got, c.calls)
			}
			switch {
			case c.released == "" && d.Released != nil:
				t.Errorf("released %v; want a plain lookup's answer", d.Released.Released)
			case c.released != "" && (d.Released == nil || fmt.Sprint(d.Released.Released) != c.released):
				t.Errorf("released %+v, want %s", d.Released, c.released)
			}
			code := ""
			if d.Reply.Error != nil {
				code = d.Reply.Error.Code
			}
			if code != c.lookupErr {
				t.Errorf("reply error %+v, want %q", d.Reply.Error, c.lookupErr)
			}
			if c.heldHere {
				if held, _ := j.Held(); len(held) != 0 {
					t.Errorf("still held on the station: %+v", held)
				}
				if last := d.Reply.Jobs[len(d.Reply.Jobs)-1]; last.ID != "job-1" {
					t.Errorf("listed %+v, want the job held here last", d.Reply.Jobs)
				}
			}
		})
	}
	// A link that cannot send the one request looks up.
	s, _ := workerStation(t, &fakePrinter{})
	s.cloud = &fakeCloud{}
	s.do(context.Background(), DoLookup{Badge: "h1", ReleaseAll: true})
	if d, ok := next(t, s).(LookupDone); !ok || d.Released != nil || d.Err != cloud.ErrOffline {
		t.Fatalf("without LookupRelease: %#v, want the fake's lookup answer", d)
	}
	s.bg.Wait()
}
