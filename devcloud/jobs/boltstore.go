package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BoltStore keeps jobs in one bbolt file: durable with no server to run, so `make run` stays one
// command. bbolt serializes writers, which makes each Release and ApplyStatus a transaction.
type BoltStore struct {
	db *bolt.DB
	n  notifier
}

var _ Store = (*BoltStore)(nil)

var boltJobs = []byte("jobs")

// boltRecord is a job as stored: the fields Job keeps out of its JSON form ride beside it.
type boltRecord struct {
	Job     Job    `json:"job"`
	Data    []byte `json:"data"`
	LastSeq int    `json:"last_seq"`
}

// OpenBolt opens (or creates) the store at path. Only one process may hold it; another one
// waiting for the file gives up after a few seconds with an error, rather than hanging.
func OpenBolt(path string) (*BoltStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("jobs: open bolt store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{boltJobs, boltCallbacks, boltRecords} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("jobs: bolt store %s: %w", path, err)
	}
	return &BoltStore{db: db}, nil
}

func boltGet(b *bolt.Bucket, id string) (Job, error) {
	v := b.Get([]byte(id))
	if v == nil {
		return Job{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	var r boltRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return Job{}, fmt.Errorf("jobs: bolt record %q: %w", id, err)
	}
	j := r.Job
	j.Data, j.lastSeq = r.Data, r.LastSeq
	return j, nil
}

func boltPut(b *bolt.Bucket, j Job) error {
	v, err := json.Marshal(boltRecord{Job: j, Data: j.Data, LastSeq: j.lastSeq})
	if err != nil {
		return fmt.Errorf("jobs: bolt record %q: %w", j.ID, err)
	}
	return b.Put([]byte(j.ID), v)
}

// update runs fn in a write transaction and wakes waiters if it committed.
func (s *BoltStore) update(fn func(b *bolt.Bucket) error) error {
	err := s.db.Update(func(tx *bolt.Tx) error { return fn(tx.Bucket(boltJobs)) })
	if err == nil {
		s.n.touch()
	}
	return err
}

// Add implements Store.
func (s *BoltStore) Add(j Job) error {
	return s.update(func(b *bolt.Bucket) error {
		if b.Get([]byte(j.ID)) != nil {
			return fmt.Errorf("%w: %q", ErrExists, j.ID)
		}
		return boltPut(b, j)
	})
}

// Get implements Store.
func (s *BoltStore) Get(id string) (Job, error) {
	var j Job
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		j, err = boltGet(tx.Bucket(boltJobs), id)
		return err
	})
	return j, err
}

// List implements Store. It reads every job: the embedded store is for one site's jobs, a
// fleet's belong in PostgreSQL, which indexes them.
func (s *BoltStore) List(user string, states ...string) ([]Job, error) {
	var out []Job
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(boltJobs).ForEach(func(k, _ []byte) error {
			j, err := boltGet(tx.Bucket(boltJobs), string(k))
			if err != nil {
				return err
			}
			if keep(&j, user, states) {
				out = append(out, j)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("jobs: list: %w", err)
	}
	sortJobs(out)
	return out, nil
}

// Release implements Store.
func (s *BoltStore) Release(user, station string, ids []string, now time.Time) ([]Job, error) {
	var out []Job
	err := s.update(func(b *bolt.Bucket) error {
		out = out[:0]
		for _, id := range ids {
			j, err := boltGet(b, id)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if !releasable(&j, user, station, now) {
				continue
			}
			j.State, j.Station, j.Updated = StateReleased, station, now
			if err := boltPut(b, j); err != nil {
				return err
			}
			out = append(out, j)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("jobs: release: %w", err)
	}
	return out, nil
}

// errUnchanged rolls back a transaction that had nothing to write.
var errUnchanged = errors.New("unchanged")

// ApplyStatus implements Store.
func (s *BoltStore) ApplyStatus(station, id, state string, printed, seq int, errMsg string, now time.Time) (Job, bool, error) {
	var j Job
	var refused error
	err := s.update(func(b *bolt.Bucket) error {
		var err error
		if j, err = boltGet(b, id); err != nil {
			return err
		}
		prev := j.State
		changed, err := applyStatus(&j, station, state, printed, seq, errMsg, now)
		if err != nil {
			refused = err
			return errUnchanged
		}
		if !changed {
			return errUnchanged
		}
		if ev := statusEvent(prev, &j); ev != "" {
			if err := boltQueue(b.Tx(), &j, ev, now); err != nil {
				return err
			}
		}
		return boltPut(b, j)
	})
	switch {
	case refused != nil:
		return j, false, refused
	case errors.Is(err, errUnchanged):
		return j, false, nil
	case err != nil:
		return j, false, err
	}
	return j, true, nil
}

// Validated implements Store.
func (s *BoltStore) Validated(id string, labels int, data []byte, warnings []string, reason string, now time.Time) (Job, error) {
	var j Job
	var refused error
	err := s.update(func(b *bolt.Bucket) error {
		var err error
		if j, err = boltGet(b, id); err != nil {
			return err
		}
		if refused = validated(&j, labels, data, warnings, reason, now); refused != nil {
			return errUnchanged
		}
		return boltPut(b, j)
	})
	switch {
	case refused != nil:
		return j, refused
	case err != nil:
		return j, err
	}
	return j, nil
}

// WaitFor implements Store.
func (s *BoltStore) WaitFor(ctx context.Context, id string, cond func(Job) bool) (Job, error) {
	return waitFor(ctx, id, cond, s.Get, s.n.changes, 0)
}

// Close implements Store.
func (s *BoltStore) Close() error { return s.db.Close() }
