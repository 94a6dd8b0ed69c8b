package jobs

import (
	"errors"
	"sync/atomic"
	"time"
)

// ErrBusy is returned when the store has no connection free for a call and enough callers are
// already waiting: the caller answers "busy, try again" (HTTP 503, an internal error to a
// station, no acknowledgement of a status) instead of queueing without end.
var ErrBusy = errors.New("jobs: store busy")

// gate bounds a store's concurrent calls to its connections, with a bounded queue in front. A
// burst of MQTT messages (paho runs each handler in its own goroutine) then waits its turn for
// at most wait, and callers beyond the queue are refused at once.
type gate struct {
	slots   chan struct{}
	waiting atomic.Int64
	queue   int64
	wait    time.Duration
	// queued, if set, hears of every caller that joined the queue (tests wait on it).
	queued func()
}

func newGate(conns, queue int, wait time.Duration) *gate {
	return &gate{slots: make(chan struct{}, max(conns, 1)), queue: int64(queue), wait: wait}
}

// enter takes a slot or returns ErrBusy; every nil return is paired with leave.
func (g *gate) enter() error {
	select {
	case g.slots <- struct{}{}:
		return nil
	default:
	}
	if g.waiting.Add(1) > g.queue {
		g.waiting.Add(-1)
		return ErrBusy
	}
	defer g.waiting.Add(-1)
	if g.queued != nil {
		g.queued()
	}
	t := time.NewTimer(g.wait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return nil
	case <-t.C:
		return ErrBusy
	}
}

func (g *gate) leave() { <-g.slots }
