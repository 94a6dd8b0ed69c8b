package station

import (
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"labelstation/display"
	"labelstation/drivers/badge"
	"labelstation/internal/supervise"
	"labelstation/protocol"
	"labelstation/provisioning"
	"labelstation/station/cloud"
	"labelstation/station/journal"
)

// A full event queue never blocks a poster for good: progress is coalesced (the newest wins,
// and it is delivered before any later event), and once the loop stopped, events are dropped.
func TestPostNeverBlocksForever(t *testing.T) {
	s := &Station{log: slog.New(slog.DiscardHandler), events: make(chan Event, 2), stopped: make(chan struct{})}
	s.post(Tick{})
	s.post(Tick{})
	for i := 1; i <= 100; i++ {
		s.post(PrintProgress{Title: "A", Done: i, Total: 100}) // must not block
	}
	done := make(chan struct{})
	go func() { defer close(done); s.post(PrintIdle{}) }() // waits for room
	<-s.events
	<-s.events
	if ev := <-s.events; ev != (PrintProgress{Title: "A", Done: 100, Total: 100}) {
		t.Fatalf("after the queue drained: %#v, want the newest progress", ev)
	}
	if ev := <-s.events; ev != (PrintIdle{}) {
		t.Fatalf("then %#v, want PrintIdle", ev)
	}
	<-done
	s.post(Tick{})
	s.post(Tick{})
	close(s.stopped)
	returned := make(chan struct{})
	go func() { defer close(returned); s.post(JobFinished{Title: "A"}) }()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("post blocked on a stopped loop")
	}
}

// panicCloud is a Cloud whose requests panic, as a bug in a handler would.
type panicCloud struct{ *fakeCloud }

func (panicCloud) Lookup(context.Context, string) (protocol.LookupReply, error) {
	var m map[string]int
	m["boom"]++
	return protocol.LookupReply{}, nil
}

// An effect that panics answers the state machine with an error instead of leaving it waiting.
func TestEffectPanicBecomesItsFailure(t *testing.T) {
	s, _ := workerStation(t, &fakePrinter{})
	s.cloud = panicCloud{&fakeCloud{}}
	s.do(context.Background(), DoLookup{Badge: "h"})
	ev := next(t, s)
	d, ok := ev.(LookupDone)
	var p *supervise.PanicError
	if !ok || !errors.As(d.Err, &p) {
		t.Fatalf("event %#v, want LookupDone with the panic", ev)
	}
	s.bg.Wait()
}

// A refused job is journaled as failed, shown, and waits in the outbox until acknowledged.
func TestRejectedJobIsRecordedAndReported(t *testing.T) {
	s, j := workerStation(t, &fakePrinter{})
	s.volatile = map[string]protocol.JobStatus{}
	c := &fakeCloud{}
	s.cloud = c
	s.onReject("j9", fmt.Errorf("station: journal claim: %w", journal.ErrFull))
	if ev := next(t, s); ev != (JobRejected{ID: "j9", Reason: "station: journal claim: storage full", Full: true}) {
		t.Fatalf("event %#v", ev)
	}
	if e, err := j.Get("j9"); err != nil || e.State != protocol.JobFailed {
		t.Fatalf("journal: %+v, %v", e, err)
	}
	if c.kicks == 0 {
		t.Error("the outbox was not told")
	}
	ob := outbox{s}
	u, err := ob.Unreported()
	if err != nil || len(u) != 1 || u[0].Job != "j9" || u[0].State != protocol.JobFailed || u[0].Error == "" {
		t.Fatalf("outbox %+v, %v", u, err)
	}
	if err := ob.MarkReported("j9", u[0].Seq); err != nil {
		t.Fatal(err)
	}
	if u, _ := ob.Unreported(); len(u) != 0 {
		t.Fatalf("outbox after the ack: %+v", u)
	}
	// Without a readable id there is nothing to journal, but the screen still says so.
	s.onReject("", errors.New("undecodable job"))
	if ev := next(t, s); ev != (JobRejected{Reason: "undecodable job"}) {
		t.Fatalf("event %#v", ev)
	}
}

// When the journal cannot record even the failure, the status is kept in memory and reported.
func TestRejectedJobReportedFromMemoryWhenJournalFails(t *testing.T) {
	s, j := workerStation(t, &fakePrinter{})
	s.volatile = map[string]protocol.JobStatus{}
	j.Close() // every write now fails
	s.onReject("j10", errors.New("undecodable job"))
	next(t, s)
	s.volMu.Lock()
	st, ok := s.volatile["j10"]
	s.volMu.Unlock()
	if !ok || st.State != protocol.JobFailed {
		t.Fatalf("volatile %+v", s.volatile)
	}
	if err := (outbox{s}).MarkReported("j10", 1); err != nil {
		t.Fatal(err)
	}
	s.volMu.Lock()
	defer s.volMu.Unlock()
	if len(s.volatile) != 0 {
		t.Fatalf("acknowledged status still kept: %+v", s.volatile)
	}
}

// fakeCloud is the fake beside Cloud.
type fakeCloud struct {
	mu    sync.Mutex
	kicks int
}

var _ Cloud = (*fakeCloud)(nil)

