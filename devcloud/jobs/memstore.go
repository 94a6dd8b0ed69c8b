package jobs

import (
	"context"
	"fmt"
	"sync"
	"time"

	"labelstation/devcloud/records"
)

// MemStore keeps jobs in memory: tests and throw-away demos, where a restart may start empty.
type MemStore struct {
	*records.Mem
	mu   sync.Mutex
	jobs map[string]*Job
	cbs  map[string]*Callback
	n    notifier
}

var _ Store = (*MemStore)(nil)

// NewMemStore returns an empty in-memory store.
func NewMemStore() *MemStore {
	return &MemStore{Mem: records.NewMem(), jobs: map[string]*Job{}, cbs: map[string]*Callback{}}
}

// WaitFor implements Store.
func (s *MemStore) WaitFor(ctx context.Context, id string, cond func(Job) bool) (Job, error) {
	return waitFor(ctx, id, cond, s.Get, s.n.changes, 0)
}

// Add implements Store.
func (s *MemStore) Add(j Job) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.jobs[j.ID]; ok {
		return fmt.Errorf("%w: %q", ErrExists, j.ID)
	}
	j.Data = append([]byte(nil), j.Data...)
	s.jobs[j.ID] = &j
	s.n.touch()
	return nil
}

// Get implements Store.
func (s *MemStore) Get(id string) (Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok {
		return Job{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return *j, nil
}

// List implements Store.
func (s *MemStore) List(user string, states ...string) ([]Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Job
	for _, j := range s.jobs {
		if keep(j, user, states) {
			out = append(out, *j)
		}
	}
	sortJobs(out)
	return out, nil
}

// Release implements Store.
func (s *MemStore) Release(user, station string, ids []string, now time.Time) ([]Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Job
	for _, id := range ids {
		j, ok := s.jobs[id]
		if !ok || !releasable(j, user, station, now) {
			continue
		}
		j.State, j.Station, j.Updated = StateReleased, station, now
		out = append(out, *j)
	}
	if len(out) > 0 {
		s.n.touch()
	}
	return out, nil
}

// ApplyStatus implements Store.
func (s *MemStore) ApplyStatus(station, id, state string, printed, seq int, errMsg string, now time.Time) (Job, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok {
		return Job{}, false, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	next := *j
	changed, err := applyStatus(&next, station, state, printed, seq, errMsg, now)
	if changed {
		if ev := statusEvent(j.State, &next); ev != "" {
			if err := s.queueLocked(&next, ev, now); err != nil {
				return *j, false, err
			}
		}
		*j = next
		s.n.touch()
	}
	return next, changed, err
}

// Validated implements Store.
func (s *MemStore) Validated(id string, labels int, data []byte, warnings []string, reason string, now time.Time) (Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok {
		return Job{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if err := validated(j, labels, data, warnings, reason, now); err != nil {
		return *j, err
	}
	s.n.touch()
	return *j, nil
}

// Close implements Store.
func (s *MemStore) Close() error { return nil }
