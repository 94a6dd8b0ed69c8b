package jobs

import (
	"errors"
	"net/http"
	"time"

	"labelstation/internal/supervise"
	"labelstation/protocol"
)

// busyError tells a station the store had no connection free in time; the user may tap again
// (the station repeats a request that got no answer).
var busyError = &protocol.Error{Code: protocol.CodeInternal, Message: "the cloud is busy; try again"}

// replyError is what a station hears when the store failed.
func replyError(err error) *protocol.Error {
	if errors.Is(err, ErrBusy) {
		return busyError
	}
	return storeError
}

// storeFailed answers an HTTP request whose store call failed: 503 with Retry-After when the
// store was busy, so clients come back instead of the server queueing without end; 500 else.
func (s *Service) storeFailed(w http.ResponseWriter, r *http.Request, err error, msg string) {
	if errors.Is(err, ErrBusy) {
		w.Header().Set("Retry-After", "1")
		s.fail(w, r, http.StatusServiceUnavailable, "busy", "%s: the server is busy; try again", msg)
		return
	}
	s.log.Error("jobs: store", "err", err)
	s.fail(w, r, http.StatusInternalServerError, "server_error", "%s", msg)
}

// untilNotBusy calls fn again while the store is busy: for work no one can repeat, such as
// recording the end of a background validation.
func untilNotBusy[T any](fn func() (T, error)) (T, error) {
	b := supervise.Backoff{Min: 50 * time.Millisecond, Max: 2 * time.Second}
	for {
		v, err := fn()
		if !errors.Is(err, ErrBusy) {
			return v, err
		}
		time.Sleep(b.Next())
	}
}
