package journal

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"labelstation/protocol"
)

// bucketInFlight holds, per job, the labels sent to the printer whose printing is not confirmed
// yet: the one window no journal can close, since a crash can fall between the printer taking a
// label and the journal recording it. After a restart the station reconciles it against the
// printer's label counter (InFlight.Counter) or, without one, prints those labels again and
// counts them in Entry.Reprinted.
var bucketInFlight = []byte("inflight") // id → InFlight (JSON)

// InFlight is a job's unconfirmed window: labels [0, From) are confirmed printed, labels
// [From, To) may have reached the printer.
type InFlight struct {
	From int `json:"from"`
	To   int `json:"to"`
	// Counter is the printer's label counter read before label From was sent, with every
	// earlier label printed; valid when HasCounter. After a crash, Counter+k means labels
	// [From, From+k) printed.
	Counter    int64 `json:"counter"`
	HasCounter bool  `json:"has_counter,omitempty"`
}

// BeginInFlight records, before any of them is sent, that labels [f.From, f.To) are about to go
// to the printer (one fsynced write). f.From must not be below the confirmed Entry.Printed, and
// f.To not beyond Job.Labels.
func (j *Journal) BeginInFlight(id string, f InFlight) error {
	err := j.write(func(tx *bolt.Tx) error {
		key := []byte(id)
		v := tx.Bucket(bucketJobs).Get(key)
		if v == nil {
			return ErrNotFound
		}
		var r record
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("corrupt record: %w", err)
		}
		switch {
		case finished(r.State):
			return fmt.Errorf("%w (%s)", ErrFinished, r.State)
		case f.From < r.Printed || f.To < f.From || f.To > r.Labels:
			return fmt.Errorf("%w: in flight [%d, %d) with %d of %d printed", ErrRange, f.From, f.To, r.Printed, r.Labels)
		}
		return put(tx.Bucket(bucketInFlight), key, f)
	})
	if err != nil {
		return wrap("begin in flight", id, err)
	}
	return nil
}

// ClaimInFlight is Claim that also records the job's first window of labels as in flight in the
// same commit, so a job can go to the printer after one fsync instead of two. The window is
// recorded (windowed) only when the job is new and no other job is unfinished: an earlier job
// would print first and move the printer's counter past first.Counter. first.From must be 0
// and first.To within Job.Labels. Without windowed, call BeginInFlight before sending.
func (j *Journal) ClaimInFlight(job protocol.Job, first InFlight) (e Entry, existed, windowed bool, err error) {
	return j.claim(job, &first)
}

// InFlight returns the job's unconfirmed window, if one was recorded and not ended.
func (j *Journal) InFlight(id string) (InFlight, bool, error) {
	var f InFlight
	var ok bool
	err := j.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketInFlight).Get([]byte(id))
		if v == nil {
			return nil
		}
		ok = true
		if err := json.Unmarshal(v, &f); err != nil {
			return fmt.Errorf("corrupt in-flight record: %w", err)
		}
		return nil
	})
	if err != nil {
		return InFlight{}, false, wrap("in flight", id, err)
	}
	return f, ok, nil
}

// EndInFlight drops the job's unconfirmed window once every label in it is confirmed (and
// recorded with Progress) or the job is finished. Ending a window that is not there is a no-op.
func (j *Journal) EndInFlight(id string) error {
	if _, ok, err := j.InFlight(id); err == nil && !ok {
		return nil // nothing to end: no commit, no fsync
	}
	err := j.write(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketInFlight).Delete([]byte(id))
	})
	if err != nil {
		return wrap("end in flight", id, err)
	}
	return nil
}

// AddReprinted adds n labels to the job's Reprinted count, reported in its status.
func (j *Journal) AddReprinted(id string, n int) (Entry, error) {
	var e Entry
	err := j.update(id, nil, func(r *record) (bool, error) {
		if finished(r.State) {
			return false, fmt.Errorf("%w (%s)", ErrFinished, r.State)
		}
		if n <= 0 {
			return false, nil
		}
		r.Reprinted += n
		return true, nil
	}, &e)
	if err != nil {
		return Entry{}, wrap("add reprinted", id, err)
	}
	return e, nil
}

// Settle records that the printer accepted labels [0, printed) and ends the job's in-flight
// window, in one commit: what a run does once its last window is confirmed. printed follows
// Progress's rules.
func (j *Journal) Settle(id string, printed int) (Entry, error) {
	e, err := j.progress(id, printed, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketInFlight).Delete([]byte(id))
	})
	if err != nil {
		return Entry{}, wrap("settle", id, err)
	}
	return e, nil
}
