package jobs

import (
	"encoding/json"
	"fmt"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"labelstation/protocol"
)

// releaseAll answers a ReleaseRequest with All: a tap's lookup and release in one round trip.
// Every held job of the badge's owner that has not expired is released by one Release call,
// one store transaction, so two stations asking at once never get the same job. The reply
// goes out before the jobs: the station learns what it waits for before they arrive.
func (s *Service) releaseAll(station string, req protocol.ReleaseRequest) {
	rep := protocol.ReleaseReply{V: protocol.Version, Req: req.Req, Released: []string{}}
	var jobs []protocol.Job
	u, known, lookupErr := s.userByBadge(req.Badge)
	switch {
	case len(req.Jobs) > 0:
		rep.Error = &protocol.Error{Code: protocol.CodeBadRequest, Message: "release: all releases every held job; jobs must be empty with it"}
	case lookupErr != nil:
		s.log.Error("jobs: badge lookup", "station", station, "err", lookupErr)
		rep.Error = replyError(lookupErr)
	case !known:
		rep.Error = &protocol.Error{Code: protocol.CodeUnknownBadge, Message: "this badge is not registered"}
	default:
		released, err := s.releaseHeld(u.ID, station, s.now())
		if err != nil {
			// Nothing was released: the transaction rolled back, the jobs stay held.
			s.log.Error("jobs: store", "station", station, "err", err)
			rep.Error = replyError(err)
			break
		}
		rep.User = &protocol.User{ID: u.ID, Name: u.Name}
		for _, j := range released {
			rep.Released = append(rep.Released, j.ID)
			rep.Jobs = append(rep.Jobs, protocol.JobSummary{ID: j.ID, Title: j.Title, Labels: j.Labels, Submitted: j.Created, Expires: j.Expires})
			jobs = append(jobs, s.jobMessage(station, u, j))
		}
	}
	out := []outgoing{{protocol.StationTopic(station, protocol.LeafReleaseReply), rep}}
	for _, j := range jobs {
		out = append(out, outgoing{protocol.StationTopic(station, protocol.LeafJob), j})
	}
	for _, err := range s.publishInOrder(out) {
		// A job the broker took is in the station's persistent session; log and go on.
		s.log.Error("jobs: release all", "station", station, "err", err)
	}
}

// releaseHeld releases every held job of user that has not expired at now to station.
func (s *Service) releaseHeld(user, station string, now time.Time) ([]Job, error) {
	held, err := s.store.List(user, StateHeld)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, j := range held {
		if !j.expired(now) {
			ids = append(ids, j.ID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	// Release skips what another station took since the listing, and what expired meanwhile.
	return s.store.Release(user, station, ids, now)
}

// outgoing is one message to a station.
type outgoing struct {
	topic string
	msg   any
}

// publishInOrder seals and publishes msgs back to back, then waits for the broker to take
// them: paho writes them in this order, so a station receives them in this order, and the
// messages after the first do not wait for the first one's acknowledgement.
func (s *Service) publishInOrder(msgs []outgoing) []error {
	var errs []error
	toks := make([]paho.Token, len(msgs))
	for i, m := range msgs {
		b, err := json.Marshal(m.msg)
		if err == nil {
			b, err = s.sealer.Load().Seal(m.topic, b)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("jobs: seal %s: %w", m.topic, err))
			continue
		}
		toks[i] = s.client.Publish(m.topic, 1, false, b)
	}
	for i, t := range toks {
		switch {
		case t == nil:
		case !t.WaitTimeout(10 * time.Second):
			errs = append(errs, fmt.Errorf("jobs: publish %s: timed out", msgs[i].topic))
		case t.Error() != nil:
			errs = append(errs, fmt.Errorf("jobs: publish %s: %w", msgs[i].topic, t.Error()))
		}
	}
	return errs
}
