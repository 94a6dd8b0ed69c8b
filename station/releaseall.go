package station

import (
	"context"
	"errors"

	"labelstation/protocol"
	"labelstation/station/cloud"
)

// A tap in release.mode all prints every held job of the badge's owner, so the station asks
// the cloud once: look the badge up and release its jobs (one round trip instead of a lookup
// and then a release). A cloud that does not know the request, a link that cannot send it and
// a printer that is not ready all take the two steps, which show the same screens.

// AllReleaser is the part of the cloud link that looks a badge up and releases all its held
// jobs in one request (station/cloud.Link).
type AllReleaser interface {
	LookupRelease(ctx context.Context, badge string) (protocol.ReleaseReply, error)
}

var _ AllReleaser = (*cloud.Link)(nil)

// lookupReleaseAll runs a DoLookup with ReleaseAll on c and posts its LookupDone. It reports
// false, having posted nothing, when the tap is to be looked up in two steps instead.
func (s *Station) lookupReleaseAll(ctx context.Context, c Cloud, badge string) bool {
	r, ok := c.(AllReleaser)
	if !ok {
		return false
	}
	// Jobs released into a faulted printer would sit on the station instead of staying held
	// for another station or a later tap; the two steps check again before releasing and say
	// why nothing was released.
	if err := s.printerReady(ctx); err != nil {
		return false
	}
	rep, err := r.LookupRelease(ctx, badge)
	switch {
	case errors.Is(err, cloud.ErrNoReleaseAll):
		s.log.Info("station: the cloud does not release on a lookup; asking in two steps", "err", err)
		return false
	case err != nil:
		s.post(LookupDone{Err: err})
		return true
	case rep.Error != nil:
		// Answered as a lookup: unknown_badge starts the badge-link flow.
		s.post(LookupDone{Reply: protocol.LookupReply{V: rep.V, Req: rep.Req, Jobs: []protocol.JobSummary{}, Error: rep.Error}})
		return true
	}
	look := s.afterLookup(badge, protocol.LookupReply{V: rep.V, Req: rep.Req, User: rep.User, Jobs: rep.Jobs})
	released := protocol.ReleaseReply{V: rep.V, Req: rep.Req, Released: rep.Released}
	now := s.opt.Now()
	// afterLookup appended the owner's jobs held on this station (a preview answered "later"):
	// they are released here, as the two steps would.
	for _, j := range look.Jobs[len(rep.Jobs):] {
		if !j.Expires.IsZero() && !now.Before(j.Expires) {
			continue // never printed; the maintenance fails it
		}
		if err := s.opt.Journal.Hold(j.ID, false); err != nil {
			s.post(LookupDone{Reply: look, Err: err})
			return true
		}
		released.Released = append(released.Released, j.ID)
	}
	s.kickWorker()
	s.post(LookupDone{Reply: look, Released: &released})
	return true
}
