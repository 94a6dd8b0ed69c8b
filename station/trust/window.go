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
	// dirty means the window changed since it was last written; a job id may wait in memory
	// for timer, whose failure saveErr holds for the next Commit. saveMu orders the writes.
	dirty   bool
	saveMu  sync.Mutex
	timer   *time.Timer
	saveErr error
	delay   time.Duration // jobSaveDelay; tests shorten it
}

// jobSaveDelay is how long a job message's id may stay out of the file. Its durability does not
// gate the job: the station's journal recorded the job before the id reaches the window (the
// id is recorded after the job message is acknowledged), and the journal recognises that job
// id — its entry, then its tombstone, kept longer than a job message is valid — so a job
// message replayed after a crash that lost the id is found in the journal and not printed
// again. Writing the file at once would put a file sync next to every job's first label, and
// on the bbolt writer's disk right when the next claim wants it; written later, the ids of
// jobs arriving back to back share one write.
const jobSaveDelay = time.Second

// OpenWindow loads the window from file; a missing file is an empty window.
func OpenWindow(file string) (*Window, error) {
	w := &Window{file: file, st: windowState{Seen: map[string]int64{}, Config: map[string]configMark{}}, inflight: map[string]bool{}, delay: jobSaveDelay}
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
	if c.Topic == protocol.LeafConfigDesired {
		if m, ok := w.st.Config[topic]; ok && (m.JTI == c.JTI || c.IAT < m.IAT) {
			w.mu.Unlock()
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
	w.dirty = true
	switch c.Topic {
	case protocol.LeafLookupReply, protocol.LeafReleaseReply:
		w.mu.Unlock()
		return nil
	case protocol.LeafJob:
		if w.timer == nil {
			w.timer = time.AfterFunc(w.delay, w.saveLater)
		}
		err := w.saveErr
		w.saveErr = nil
		w.mu.Unlock()
		return err
	}
	w.mu.Unlock()
	return w.save()
}

// saveLater writes the job ids Commit left in memory.
func (w *Window) saveLater() {
	w.mu.Lock()
	w.timer = nil
	w.mu.Unlock()
	if err := w.save(); err != nil {
		w.mu.Lock()
		w.saveErr = err // the ids stay dirty: the next write, or the next timer, retries
		if w.timer == nil {
			w.timer = time.AfterFunc(w.delay, w.saveLater)
		}
		w.mu.Unlock()
	}
}

// Flush writes what Commit left in memory now (shutdown, tests).
func (w *Window) Flush() error { return w.save() }

// save writes the window if it changed since the last write. The file is written outside mu,
// so a message checked meanwhile (a lookup's reply, say) does not wait for the disk; saveMu
// keeps the writes in order, each with everything committed before it started.
func (w *Window) save() error {
	w.saveMu.Lock()
	defer w.saveMu.Unlock()
	w.mu.Lock()
	if !w.dirty {
		w.mu.Unlock()
		return nil
	}
	b, err := json.Marshal(w.st)
	w.dirty = false
	w.mu.Unlock()
	if err == nil {
		err = provisioning.WriteFileAtomic(w.file, b, 0o600)
	}
	if err != nil {
		w.mu.Lock()
		w.dirty = true
		w.mu.Unlock()
		return fmt.Errorf("trust: replay window: %w", err)
	}
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
