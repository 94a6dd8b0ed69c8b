package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ErrNotCancellable is returned by Cancel for a job already released, printing or finished.
var ErrNotCancellable = errors.New("jobs: job cannot be cancelled")

// Callback events: what happened to a job with a callback URL.
const (
	EventPrinted   = StatePrinted
	EventFailed    = StateFailed
	EventCancelled = StateCancelled
	EventExpired   = StateExpired
)

// Callback is one queued webhook call. It is written in the transaction that changed the job,
// so a call is never lost to a crash between the two, and removed once delivered or given up.
type Callback struct {
	// ID is "cb_<job>_<event>": one call per job and event, the receiver's key to drop repeats.
	ID    string `json:"id"`
	Job   string `json:"job"`
	App   string `json:"app"`
	URL   string `json:"url"`
	Event string `json:"event"`
	// Body is the JSON sent, fixed when the call is queued (CallbackBody).
	Body      []byte    `json:"body"`
	Created   time.Time `json:"created"`
	Next      time.Time `json:"next"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error,omitempty"`
}

// CallbackBody is what a callback POSTs: the event and the job as GET /v1/jobs/{id} shows it.
type CallbackBody struct {
	ID      string    `json:"id"`
	Event   string    `json:"event"`
	Created time.Time `json:"created"`
	Job     Job       `json:"job"`
}

// callbackFor builds j's call for event, or reports false when j has no callback URL.
func callbackFor(j *Job, event string, now time.Time) (Callback, bool, error) {
	if j.Callback == "" {
		return Callback{}, false, nil
	}
	id := "cb_" + j.ID + "_" + event
	view := *j
	view.Data = nil
	body, err := json.Marshal(CallbackBody{ID: id, Event: event, Created: now, Job: view})
	if err != nil {
		return Callback{}, false, fmt.Errorf("jobs: callback of %q: %w", j.ID, err)
	}
	return Callback{ID: id, Job: j.ID, App: j.App, URL: j.Callback, Event: event, Body: body, Created: now, Next: now}, true, nil
}

// statusEvent names the event of a status change from prev to j.State, "" when none.
func statusEvent(prev string, j *Job) string {
	if prev != j.State && (j.State == StatePrinted || j.State == StateFailed) {
		return j.State
	}
	return ""
}

// cancel is the rule every store shares for withdrawing a job, applied inside its transaction.
func cancel(j *Job, now time.Time) error {
	switch j.State {
	case StateHeld, StateValidating:
		j.State, j.Updated = StateCancelled, now
		return nil
	case StateReleased, StateClaimed, StatePrinting:
		return fmt.Errorf("%w: job %q is %s at station %q; it can no longer be stopped from the cloud", ErrNotCancellable, j.ID, j.State, j.Station)
	}
	return fmt.Errorf("%w: job %q is already %s", ErrNotCancellable, j.ID, j.State)
}

// expire is the rule every store shares for a held job whose time is up; it reports whether j
// changed.
func expire(j *Job, now time.Time) bool {
	if j.State != StateHeld || !j.expired(now) {
		return false
	}
	j.State, j.Updated = StateExpired, now
	return true
}

// dueFirst orders callbacks by due time, then id, so every store hands them out alike.
func dueFirst(a, b Callback) int {
	if c := a.Next.Compare(b.Next); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// sortCallbacks orders claimed calls as they were queued.
func sortCallbacks(out []Callback) {
	slices.SortFunc(out, func(a, b Callback) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}
