package journal

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Acknowledgements of status reports are the one write that nothing needs on disk at once: the
// Reported mark only says which reports need not be sent again. Losing it in a crash makes the
// station send those reports once more, and the cloud's job service recognises a report by
// (job id, state, seq), so a repeat changes nothing; a report is never dropped, since the mark
// only moves after an acknowledgement. So Acknowledge keeps the mark in memory, Unreported and
// Get see it at once, and it reaches the disk inside the next commit another write makes (a
// claim, a label's progress) — or, when the journal stays quiet for ackDelay, in a commit of its
// own. Each acknowledgement used to be a commit of its own (two fsyncs), queued on bbolt's
// single writer ahead of the next tap's claim.

// defaultAckDelay is how long acknowledgements wait in memory for another write to carry them.
const defaultAckDelay = time.Second

// acks holds the acknowledgements not yet written.
type acks struct {
	mu      sync.Mutex
	pending map[string]int // job id → highest acknowledged seq
	timer   *time.Timer
	last    time.Time // when the journal last committed
	err     error     // the last quiet-time flush's failure, returned by the next Acknowledge
	closed  bool
}

// Acknowledge is MarkReported without a commit of its own: the mark is durable once the next
// commit (any write, or the quiet-time flush, or Close) is. The same errors as MarkReported:
// ErrNotFound for an unknown job, ErrRange for a seq never issued; and the failure of an
// earlier flush, whose marks stay pending for the next commit.
func (j *Journal) Acknowledge(id string, seq int) error {
	err := j.db.View(func(tx *bolt.Tx) error {
		key := []byte(id)
		v := tx.Bucket(bucketJobs).Get(key)
		if v == nil {
			t, ok, err := getTombstone(tx, key)
			switch {
			case err != nil:
				return err
			case !ok:
				return ErrNotFound
			case seq > t.Seq:
				return fmt.Errorf("%w: seq %d was never issued (latest %d)", ErrRange, seq, t.Seq)
			}
			seq = 0 // a tombstone is fully reported by construction
			return nil
		}
		var r record
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("corrupt record: %w", err)
		}
		if seq > r.Seq {
			return fmt.Errorf("%w: seq %d was never issued (latest %d)", ErrRange, seq, r.Seq)
		}
		if seq <= r.Reported {
			seq = 0
		}
		return nil
	})
	if err != nil {
		return wrap("acknowledge", id, err)
	}
	a := &j.acks
	a.mu.Lock()
	defer a.mu.Unlock()
	if seq > a.pending[id] {
		if a.pending == nil {
			a.pending = map[string]int{}
		}
		a.pending[id] = seq
		if a.timer == nil && !a.closed {
			a.timer = time.AfterFunc(j.ackDelay, j.flushQuiet)
		}
	}
	err, a.err = a.err, nil
	if err != nil {
		return fmt.Errorf("journal: acknowledgements not yet written: %w", err)
	}
	return nil
}

// acknowledged is the highest seq acknowledged for id and not yet written.
func (j *Journal) acknowledged(id string) int {
	j.acks.mu.Lock()
	defer j.acks.mu.Unlock()
	return j.acks.pending[id]
}

// withAcks shows the pending acknowledgement in e.
func (j *Journal) withAcks(e *Entry) {
	if s := j.acknowledged(e.Job.ID); s > e.Reported {
		e.Reported = s
	}
}

// applyAcks writes the pending acknowledgements in tx and forgets them once tx is committed; a
// rolled-back tx leaves them pending. A job that is gone or unreadable is skipped: it has
// nothing left to report, or Unreported fails on it anyway.
func (j *Journal) applyAcks(tx *bolt.Tx) error {
	a := &j.acks
	a.mu.Lock()
	batch := make(map[string]int, len(a.pending))
	for id, seq := range a.pending {
		batch[id] = seq
	}
	a.mu.Unlock()
	jobs := tx.Bucket(bucketJobs)
	for id, seq := range batch {
		v := jobs.Get([]byte(id))
		if v == nil {
			continue
		}
		var r record
		if json.Unmarshal(v, &r) != nil || seq <= r.Reported {
			continue
		}
		r.Reported = min(seq, r.Seq)
		if err := put(jobs, []byte(id), r); err != nil {
			return err
		}
	}
	tx.OnCommit(func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.last = time.Now()
		for id, seq := range batch {
			if a.pending[id] <= seq {
				delete(a.pending, id)
			}
		}
	})
	return nil
}

// flushQuiet writes the pending acknowledgements once the journal has not committed for
// ackDelay; while it keeps committing, its commits carry them.
func (j *Journal) flushQuiet() {
	a := &j.acks
	a.mu.Lock()
	a.timer = nil
	if a.closed || len(a.pending) == 0 {
		a.mu.Unlock()
		return
	}
	if wait := j.ackDelay - time.Since(a.last); wait > 0 {
		a.timer = time.AfterFunc(wait, j.flushQuiet)
		a.mu.Unlock()
		return
	}
	a.mu.Unlock()
	if err := j.write(func(*bolt.Tx) error { return nil }); err != nil {
		a.mu.Lock()
		a.err = err
		if a.timer == nil && !a.closed {
			a.timer = time.AfterFunc(j.ackDelay, j.flushQuiet)
		}
		a.mu.Unlock()
	}
}

// closeAcks stops the quiet-time flush and writes what is pending.
func (j *Journal) closeAcks() error {
	a := &j.acks
	a.mu.Lock()
	a.closed = true
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
	n := len(a.pending)
	a.mu.Unlock()
	if n == 0 {
		return nil
	}
	if err := j.write(func(*bolt.Tx) error { return nil }); err != nil {
		return fmt.Errorf("journal: acknowledgements: %w", err)
	}
	return nil
}
