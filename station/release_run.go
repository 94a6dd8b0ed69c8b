package station

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"labelstation/label"
	"labelstation/protocol"
	"labelstation/station/config"
	"labelstation/station/journal"
)

// releaseState is what the runtime remembers for choosing, previewing and offline release.
type releaseState struct {
	load sync.Once // seen is read from the state directory on first use
	mu   sync.Mutex
	// preview names released jobs to hold and show rather than print when they arrive.
	preview map[string]bool
	// seen maps the keyed hash of a badge the cloud recognised to its owner, until the
	// offline lifetime (release.offline_seconds) ends. It is kept in offlineFile, so a station
	// that restarts during an outage still knows who was here.
	seen map[string]seenBadge
}

type seenBadge struct {
	User  protocol.User `json:"user"`
	Until time.Time     `json:"until"`
}

// offlineFile holds the recently recognised badges: keyed hashes only, never card numbers.
const offlineFile = "offline-badges.json"

// seenBadges returns the remembered badges, read from the state directory on first use.
// Call with s.rel.mu held.
func (s *Station) seenBadges() map[string]seenBadge {
	s.rel.load.Do(func() {
		s.rel.seen = map[string]seenBadge{}
		dir := s.config().Station.StateDir
		if dir == "" {
			return
		}
		b, err := os.ReadFile(filepath.Join(dir, offlineFile))
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		if err == nil {
			err = json.Unmarshal(b, &s.rel.seen)
		}
		if err != nil {
			s.log.Error("station: recently seen badges unreadable; offline release starts empty", "err", err)
			s.rel.seen = map[string]seenBadge{}
		}
	})
	return s.rel.seen
}

// remember records badge as its owner's until d from now, dropping lapsed entries, and
// stores the set.
func (s *Station) remember(badge string, u protocol.User, d time.Duration) {
	s.rel.mu.Lock()
	seen := s.seenBadges()
	now := s.opt.Now()
	for h, b := range seen {
		if !now.Before(b.Until) {
			delete(seen, h)
		}
	}
	seen[badge] = seenBadge{User: u, Until: now.Add(d)}
	raw, err := json.Marshal(seen)
	s.rel.mu.Unlock()
	dir := s.config().Station.StateDir
	if err == nil && dir != "" {
		err = config.WriteFile(dir, offlineFile, raw)
	}
	if err != nil {
		s.log.Warn("station: recently seen badges not stored; a restart forgets them", "err", err)
	}
}

// errExpired fails a job whose retention ended before it could print.
var errExpired = errors.New("expired before it was printed")

// expired refuses to start a job past its expiry; one already under way is finished.
func expired(e journal.Entry, now time.Time) error {
	if e.Printed == 0 && !e.Job.Expires.IsZero() && !now.Before(e.Job.Expires) {
		return fmt.Errorf("%w (expired %s)", errExpired, e.Job.Expires.UTC().Format(time.RFC3339))
	}
	return nil
}

func (s *Station) kickWorker() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// afterLookup remembers a recognised badge for offline release and adds the jobs already held
// on this station for the badge's owner (a preview answered "later") to the cloud's list.
func (s *Station) afterLookup(badge string, rep protocol.LookupReply) protocol.LookupReply {
	if rep.User == nil || rep.Error != nil {
		return rep
	}
	if d := s.config().Release.OfflineTime(); d > 0 {
		s.remember(badge, *rep.User, d)
	}
	held, err := s.opt.Journal.Held()
	if err != nil {
		s.log.Error("station: held jobs", "err", err)
		return rep
	}
	for _, e := range held {
		if e.Job.User.ID != rep.User.ID || slices.ContainsFunc(rep.Jobs, func(j protocol.JobSummary) bool { return j.ID == e.Job.ID }) {
			continue
		}
		rep.Jobs = append(rep.Jobs, protocol.JobSummary{ID: e.Job.ID, Title: e.Job.Title, Labels: e.Job.Labels, Submitted: e.Claimed, Expires: e.Job.Expires})
	}
	return rep
}

// release releases e's jobs: those held on this station locally, the others through the
// cloud. With e.Preview they are held and shown (PreviewReady) instead of printed.
func (s *Station) release(ctx context.Context, c Cloud, e DoRelease) (protocol.ReleaseReply, error) {
	held, err := s.opt.Journal.Held()
	if err != nil {
		return protocol.ReleaseReply{}, err
	}
	var local, remote []string
	for _, id := range e.Jobs {
		if slices.ContainsFunc(held, func(h journal.Entry) bool { return h.Job.ID == id }) {
			local = append(local, id)
		} else {
			remote = append(remote, id)
		}
	}
	if e.Preview {
		s.rel.mu.Lock()
		if s.rel.preview == nil {
			s.rel.preview = map[string]bool{}
		}
		for _, id := range remote {
			s.rel.preview[id] = true
		}
		s.rel.mu.Unlock()
	}
	var rep protocol.ReleaseReply
	if len(remote) > 0 {
		if rep, err = c.Release(ctx, e.Badge, remote); err != nil || rep.Error != nil {
			if rep.Error != nil {
				// Refused: those jobs will not come. After a lost reply they may, and are then
				// held rather than printed for someone who has walked away.
				s.rel.mu.Lock()
				for _, id := range remote {
					delete(s.rel.preview, id)
				}
				s.rel.mu.Unlock()
			}
			return rep, err
		}
	}
	for _, id := range local {
		if e.Preview {
			entry, err := s.opt.Journal.Get(id)
			if err != nil {
				return rep, err
			}
			s.post(s.previewOf(entry))
		} else if err := s.opt.Journal.Hold(id, false); err != nil {
			return rep, err
		}
		rep.Released = append(rep.Released, id)
	}
	s.kickWorker()
	return rep, nil
}

