package jobs

import (
	"errors"
	"net/url"

	paho "github.com/eclipse/paho.mqtt.golang"

	"labelstation/devcloud/badgelink"
	"labelstation/protocol"
)

// newBadgeLinks is the service's registry of badges linked by phone; the seed's badges count
// as linked already.
func newBadgeLinks(s *Service) *badgelink.Registry {
	return badgelink.New(badgelink.Options{
		TTL: s.opt.BadgeLinkTTL, Now: s.now, OnLinked: s.badgeLinked, Records: s.opt.Records,
		Owner: func(badge string) (string, bool) { id, ok := s.badges[badge]; return id, ok },
	})
}

// BadgeLinks is the registry the confirmation page works on.
func (s *Service) BadgeLinks() *badgelink.Registry { return s.links }

// onBadgeLink answers a station's request for a code to link an unknown badge.
func (s *Service) onBadgeLink(_ paho.Client, m paho.Message) {
	station, req, ok := decode[protocol.BadgeLinkRequest](s, m)
	if !ok {
		return
	}
	rep := protocol.BadgeLinkReply{V: protocol.Version, Req: req.Req}
	p, err := s.links.Request(station, req.Badge)
	switch {
	case s.opt.BadgeLinkURL == "":
		rep.Error = &protocol.Error{Code: protocol.CodeBadRequest, Message: "linking badges by phone is not set up"}
	case errors.Is(err, badgelink.ErrLinked):
		rep.Error = &protocol.Error{Code: protocol.CodeBadgeLinked, Message: "this badge belongs to someone else"}
	case errors.Is(err, badgelink.ErrBadRequest):
		rep.Error = &protocol.Error{Code: protocol.CodeBadRequest, Message: err.Error()}
	case err != nil:
		s.log.Error("jobs: badge link", "station", station, "err", err)
		rep.Error = &protocol.Error{Code: protocol.CodeInternal, Message: "no code now; try again"}
	default:
		rep.Code, rep.URI = p.Code, s.opt.BadgeLinkURL
		rep.URIComplete = s.opt.BadgeLinkURL + "?" + url.Values{"code": {p.Code}}.Encode()
		rep.ExpiresIn = int(s.links.TTL().Seconds())
		s.log.Info("jobs: badge link code issued", "station", station, "badge", p.Tail(), "expires", p.Expires)
	}
	if err := s.publish(protocol.StationTopic(station, protocol.LeafBadgeLinkReply), false, rep); err != nil {
		s.log.Error("jobs: badge link reply", "station", station, "err", err)
	}
}

// badgeLinked tells the station that showed the code that the badge is linked now.
func (s *Service) badgeLinked(p badgelink.Pending, user string) {
	if s.client == nil {
		return // not started: no station to tell
	}
	name := user
	if u, err := s.seed.UserByID(user); err == nil {
		name = u.Name
	}
	msg := protocol.BadgeLinked{V: protocol.Version, Code: p.Code, User: protocol.User{ID: user, Name: name}}
	go func() {
		if err := s.publish(protocol.StationTopic(p.Station, protocol.LeafBadgeLinked), false, msg); err != nil {
			// The station's next tap works all the same; only the screen's notice is lost.
			s.log.Warn("jobs: badge linked notice not sent", "station", p.Station, "err", err)
		}
	}()
}
