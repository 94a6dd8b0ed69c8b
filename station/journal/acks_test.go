package journal

import (
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"labelstation/protocol"
)

// Acknowledge commits nothing itself: the outbox forgets the report at once, the next write
// carries the mark to disk, and a crash before that only makes the report go out again.
func TestAcknowledgeRidesOnTheNextCommit(t *testing.T) {
	var commits atomic.Int64
	path := filepath.Join(t.TempDir(), "journal.db")
	open := func() *Journal {
		j, err := Open(path, Options{Committed: func() { commits.Add(1) }, AckDelay: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	j := open()
	e, _, err := j.Claim(job("a", 1))
	if err != nil {
		t.Fatal(err)
	}
	before := commits.Load()
	if err := j.Acknowledge("a", e.Seq); err != nil {
		t.Fatal(err)
	}
	if got := commits.Load() - before; got != 0 {
		t.Fatalf("Acknowledge made %d commits, want 0", got)
	}
	if u, err := j.Unreported(); err != nil || len(u) != 0 {
		t.Fatalf("Unreported after Acknowledge = %v, %v; want none", u, err)
	}
	if g, err := j.Get("a"); err != nil || g.Reported != e.Seq {
		t.Fatalf("Get after Acknowledge: Reported %d, %v; want %d", g.Reported, err, e.Seq)
	}
	if err := j.Acknowledge("a", e.Seq+1); !errors.Is(err, ErrRange) {
		t.Fatalf("Acknowledge beyond Seq = %v, want ErrRange", err)
	}
	if err := j.Acknowledge("zz", 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Acknowledge(unknown) = %v, want ErrNotFound", err)
	}

	// The next write (a claim) carries the mark in its own commit.
	if _, _, err := j.Claim(job("b", 1)); err != nil {
		t.Fatal(err)
	}
	if got := commits.Load() - before; got != 1 {
		t.Fatalf("%d commits for a claim carrying an acknowledgement, want 1", got)
	}
	crash(t, j) // no Close: nothing more is written
	j = open()
	if g, err := j.Get("a"); err != nil || g.Reported != e.Seq {
		t.Fatalf("after a crash: Reported %d, %v; want %d (written with the claim)", g.Reported, err, e.Seq)
	}

	// A mark no write carried is lost in a crash: the report is sent again, never dropped.
	eb, _ := j.Get("b")
	if err := j.Acknowledge("b", eb.Seq); err != nil {
		t.Fatal(err)
	}
	crash(t, j)
	j = open()
	if u, err := j.Unreported(); err != nil || len(u) != 1 || u[0].Job.ID != "b" {
		t.Fatalf("after a crash with the mark in memory: Unreported %v, %v; want b again", u, err)
	}
	// Close writes what is pending.
	if err := j.Acknowledge("b", eb.Seq); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = open()
	defer j.Close()
	if u, err := j.Unreported(); err != nil || len(u) != 0 {
		t.Fatalf("after Close: Unreported %v, %v; want none", u, err)
	}
}

// With no other write, the acknowledgements get one commit of their own once the journal is
// quiet.
func TestAcknowledgeWrittenWhenQuiet(t *testing.T) {
	commits := make(chan struct{}, 16)
	path := filepath.Join(t.TempDir(), "journal.db")
	j, err := Open(path, Options{Committed: func() { commits <- struct{}{} }, AckDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	e, _, err := j.Claim(job("a", 1))
	if err != nil {
		t.Fatal(err)
	}
	<-commits
	e, err = j.Finish("a", protocol.JobFailed, "test")
	if err != nil {
		t.Fatal(err)
	}
	<-commits
	if err := j.Acknowledge("a", e.Seq); err != nil {
		t.Fatal(err)
	}
	select {
	case <-commits:
	case <-time.After(10 * time.Second):
		t.Fatal("the acknowledgement was never written")
	}
	crash(t, j)
	j, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if g, err := j.Get("a"); err != nil || g.Reported != e.Seq {
		t.Fatalf("after the quiet-time write and a crash: Reported %d, %v; want %d", g.Reported, err, e.Seq)
	}
}

// crash closes the database as a dying process leaves it: what is only in memory is lost.
func crash(t *testing.T, j *Journal) {
	t.Helper()
	j.acks.mu.Lock()
	j.acks.closed = true
	if j.acks.timer != nil {
		j.acks.timer.Stop()
	}
	j.acks.mu.Unlock()
	if err := j.db.Close(); err != nil {
		t.Fatal(err)
	}
}
