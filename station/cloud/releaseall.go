package cloud

import (
	"context"
	"errors"
	"fmt"

	"labelstation/protocol"
)

// ErrNoReleaseAll means the cloud answered a one-round-trip release as a cloud that predates
// it does (an empty release without the badge's owner) or refused it as a bad request. Nothing
// was released; the station asks again in two steps, a lookup and then a release.
var ErrNoReleaseAll = errors.New("cloud: the cloud does not release on a lookup")

// LookupRelease looks the badge up and releases all its owner's held jobs to this station in
// one request. The reply names the owner and the released jobs, or carries the error a lookup
// would (unknown_badge). badge is the keyed hash, never the UID.
func (l *Link) LookupRelease(ctx context.Context, badge string) (protocol.ReleaseReply, error) {
	req := protocol.ReleaseRequest{V: protocol.Version, Req: newReq(), Badge: badge, Jobs: []string{}, All: true}
	var rep protocol.ReleaseReply
	if err := l.request(ctx, protocol.LeafRelease, req.Req, req, &rep); err != nil {
		return rep, err
	}
	if !rep.ReleasedAll() {
		why := "no owner in the reply"
		if rep.Error != nil {
			why = rep.Error.Code + ": " + rep.Error.Message
		}
		return protocol.ReleaseReply{}, fmt.Errorf("%w (%s)", ErrNoReleaseAll, why)
	}
	return rep, nil
}
