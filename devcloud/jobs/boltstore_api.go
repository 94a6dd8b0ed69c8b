package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

var boltCallbacks = []byte("callbacks")

// boltQueue queues j's call for event in tx unless one is queued already.
func boltQueue(tx *bolt.Tx, j *Job, event string, now time.Time) error {
	cb, ok, err := callbackFor(j, event, now)
	if err != nil || !ok {
		return err
	}
	b := tx.Bucket(boltCallbacks)
	if b.Get([]byte(cb.ID)) != nil {
		return nil
	}
	return boltPutCallback(b, cb)
}

func boltPutCallback(b *bolt.Bucket, cb Callback) error {
	v, err := json.Marshal(cb)
	if err != nil {
		return fmt.Errorf("jobs: bolt callback %q: %w", cb.ID, err)
	}
	return b.Put([]byte(cb.ID), v)
}

// Cancel implements Store.
func (s *BoltStore) Cancel(id string, now time.Time) (Job, error) {
	var j Job
	var refused error
	err := s.update(func(b *bolt.Bucket) error {
		var err error
		if j, err = boltGet(b, id); err != nil {
			return err
		}
		if refused = cancel(&j, now); refused != nil {
			return errUnchanged
		}
		if err := boltQueue(b.Tx(), &j, EventCancelled, now); err != nil {
			return err
		}
		return boltPut(b, j)
	})
	switch {
	case refused != nil:
		return j, refused
	case err != nil:
		return j, fmt.Errorf("jobs: cancel %q: %w", id, err)
	}
	return j, nil
}

// Expire implements Store. It reads every job, as List does.
func (s *BoltStore) Expire(now time.Time) ([]Job, error) {
	var out []Job
	err := s.update(func(b *bolt.Bucket) error {
		out = out[:0]
		var due []Job
		err := b.ForEach(func(k, _ []byte) error {
			j, err := boltGet(b, string(k))
			if err != nil {
				return err
			}
			if expire(&j, now) {
				due = append(due, j)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(due) == 0 {
			return errUnchanged
		}
		for _, j := range due {
			if err := boltQueue(b.Tx(), &j, EventExpired, now); err != nil {
				return err
			}
			if err := boltPut(b, j); err != nil {
				return err
			}
		}
		out = due
		return nil
	})
	if err != nil && !errors.Is(err, errUnchanged) {
		return nil, fmt.Errorf("jobs: expire: %w", err)
	}
	sortJobs(out)
	return out, nil
}

// ClaimCallbacks implements Store.
func (s *BoltStore) ClaimCallbacks(now time.Time, lease time.Duration, limit int) ([]Callback, error) {
	var due []Callback
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(boltCallbacks)
		due = due[:0]
		err := b.ForEach(func(k, v []byte) error {
			var cb Callback
			if err := json.Unmarshal(v, &cb); err != nil {
				return fmt.Errorf("jobs: bolt callback %q: %w", k, err)
			}
			if !cb.Next.After(now) {
				due = append(due, cb)
			}
			return nil
		})
		if err != nil {
			return err
		}
		slices.SortFunc(due, dueFirst)
		if len(due) > limit {
			due = due[:limit]
		}
		for _, cb := range due {
			cb.Next = now.Add(lease)
			if err := boltPutCallback(b, cb); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("jobs: claim callbacks: %w", err)
	}
	return due, nil
}

// RetryCallback implements Store.
func (s *BoltStore) RetryCallback(id string, attempts int, next time.Time, lastErr string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(boltCallbacks)
		v := b.Get([]byte(id))
		if v == nil {
			return fmt.Errorf("%w: callback %q", ErrNotFound, id)
		}
		var cb Callback
		if err := json.Unmarshal(v, &cb); err != nil {
			return err
		}
		cb.Attempts, cb.Next, cb.LastError = attempts, next, lastErr
		return boltPutCallback(b, cb)
	})
	if err != nil {
		return fmt.Errorf("jobs: retry callback: %w", err)
	}
	return nil
}

// DeleteCallback implements Store.
func (s *BoltStore) DeleteCallback(id string) error {
	err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(boltCallbacks).Delete([]byte(id)) })
	if err != nil {
		return fmt.Errorf("jobs: delete callback: %w", err)
	}
	return nil
}
