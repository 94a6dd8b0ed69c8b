package station

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"labelstation/protocol"
	"labelstation/station/journal"
)

// firstWindows lets a job's first labels go to the printer after a single journal commit: the
// claim records the first in-flight window too (journal.ClaimInFlight), and the worker sends
// that window without writing it again.
type firstWindows struct {
	// idle is set by the worker while it has no unfinished job: only then is the printer's
	// label counter worth reading at claim time.
	idle atomic.Bool
	mu   sync.Mutex
	// claimed holds the windows recorded at claim by this process, none of whose labels was
	// sent yet. After a restart the map is empty and a recorded window is reconciled as any
	// window left in flight by a crash.
	claimed map[string]journal.InFlight
}

// claimTimeout bounds the printer readings taken while a job message waits for its claim; a
// printer that does not answer in time leaves the window to the worker.
const claimTimeout = 500 * time.Millisecond

// claim journals a delivered job. When the worker is idle and the printer is idle with a label
// counter, the counter is read and the first window recorded in the claim's commit, all under
// the printer lock, so no label can move the counter between the reading and the record. Any
// failed reading falls back to a plain claim: the worker then records the window itself.
func (s *Station) claim(j protocol.Job) (journal.Entry, bool, error) {
	lc, ok := s.opt.Printer.(labelCounter)
	// A job released for a preview waits on the station for a button: a window recorded now
	// would be reconciled against a counter that other jobs move meanwhile.
	if !ok || !s.first.idle.Load() || j.Labels <= 0 || s.previewWanted(j.ID) {
		return s.opt.Journal.Claim(j)
	}
	s.printMu.Lock()
	defer s.printMu.Unlock()
	fl, err := s.idleCounter(lc)
	if err != nil {
		s.log.Debug("station: no counter reading at claim; the worker records the first window", "job", j.ID, "err", err)
		return s.opt.Journal.Claim(j)
	}
	fl.To = min(counterWindow, j.Labels)
	// first.mu is held across the commit: the worker may find the job pending as soon as the
	// commit is visible, and its takeClaimed must then wait for the window to be noted here,
	// not miss it and reconcile it as a crash's (two more commits before the first label).
	s.first.mu.Lock()
	defer s.first.mu.Unlock()
	e, existed, windowed, err := s.opt.Journal.ClaimInFlight(j, fl)
	if err == nil && windowed {
		if s.first.claimed == nil {
			s.first.claimed = map[string]journal.InFlight{}
		}
		s.first.claimed[j.ID] = fl
	}
	return e, existed, err
}

// errBusy means the printer still has labels to print, so its counter is not final.
var errBusy = errors.New("printer busy")

// idleCounter reads the counter of a printer that has nothing left to print and no fault; the
// caller holds printMu.
func (s *Station) idleCounter(lc labelCounter) (journal.InFlight, error) {
	ctx, cancel := context.WithTimeout(context.Background(), claimTimeout)
	defer cancel()
	st, err := s.opt.Printer.Status(ctx)
	switch {
	case err != nil:
		return journal.InFlight{}, err
	case st.Fault() != nil:
		return journal.InFlight{}, st.Fault()
	case !st.Idle():
		return journal.InFlight{}, errBusy
	}
	c, err := lc.Counter(ctx)
	if err != nil {
		return journal.InFlight{}, fmt.Errorf("label counter: %w", err)
	}
	return journal.InFlight{From: 0, Counter: c, HasCounter: true}, nil
}

// takeClaimed returns and forgets the window recorded with the job's claim, if any.
func (s *Station) takeClaimed(id string) (journal.InFlight, bool) {
	s.first.mu.Lock()
	defer s.first.mu.Unlock()
	fl, ok := s.first.claimed[id]
	delete(s.first.claimed, id)
	return fl, ok
}
