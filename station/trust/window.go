package trust

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"labelstation/protocol"
	"labelstation/provisioning"
)

// WindowFile keeps the replay window in the state directory.
const WindowFile = "replay.json"

// maxSeen bounds the window when the clock is not sane and nothing can be pruned by expiry.
const maxSeen = 4096

// configMark is the newest config document applied on one topic.
type configMark struct {
	IAT int64  `json:"iat"`
	JTI string `json:"jti"`
}

type windowState struct {
	Seen   map[string]int64      `json:"seen"`   // jti → exp (Unix s)
	Config map[string]configMark `json:"config"` // topic → newest applied
}

// Window is the replay window. It remembers every accepted message id until the message expires,
// and on disk, so a restart (a reboot command, say) does not reopen the window for a message that
// is still valid. config/desired has no expiry and is re-delivered on every connect as it is
// retained; for it the window keeps the newest document per topic instead and refuses an older
// one, so a captured config cannot roll a station back.
type Window struct {
	file string

	mu       sync.Mutex
	st       windowState
	inflight map[string]bool // admitted, not settled: a duplicate arriving meanwhile is a replay
	// dirty means a job id is in the window but not yet on disk; timer will write it, and
	// saveErr is that write's failure, returned by the next Commit.
	dirty   bool
	timer   *time.Timer
	saveErr error
}

// jobSaveDelay is how long a job message's id may stay out of the file. Its durability does not
// gate the job: the station's journal recorded the job before the id reaches the window (the
// id is recorded after the job message is acknowledged), and the journal recognises that job
// id — its entry, then its tombstone, kept longer than a job message is valid — so a job
// message replayed after a crash that lost the id is found in the journal and not printed
// again. Writing the file at once would put a file sync next to every job's first label, and
// on the bbolt writer's disk right when the next claim wants it; written later, the ids of
// jobs arriving back to back share one write.
var jobSaveDelay = time.Second

// OpenWindow loads the window from file; a missing file is an empty window.
func OpenWindow(file string) (*Window, error) {
	w := &Window{file: file, st: windowState{Seen: map[string]int64{}, Config: map[string]configMark{}}, inflight: map[string]bool{}}
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return w, nil
	}
	if err != nil {
		return nil, fmt.Errorf("trust: replay window: %w", err)
	}
	if err := json.Unmarshal(b, &w.st); err != nil {
		return nil, fmt.Errorf("trust: replay window %s: %w", file, err)
	}
	if w.st.Seen == nil {
		w.st.Seen = map[string]int64{}
	}
	if w.st.Config == nil {
		w.st.Config = map[string]configMark{}
	}
	return w, nil
}

// Admit refuses a message seen before (or, for config, older than the one applied) and holds its
// id until settle says whether it was acted on: settle(true) records it (Commit), settle(false)
// lets the broker's redelivery of it in again.
func (w *Window) Admit(topic string, c protocol.Claims, now func() time.Time) (settle func(acted bool) error, err error) {
	if err := w.check(topic, c); err != nil {
		return nil, err
	}
	return func(acted bool) error {
		w.mu.Lock()
		delete(w.inflight, c.JTI)
		w.mu.Unlock()
		if !acted {
			return nil
		}
		return w.Commit(topic, c, now())
	}, nil
}

func (w *Window) check(topic string, c protocol.Claims) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if c.Topic == protocol.LeafConfigDesired {
		m, ok := w.st.Config[topic]
		if ok && c.JTI != m.JTI && c.IAT < m.IAT {
			return fmt.Errorf("%w: config issued %s is older than the one applied (%s)", protocol.ErrReplay,
				time.Unix(c.IAT, 0).UTC().Format(time.RFC3339), time.Unix(m.IAT, 0).UTC().Format(time.RFC3339))
		}
		return nil
	}
	if _, ok := w.st.Seen[c.JTI]; ok || w.inflight[c.JTI] {
		return fmt.Errorf("%w: id %s already received", protocol.ErrReplay, c.JTI)
	}
	w.inflight[c.JTI] = true
	return nil
}

// Commit records an accepted message. Messages that change something (jobs, commands, config)
// are written to disk before Commit returns; replies are kept in memory only, as they answer a
// request id of this process and are worthless after a restart.
func (w *Window) Commit(topic string, c protocol.Claims, now time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if c.Topic == protocol.LeafConfigDesired {
		if m, ok := w.st.Config[topic]; ok && (m.JTI == c.JTI || c.IAT < m.IAT) {
			return nil
		}
		w.st.Config[topic] = configMark{IAT: c.IAT, JTI: c.JTI}
	} else {
		exp := c.EXP
		if exp == 0 {
			exp = c.IAT + int64(protocol.Lifetime(c.Topic)/time.Second)
		}
		w.st.Seen[c.JTI] = exp
	}
	w.pruneLocked(now)
	switch c.Topic {
	case protocol.LeafLookupReply, protocol.LeafReleaseReply:
		return nil
	case protocol.LeafJob:
		w.dirty = true
		if w.timer == nil {
			w.timer = time.AfterFunc(jobSaveDelay, w.saveLater)
		}
		err := w.saveErr
		w.saveErr = nil
		return err
	}
	return w.saveLocked()
}

// saveLater writes the job ids Commit left in memory.
func (w *Window) saveLater() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timer = nil
	if err := w.saveLocked(); err != nil {
		w.saveErr = err // the ids stay dirty: the next write, or the next timer, retries
		w.timer = time.AfterFunc(jobSaveDelay, w.saveLater)
	}
}

// Flush writes what Commit left in memory now (shutdown, tests).
func (w *Window) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.dirty {
		return nil
	}
	return w.saveLocked()
}

// saveLocked writes the window; the caller holds mu.
func (w *Window) saveLocked() error {
	b, err := json.Marshal(w.st)
	if err != nil {
		return fmt.Errorf("trust: replay window: %w", err)
	}
	if err := provisioning.WriteFileAtomic(w.file, b, 0o600); err != nil {
		return fmt.Errorf("trust: replay window: %w", err)
	}
	w.dirty = false
	return nil
}

// pruneLocked forgets ids whose message has expired (they are refused as expired anyway), and
// with a clock that cannot tell, the oldest beyond maxSeen.
func (w *Window) pruneLocked(now time.Time) {
	if protocol.ClockSane(now) {
		cut := now.Add(-protocol.Skew).Unix()
		for id, exp := range w.st.Seen {
			if exp < cut {
				delete(w.st.Seen, id)
			}
		}
	}
	if len(w.st.Seen) <= maxSeen {
		return
	}
	ids := make([]string, 0, len(w.st.Seen))
	for id := range w.st.Seen {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return w.st.Seen[ids[i]] < w.st.Seen[ids[j]] })
	for _, id := range ids[:len(ids)-maxSeen] {
		delete(w.st.Seen, id)
	}
}

// Len is the number of ids in the window (tests).
func (w *Window) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.st.Seen)
}
