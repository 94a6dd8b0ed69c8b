package station

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"labelstation/drivers/printer/simprinter"
	"labelstation/protocol"
	"labelstation/station/journal"
	"labelstation/station/trust"
)

// commitLog names the journal method behind each commit, from the Committed hook's stack.
type commitLog struct {
	mu  sync.Mutex
	ops []string
}

func (c *commitLog) committed() {
	pc := make([]uintptr, 32)
	frames := runtime.CallersFrames(pc[:runtime.Callers(2, pc)])
	op := "?"
	for {
		f, more := frames.Next()
		if name, ok := strings.CutPrefix(f.Function, "labelstation/station/journal.(*Journal)."); ok && name != "write" && name != "update" {
			op = name
		}
		if !more {
			break
		}
	}
	c.mu.Lock()
	c.ops = append(c.ops, op)
	c.mu.Unlock()
}

func (c *commitLog) since(n int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.ops[n:]...)
}

func (c *commitLog) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ops)
}

// modTimes maps each file of dir other than the journal to its modification time.
func modTimes(t *testing.T, dir string) map[string]time.Time {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]time.Time{}
	for _, de := range des {
		if de.Name() == "journal.db" {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			t.Fatal(err)
		}
		out[de.Name()] = fi.ModTime()
	}
	return out
}

// Between a tap and its first label the station writes one journal commit — the claim, which
// carries the first in-flight window — and nothing else to disk, although the previous job's
// status acknowledgements and the job message's replay-window record arrive meanwhile, as they
// do when taps follow each other. The acknowledgements ride on the claim's commit.
func TestTapToFirstLabelCommits(t *testing.T) {
	var log commitLog
	dir := t.TempDir()
	firstLabel := make(chan []string, 1)
	var atTap int
	var tapMu sync.Mutex
	sp, err := simprinter.Listen("127.0.0.1:0", simprinter.Options{Counter: 100, OnLabel: func(_ int64, zpl string) {
		if strings.Contains(zpl, "S00001") {
			tapMu.Lock()
			n := atTap
			tapMu.Unlock()
			select {
			case firstLabel <- log.since(n):
			default:
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	j, err := journal.Open(filepath.Join(dir, "journal.db"), journal.Options{Committed: log.committed, AckDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	w, err := trust.OpenWindow(filepath.Join(dir, trust.WindowFile))
	if err != nil {
		t.Fatal(err)
	}
	s := simStation(t, sp, j)
	s.cfg.Station.StateDir = dir
	s.cfg.Release.Mode = "all"

	// The previous tap's job: printed, its statuses not yet acknowledged.
	prev, _, err := j.Claim(serialJob(t, "prev", 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.printJob(t.Context(), prev); err != nil {
		t.Fatal(err)
	}
	if prev, err = j.Finish("prev", protocol.JobPrinted, ""); err != nil {
		t.Fatal(err)
	}
	// Drain the labels of "prev" out of the first-label check: it is job "next"'s S00001 that
	// counts, so reset after "prev" printed.
	select {
	case <-firstLabel:
	case <-time.After(10 * time.Second):
		t.Fatal("the previous job's label never reached the printer")
	}
	s.first.idle.Store(true)
	files := modTimes(t, dir)

	// The tap: one request, answered by the fake cloud.
	tapMu.Lock()
	atTap = log.len()
	tapMu.Unlock()
	s.cloud = &allCloud{rep: protocol.ReleaseReply{User: &protocol.User{ID: "alice", Name: "Alice"}, Jobs: twoJobs[:1], Released: []string{"next"}}}
	s.do(context.Background(), DoLookup{Badge: "h1", ReleaseAll: true})
	s.bg.Wait()
	// The job message arrives with the acknowledgement of the previous job's last status; the
	// link claims the job, acknowledges the message, then records its id in the replay window.
	if err := (outbox{s}).MarkReported("prev", prev.Seq); err != nil {
		t.Fatal(err)
	}
	next := serialJob(t, "next", 1)
	if err := s.onJob(next); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	settle, err := w.Admit(protocol.StationTopic("st-1", protocol.LeafJob),
		protocol.Claims{JTI: "m-next", Topic: protocol.LeafJob, IAT: now.Unix(), EXP: now.Add(time.Hour).Unix()}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if err := settle(true); err != nil {
		t.Fatal(err)
	}
	e, err := j.Get("next")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.printJob(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	var ops []string
	select {
	case ops = <-firstLabel:
	case <-time.After(10 * time.Second):
		t.Fatal("the job's label never reached the printer")
	}
	if len(ops) != 1 || ops[0] != "ClaimInFlight" {
		t.Errorf("journal commits between the tap and the first label: %v, want [ClaimInFlight]", ops)
	}
	for name, mt := range modTimes(t, dir) {
		if old, ok := files[name]; !ok || !old.Equal(mt) {
			t.Errorf("%s written between the tap and the first label", name)
		}
	}
	// The acknowledgement is in the journal's file with the claim: the outbox is empty for
	// "prev", and it stays so after a restart (the journal test shows the crash case).
	u, err := j.Unreported()
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range u {
		if x.Job.ID == "prev" {
			t.Errorf("prev still in the outbox after its acknowledgement: %+v", x)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

// The worker may find a job pending as soon as its claim's commit is visible, before the claim
// returns (a slow card's sync comes after): it must still send the window the claim recorded,
// not reconcile it as a crash's and record it again.
func TestWorkerDuringClaimCommitUsesItsWindow(t *testing.T) {
	var log commitLog
	labels := make(chan []string, 4)
	sp, err := simprinter.Listen("127.0.0.1:0", simprinter.Options{Counter: 7, OnLabel: func(int64, string) {
		select {
		case labels <- log.since(0):
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	var s *Station
	var j *journal.Journal
	printed := make(chan error, 1)
	var once sync.Once
	hook := func() {
		log.committed()
		once.Do(func() {
			// The claim's commit is visible: the worker starts on the job now, while the
			// claim is still in its sync.
			go func() {
				e, err := j.Get("x")
				if err == nil {
					err = s.printJob(context.Background(), e)
				}
				printed <- err
			}()
			time.Sleep(50 * time.Millisecond)
		})
	}
	j, err = journal.Open(filepath.Join(t.TempDir(), "journal.db"), journal.Options{Committed: hook})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	s = simStation(t, sp, j)
	s.first.idle.Store(true)
	if _, _, err := s.claim(serialJob(t, "x", 1)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-printed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the worker never printed")
	}
	if ops := <-labels; len(ops) != 1 || ops[0] != "ClaimInFlight" {
		t.Errorf("journal commits before the first label: %v, want [ClaimInFlight]", ops)
	}
}
