// Package jobs is devcloud's print job service: the Submit Print Job HTTP API, the
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
	// A held job its owner withdrew, or one nobody released before Expires.
	StateCancelled = "cancelled"
	StateExpired   = "expired"
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
	// Expires is when a held job lapses: no station gets it after that. Zero: never.
	Expires time.Time `json:"expires,omitzero"`
	// App is the application (OAuth client) that submitted the job; "" when the token named none.
	App string `json:"app,omitempty"`
	// Callback is the webhook told when the job is printed, failed, cancelled or expired.
	Callback string `json:"callback,omitempty"`
	// lastSeq is the highest status sequence applied; older or repeated reports are ignored.
	lastSeq int
}

// ErrNotFound is returned for an unknown job id.
var ErrNotFound = errors.New("jobs: job not found")

// ErrExists is returned by Add for a job id already stored.
var ErrExists = errors.New("jobs: job already exists")

// Store keeps jobs, their payloads and the status they reached. Every implementation gives the
// same guarantees, checked by one conformance suite: Release hands a held job to exactly one
// station even when releases race, and ApplyStatus is idempotent per (job, sequence).
//
// Methods take no context: they are called from MQTT handlers that have none, so durable
// implementations bound each call with their own timeout.
type Store interface {
	// Add stores a new job; an id already stored is ErrExists.
	Add(j Job) error
	// Get returns a job with its payload; an unknown id is ErrNotFound.
	Get(id string) (Job, error)
	// List returns the user's jobs (every user's when user is "") in the given states (all
	// when none), oldest first.
	List(user string, states ...string) ([]Job, error)
	// Release moves the user's held jobs among ids to StateReleased for station and returns
	// them; ids that are not the user's held jobs are skipped. A job already released to this
	// same station and not yet claimed is returned again: a station that repeats a release
	// whose reply it never heard (a replica died between storing and sending) gets its jobs.
	Release(user, station string, ids []string, now time.Time) ([]Job, error)
	// ApplyStatus applies a station's status report. A report from another station than the
	// job was released to is an error; one with a sequence not above the last applied, or for
	// a printed job, changes nothing (changed is false). A change to printed or failed queues
	// the job's Callback call in the same transaction.
	ApplyStatus(station, id, state string, printed, seq int, errMsg string, now time.Time) (j Job, changed bool, err error)
	// Validated ends the validation of a job: held with its label count and normalised data,
	// or rejected with the reason when reason is not empty. A job not validating is an error.
	Validated(id string, labels int, data []byte, warnings []string, reason string, now time.Time) (Job, error)
	// WaitFor returns job id once cond holds for it (the status page and tests follow a job so).
	WaitFor(ctx context.Context, id string, cond func(Job) bool) (Job, error)
	// Cancel withdraws a held or validating job; a job in another state is ErrNotCancellable.
	// When the job has a Callback, its "cancelled" call is queued in the same transaction.
	Cancel(id string, now time.Time) (Job, error)
	// Expire moves every held job whose Expires is not after now to StateExpired and returns
	// them, queueing their "expired" calls in the same transaction.
	Expire(now time.Time) ([]Job, error)
	// ClaimCallbacks returns up to limit queued calls due at now, oldest first, and moves each
	// one's Next to now+lease, so another replica does not send it meanwhile.
	ClaimCallbacks(now time.Time, lease time.Duration, limit int) ([]Callback, error)
	// RetryCallback records a failed attempt: the call is due again at next.
	RetryCallback(id string, attempts int, next time.Time, lastErr string) error
	// DeleteCallback removes a call that was delivered or given up.
	DeleteCallback(id string) error
	// Close releases the store's files or connections.
	Close() error
}

// applyStatus is the status rule every store shares, applied to a job read inside the store's
// transaction. It reports whether j changed.
func applyStatus(j *Job, station, state string, printed, seq int, errMsg string, now time.Time) (bool, error) {
	if j.Station != station {
		return false, fmt.Errorf("jobs: job %q was not released to station %q", j.ID, station)
	}
	if seq <= j.lastSeq || j.State == StatePrinted {
		return false, nil
	}
	j.lastSeq, j.State, j.Printed, j.Error, j.Updated = seq, state, printed, errMsg, now
	return true, nil
}

// releasable reports whether Release hands j to station at now. A held job past its expiry
// stays where it is until the sweeper marks it; a repeat of a release made before then is
// answered, since the station already has the job.
func releasable(j *Job, user, station string, now time.Time) bool {
	return j.User == user && (j.State == StateHeld && !j.expired(now) || j.State == StateReleased && j.Station == station)
}

// expired reports whether j's hold time is over at now.
func (j *Job) expired(now time.Time) bool { return !j.Expires.IsZero() && !now.Before(j.Expires) }

// keep reports whether j is listed for user and states.
func keep(j *Job, user string, states []string) bool {
	return (user == "" || j.User == user) && (len(states) == 0 || contains(states, j.State))
}

// sortJobs orders jobs oldest first, by id among equals, so every store lists alike.
func sortJobs(out []Job) {
	sort.Slice(out, func(a, b int) bool {
		if out[a].Created.Equal(out[b].Created) {
			return out[a].ID < out[b].ID
		}
		return out[a].Created.Before(out[b].Created)
	})
}

// notifier wakes WaitFor callers when this process changed the store.
type notifier struct {
	mu sync.Mutex
	ch chan struct{} // closed and replaced on every change
}

// changes returns a channel closed at the next touch.
func (n *notifier) changes() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

func (n *notifier) touch() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch != nil {
		close(n.ch)
	}
	n.ch = make(chan struct{})
}

// waitFor polls get whenever changes() fires, and every poll interval when poll > 0 (another
// process may change a shared store without telling this one).
func waitFor(ctx context.Context, id string, cond func(Job) bool, get func(string) (Job, error), changes func() <-chan struct{}, poll time.Duration) (Job, error) {
	var tick <-chan time.Time
	if poll > 0 {
		t := time.NewTicker(poll)
		defer t.Stop()
		tick = t.C
	}
	for {
		ch := changes() // before the read, so a change in between is not missed
		cur, err := get(id)
		if err == nil && cond(cur) {
			return cur, nil
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return cur, err
		}
		select {
		case <-ch:
		case <-tick:
		case <-ctx.Done():
			return cur, fmt.Errorf("jobs: waiting for job %q (now %q): %w", id, cur.State, ctx.Err())
		}
	}
}

// validated is the rule every store shares for ending a job's validation, applied to a job
// read inside the store's transaction.
func validated(j *Job, labels int, data []byte, warnings []string, reason string, now time.Time) error {
	if j.State != StateValidating {
		return fmt.Errorf("jobs: job %q is %s, not %s", j.ID, j.State, StateValidating)
	}
	if reason != "" {
		j.State, j.Error, j.Data = StateRejected, reason, nil
	} else {
		j.State, j.Labels, j.Data, j.Warnings = StateHeld, labels, data, warnings
	}
	j.Updated = now
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
