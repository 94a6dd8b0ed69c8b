package cloud

import (
	"context"

	"labelstation/protocol"
)

// LinkBadge asks for a code that links the unknown badge to whoever confirms it on their
// phone. badge is the keyed hash, never the UID. A reply without an error that the station
// could not show (no code, a bad URL) is an error here.
func (l *Link) LinkBadge(ctx context.Context, badge string) (protocol.BadgeLinkReply, error) {
	req := protocol.BadgeLinkRequest{V: protocol.Version, Req: newReq(), Badge: badge}
	var rep protocol.BadgeLinkReply
	if err := l.request(ctx, protocol.LeafBadgeLink, req.Req, req, &rep); err != nil {
		return rep, err
	}
	if err := rep.Check(); err != nil {
		return protocol.BadgeLinkReply{}, err
	}
	return rep, nil
}

// badgeLinked hands a verified badge/linked message to Options.OnBadgeLinked.
func (l *Link) badgeLinked(payload []byte) {
	var b protocol.BadgeLinked
	if err := protocol.Decode(payload, &b); err != nil {
		l.log.Error("cloud: undecodable badge linked notice", "err", err)
		return
	}
	if l.opt.OnBadgeLinked != nil {
		l.opt.OnBadgeLinked(b)
	}
}
