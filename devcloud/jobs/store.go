// Package jobs is devcloud's print job service: the Submit Print Job HTTP API (seed 000), the
// store of held jobs, and the MQTT side that answers stations' badge lookups and releases.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Job states in the cloud.
const (
	StateHeld     = "held"     // waiting for its owner to tap a badge
	StateReleased = "released" // sent to a station, not yet claimed
	StateClaimed  = "claimed"  // journaled by the station
	StatePrinting = "printing"
	StatePrinted  = "printed"
	StateFailed   = "failed"
	// A large submission is validated after the request: validating, then held or rejected
	// (Error says why). Stations never see either.
	StateValidating = "validating"
	StateRejected   = "rejected"
)

// Job is a submitted job.
type Job struct {
	ID         string `json:"id"`
	Title      string `json:"title"`
	Layout     string `json:"format"`
	User       string `json:"user"`
	DataFormat string `json:"data_format"`
	Data       []byte `json:"-"`
	Labels     int    `json:"labels"`
	State      string `json:"state"`
	Station    string `json:"station,omitempty"`
	Printed    int    `json:"printed"`
	Error      string `json:"error,omitempty"`
	// Warnings say where text will be cut to fit its box (records and elements).
	Warnings []string  `json:"warnings,omitempty"`
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
	// lastSeq is the highest status sequence applied; older or repeated reports are ignored.
	lastSeq int
}

// ErrNotFound is returned for an unknown job id.
var ErrNotFound = errors.New("jobs: job not found")

// Store holds jobs in memory; devcloud is a development cloud, restarts start empty.
type Store struct {
	mu      sync.Mutex
	jobs    map[string]*Job
	changed chan struct{} // closed and replaced on every change
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{jobs: map[string]*Job{}, changed: make(chan struct{})} }

// touch wakes the waiters; s.mu is held.
func (s *Store) touch() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// WaitFor returns job id once cond holds for it (the status page and tests follow a job this way).
func (s *Store) WaitFor(ctx context.Context, id string, cond func(Job) bool) (Job, error) {
	for {
		s.mu.Lock()
		j, ok := s.jobs[id]
		var cur Job
		if ok {
			cur = *j
		}
		ch := s.changed
		s.mu.Unlock()
		if ok && cond(cur) {
			return cur, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return cur, fmt.Errorf("jobs: waiting for job %q (now %q): %w", id, cur.State, ctx.Err())
		}
	}
}

// Add stores a new job.
func (s *Store) Add(j Job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jobs[j.ID] = &j
	s.touch()
}

// Get returns a copy of a job.
func (s *Store) Get(id string) (Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok {
		return Job{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return *j, nil
}

// List returns the user's jobs in the given states (all states when none), oldest first.
func (s *Store) List(user string, states ...string) []Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Job
	for _, j := range s.jobs {
		if user != "" && j.User != user {
			continue
		}
		if len(states) > 0 && !contains(states, j.State) {
			continue
		}
		out = append(out, *j)
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].Created.Equal(out[b].Created) {
			return out[a].ID < out[b].ID
		}
		return out[a].Created.Before(out[b].Created)
	})
	return out
}

// Release moves the user's held jobs among ids to StateReleased for station and returns them.
func (s *Store) Release(user, station string, ids []string, now time.Time) []Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Job
	for _, id := range ids {
		j, ok := s.jobs[id]
		if !ok || j.User != user || j.State != StateHeld {
			continue
		}
		j.State, j.Station, j.Updated = StateReleased, station, now
		out = append(out, *j)
	}
	if len(out) > 0 {
		s.touch()
	}
	return out
}

// ApplyStatus applies a station's status report. Reports are idempotent: one from another
// station than the job was released to, or with a sequence not above the last, changes nothing.
func (s *Store) ApplyStatus(station, id, state string, printed, seq int, errMsg string, now time.Time) (Job, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok {
		return Job{}, false, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if j.Station != station {
		return *j, false, fmt.Errorf("jobs: job %q was not released to station %q", id, station)
	}
	if seq <= j.lastSeq || j.State == StatePrinted {
		return *j, false, nil
	}
	j.lastSeq, j.State, j.Printed, j.Error, j.Updated = seq, state, printed, errMsg, now
	s.touch()
	return *j, true, nil
}

// Validated ends the validation of a job: held with its label count and normalised data, or
// rejected with the reason when reason is not empty.
func (s *Store) Validated(id string, labels int, data []byte, warnings []string, reason string, now time.Time) (Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok {
		return Job{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if j.State != StateValidating {
		return *j, fmt.Errorf("jobs: job %q is %s, not %s", id, j.State, StateValidating)
	}
	if reason != "" {
		j.State, j.Error, j.Data = StateRejected, reason, nil
	} else {
		j.State, j.Labels, j.Data, j.Warnings = StateHeld, labels, data, warnings
	}
	j.Updated = now
	s.touch()
	return *j, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