func (*fakeCloud) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (*fakeCloud) Lookup(context.Context, string) (protocol.LookupReply, error) {
	return protocol.LookupReply{}, cloud.ErrOffline
}
func (*fakeCloud) Release(context.Context, string, []string) (protocol.ReleaseReply, error) {
	return protocol.ReleaseReply{}, cloud.ErrOffline
}
func (*fakeCloud) ReportConfig(protocol.ConfigReported) error { return nil }
func (*fakeCloud) SetState(string)                            {}
func (c *fakeCloud) Kick() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.kicks++
	c.mu.Unlock()
}

// countingPanel is the fake beside display.Panel: it counts frames.
type countingPanel struct {
	mu     sync.Mutex
	frames int
	last   image.Image
}

func (p *countingPanel) Bounds() image.Rectangle { return image.Rect(0, 0, 128, 64) }
func (p *countingPanel) Show(img image.Image) error {
	p.mu.Lock()
	p.frames++
	p.last = img
	p.mu.Unlock()
	return nil
}
func (p *countingPanel) Halt() error    { return nil }
func (p *countingPanel) String() string { return "counting" }

func (p *countingPanel) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.frames
}

// enrolled is the fake beside Enroller: a station that is already enrolled.
type enrolled struct{}

func (enrolled) Enrolled() bool                                        { return true }
func (enrolled) Enroll(context.Context, func(provisioning.Code)) error { return nil }
func (enrolled) Token(context.Context) (*oauth2.Token, error) {
	return &oauth2.Token{AccessToken: "t"}, nil
}
func (enrolled) Invalidate()       {}
func (enrolled) StationID() string { return "st-1" }
func (enrolled) Reset() error      { return nil }
func (enrolled) RetryNow()         {}

// While a job prints, the screen is redrawn at most ten times a second however fast labels go,
// and the last frame shows the latest progress.
func TestPrintingRedrawsAreThrottled(t *testing.T) {
	j, err := journal.Open(t.TempDir()+"/journal.db", journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	panel := &countingPanel{}
	var mu sync.Mutex
	var last Model
	seen := make(chan struct{}, 1)
	s, err := New(Options{
		Panel: panel, Printer: &fakePrinter{}, Journal: j, Enroller: enrolled{}, Badges: make(chan badge.Badge),
		DialCloud: func(cloud.Options) (Cloud, error) { return &fakeCloud{}, nil },
		Observe: func(m Model) {
			mu.Lock()
			last = m
			mu.Unlock()
			select {
			case seen <- struct{}{}:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	wait := func(what string, cond func(Model) bool) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			mu.Lock()
			m := last
			mu.Unlock()
			if cond(m) {
				return
			}
			select {
			case <-seen:
			case <-deadline:
				t.Fatalf("never %s; last model %+v", what, m)
			}
		}
	}
	wait("connecting", func(m Model) bool { return m.Phase == Connecting })
	const labels = 3000
	s.post(PrintProgress{Title: "Parcels", Done: 0, Total: labels})
	wait("printing", func(m Model) bool { return m.Phase == Printing })
	before, start := panel.count(), time.Now()
	for i := 1; i <= labels; i++ {
		s.post(PrintProgress{Title: "Parcels", Done: i, Total: labels})
	}
	wait("at the last label", func(m Model) bool { return m.Done == labels })
	frames, elapsed := panel.count()-before, time.Since(start)
	if limit := int(elapsed/minRedraw) + 2; frames > limit {
		t.Fatalf("%d frames for %d labels in %v, want at most %d", frames, labels, elapsed, limit)
	}
	// The latest progress is drawn: the last frame is the final model's screen.
	mu.Lock()
	want, err := display.Render(ViewOf(last, time.Time{}, "st-1"), panel.Bounds().Size())
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		panel.mu.Lock()
		got := panel.last
		panel.mu.Unlock()
		if reflect.DeepEqual(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the last progress was never drawn")
		}
		time.Sleep(10 * time.Millisecond) // the panel has no event to wait on
	}
	t.Logf("%d labels of progress in %v: %d frames", labels, elapsed, panel.count()-before)
}

// Journal maintenance prunes finished, acknowledged jobs older than journal.keep_days.
func TestMaintainPrunesOldJobs(t *testing.T) {
	s, j := workerStation(t, &fakePrinter{})
	s.cfg.Journal.KeepDays = 7
	if _, _, err := j.Claim(testJob(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Finish("job-1", protocol.JobFailed, "test"); err != nil {
		t.Fatal(err)
	}
	e, _ := j.Get("job-1")
	if err := j.MarkReported("job-1", e.Seq); err != nil {
		t.Fatal(err)
	}
	s.opt.Maintain = time.Hour
	s.opt.Now = func() time.Time { return time.Now().Add(6 * 24 * time.Hour) }
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // one pass
	s.maintain(ctx)
	if e, _ := j.Get("job-1"); e.Pruned {
		t.Fatal("pruned before journal.keep_days")
	}
	s.opt.Now = func() time.Time { return time.Now().Add(8 * 24 * time.Hour) }
	s.maintain(ctx)
	if e, _ := j.Get("job-1"); !e.Pruned {
		t.Fatalf("not pruned after journal.keep_days: %+v", e)
	}
}