// previewWanted says whether the job was released to be previewed before it prints.
func (s *Station) previewWanted(id string) bool {
	s.rel.mu.Lock()
	defer s.rel.mu.Unlock()
	return s.rel.preview[id]
}

// holdForPreview keeps a job released for a preview out of the print queue and shows its first
// label; it reports whether it did.
func (s *Station) holdForPreview(e journal.Entry) bool {
	s.rel.mu.Lock()
	want := s.rel.preview[e.Job.ID]
	delete(s.rel.preview, e.Job.ID)
	s.rel.mu.Unlock()
	if !want {
		return false
	}
	if err := s.opt.Journal.Hold(e.Job.ID, true); err != nil {
		s.log.Error("station: hold for preview; printing without one", "job", e.Job.ID, "err", err)
		return false
	}
	s.post(s.previewOf(e))
	return true
}

// previewOf draws the job's first label with the renderer it prints with; a job that cannot
// be drawn gets a preview without a picture (printing it would fail and say why).
func (s *Station) previewOf(e journal.Entry) PreviewReady {
	p := PreviewReady{ID: e.Job.ID, Title: e.Job.Title, Labels: e.Job.Labels}
	t, _ := s.target(s.config().Printer) // without the station's fonts, the built-in ones
	img, err := firstLabel(e.Job, t)
	if err != nil {
		s.log.Warn("station: preview", "job", e.Job.ID, "err", err)
		return p
	}
	p.Image = img
	return p
}

// firstLabel renders the first record of a layout job as the printer's bitmap.
func firstLabel(j protocol.Job, t label.Target) (image.Image, error) {
	if label.IsDocument(j.Format) {
		return nil, errors.New("a printer document has no layout to preview")
	}
	lay, err := label.ParseLayout(j.Layout)
	if err != nil {
		return nil, fmt.Errorf("layout: %w", err)
	}
	f, err := label.ParseFormat(j.Format)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	rr, err := label.NewRecordReader(f, bytes.NewReader(j.Data), label.ReadOptions{})
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	rec, err := rr.Next()
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	return label.RenderBitmapTarget(lay, rec, t)
}

// releaseEffect runs DoHold and DoOfflineRelease.
func (s *Station) releaseEffect(e Effect) {
	switch e := e.(type) {
	case DoHold:
		if err := s.opt.Journal.Hold(e.ID, e.Held); err != nil {
			s.log.Error("station: release held job", "job", e.ID, "err", err)
			s.post(JobFinished{Title: e.ID, Err: err})
			return
		}
		s.kickWorker()
	case DoOfflineRelease:
		s.rel.mu.Lock()
		b, ok := s.seenBadges()[e.Badge]
		s.rel.mu.Unlock()
		if !ok || !s.opt.Now().Before(b.Until) {
			s.post(OfflineReleased{})
			return
		}
		held, err := s.opt.Journal.Held()
		if err != nil {
			s.post(OfflineReleased{Err: err})
			return
		}
		n := 0
		for _, h := range held {
			if h.Job.User.ID != b.User.ID || expired(h, s.opt.Now()) != nil {
				continue
			}
			if err := s.opt.Journal.Hold(h.Job.ID, false); err != nil {
				s.post(OfflineReleased{Err: err})
				return
			}
			n++
		}
		s.log.Info("station: offline release of jobs already here", "jobs", n)
		s.kickWorker()
		s.post(OfflineReleased{User: b.User.Name, Jobs: n})
	}
}

// expireHeld fails the held jobs whose retention ended; the outbox reports them.
func (s *Station) expireHeld() {
	held, err := s.opt.Journal.Held()
	if err != nil {
		s.log.Error("station: held jobs", "err", err)
		return
	}
	for _, h := range held {
		if err := expired(h, s.opt.Now()); err != nil {
			done, ferr := s.opt.Journal.Finish(h.Job.ID, protocol.JobFailed, err.Error())
			if ferr != nil {
				s.log.Error("station: expire held job", "job", h.Job.ID, "err", ferr)
				continue
			}
			s.report(done)
		}
	}
}
