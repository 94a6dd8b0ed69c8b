package jobs

import (
	"fmt"
	"slices"
	"time"
)

// queueLocked queues j's call for event unless one is queued already.
func (s *MemStore) queueLocked(j *Job, event string, now time.Time) error {
	cb, ok, err := callbackFor(j, event, now)
	if err != nil || !ok {
		return err
	}
	if _, dup := s.cbs[cb.ID]; !dup {
		s.cbs[cb.ID] = &cb
	}
	return nil
}

// Cancel implements Store.
func (s *MemStore) Cancel(id string, now time.Time) (Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok {
		return Job{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	next := *j
	if err := cancel(&next, now); err != nil {
		return *j, err
	}
	if err := s.queueLocked(&next, EventCancelled, now); err != nil {
		return *j, err
	}
	*j = next
	s.n.touch()
	return next, nil
}

// Expire implements Store.
func (s *MemStore) Expire(now time.Time) ([]Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Job
	for _, j := range s.jobs {
		next := *j
		if !expire(&next, now) {
			continue
		}
		if err := s.queueLocked(&next, EventExpired, now); err != nil {
			return out, err
		}
		*j = next
		out = append(out, next)
	}
	sortJobs(out)
	if len(out) > 0 {
		s.n.touch()
	}
	return out, nil
}

// ClaimCallbacks implements Store.
func (s *MemStore) ClaimCallbacks(now time.Time, lease time.Duration, limit int) ([]Callback, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var due []Callback
	for _, cb := range s.cbs {
		if !cb.Next.After(now) {
			due = append(due, *cb)
		}
	}
	slices.SortFunc(due, dueFirst)
	if len(due) > limit {
		due = due[:limit]
	}
	sortCallbacks(due)
	for _, cb := range due {
		s.cbs[cb.ID].Next = now.Add(lease)
	}
	return due, nil
}

// RetryCallback implements Store.
func (s *MemStore) RetryCallback(id string, attempts int, next time.Time, lastErr string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cb, ok := s.cbs[id]
	if !ok {
		return fmt.Errorf("%w: callback %q", ErrNotFound, id)
	}
	cb.Attempts, cb.Next, cb.LastError = attempts, next, lastErr
	return nil
}

// DeleteCallback implements Store.
func (s *MemStore) DeleteCallback(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.cbs, id)
	return nil
}
