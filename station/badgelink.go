package station

import (
	"context"
	"errors"
	"time"

	"labelstation/display"
	"labelstation/protocol"
	"labelstation/station/cloud"
)

// Linking an unknown badge by phone. Instead of sending the employee to an admin, a tap the
// cloud does not know asks for a short-lived code for the badge's keyed hash and shows it as a
// QR code with a countdown; the employee scans it, signs in and confirms, and the next tap
// works. The card number never leaves the station: the request carries the same keyed hash a
// lookup does.

// BadgeLink is the code shown for an unknown badge.
type BadgeLink struct {
	Badge string // the keyed hash the code links
	Code  PairingCode
}

// BadgeLinkDone carries the cloud's answer to DoLinkBadge.
type BadgeLinkDone struct {
	Reply protocol.BadgeLinkReply
	Err   error
}

func (BadgeLinkDone) event() {}

// LinkConfirmed: someone confirmed the code Code; the badge is User's now.
type LinkConfirmed struct{ Code, User string }

func (LinkConfirmed) event() {}

// DoLinkBadge asks the cloud for a code that links the badge.
type DoLinkBadge struct{ Badge string }

func (DoLinkBadge) effect() {}

// BadgeLinker is the part of the cloud link that asks for link codes (station/cloud.Link).
type BadgeLinker interface {
	LinkBadge(ctx context.Context, badge string) (protocol.BadgeLinkReply, error)
}

var _ BadgeLinker = (*cloud.Link)(nil)

// errNoLinking is the answer of a cloud link that cannot ask for codes.
var errNoLinking = errors.New("station: the cloud link cannot link badges")

// linkPhase reports whether p is one of the link screens.
func linkPhase(p Phase) bool {
	return p == LinkWait || p == LinkCode || p == LinkExpired || p == LinkRefused || p == LinkDone
}

// stepLink is the part of Step for linking badges; done false hands the (possibly updated)
// model on to the rest of Step.
func stepLink(m Model, ev Event, now time.Time, s Settings) (Model, []Effect, bool) {
	switch e := ev.(type) {
	case LookupDone:
		if m.Phase != Lookup {
			return m, nil, false
		}
		if e.Err != nil || e.Reply.Error == nil || e.Reply.Error.Code != protocol.CodeUnknownBadge {
			m.Link = BadgeLink{} // known now (or the cloud cannot say): the code is done with
			return m, nil, false
		}
		if m.Link.Badge == m.Badge && now.Before(m.Link.Code.Expires) {
			// The same badge again while its code is valid: show that code again.
			m.Phase, m.Until = LinkCode, m.Link.Code.Expires
			return m, nil, true
		}
		m.Phase, m.Link, m.Until = LinkWait, BadgeLink{}, time.Time{}
		if s.Answer > 0 {
			m.Until = now.Add(s.Answer)
		}
		return m, []Effect{DoLinkBadge{Badge: m.Badge}}, true
	case BadgeLinkDone:
		if m.Phase != LinkWait {
			return m, nil, true
		}
		switch {
		case errors.Is(e.Err, cloud.ErrOffline):
			m.Message = "Cloud unreachable"
			return result(m, Offline, now, s), nil, true
		case e.Err != nil:
			// Linking is not to be had: a cloud that answered the lookup but not this (an
			// older one), or a reply the station cannot show. The badge stays unknown.
			return result(m, UnknownBadge, now, s), nil, true
		case e.Reply.Error != nil && e.Reply.Error.Code == protocol.CodeBadgeLinked:
			return result(m, LinkRefused, now, s), nil, true
		case e.Reply.Error != nil:
			return result(m, UnknownBadge, now, s), nil, true
		}
		r := e.Reply
		exp := now.Add(time.Duration(r.ExpiresIn) * time.Second)
		m.Link = BadgeLink{Badge: m.Badge, Code: PairingCode{UserCode: r.Code, URI: r.URI, URIComplete: r.URIComplete, Expires: exp}}
		m.Phase, m.Until, m.Message = LinkCode, exp, ""
		return m, nil, true
	case LinkConfirmed:
		if e.Code == "" || e.Code != m.Link.Code.UserCode {
			return m, nil, true // another code, or one this station no longer shows
		}
		m.Link = BadgeLink{}
		if m.Phase != LinkCode {
			return m, nil, true // a tap is being looked up: it finds the new owner
		}
		m.User = e.User
		return result(m, LinkDone, now, s), nil, true
	case BadgeTapped:
		if !linkPhase(m.Phase) || m.Phase == LinkWait {
			return m, nil, false
		}
		// The code screen is a ready screen: the tap is looked up as any other. The same badge
		// keeps its code, so an unlinked badge gets it back; another badge ends it.
		if e.Hash != m.Link.Badge {
			m.Link = BadgeLink{}
		}
		m.Phase = ready(m)
		return m, nil, false
	case ButtonPressed:
		if m.Phase != LinkCode {
			return m, nil, false
		}
		// Any button puts the code away; the same badge gets it back while it is valid.
		m.Phase, m.Until = ready(m), time.Time{}
		return m, nil, true
	case Tick:
		if !linkPhase(m.Phase) {
			return m, nil, false
		}
		switch {
		case m.Phase == LinkWait && !m.Until.IsZero() && !now.Before(m.Until):
			m.Message = "No answer from the cloud"
			return result(m, Offline, now, s), nil, true
		case m.Phase == LinkCode && !now.Before(m.Link.Code.Expires):
			m.Link = BadgeLink{}
			return result(m, LinkExpired, now, s), nil, true
		case (m.Phase == LinkExpired || m.Phase == LinkRefused || m.Phase == LinkDone) && !m.Until.IsZero() && !now.Before(m.Until):
			m.Phase, m.Until, m.Message, m.User = ready(m), time.Time{}, "", ""
			if m.Busy {
				m.Phase = Printing
			}
		}
		return m, nil, true
	}
	return m, nil, false
}

// Texts of the link screens; each fits a 128×64 panel.
const (
	linkTitle   = "Link badge"
	linkWaiting = "Getting a code to link your badge"
)

// linkView draws the link screens. The code screen is the pairing screen's layout (QR, code,
// countdown, the URL to type where it fits) under its own headline.
func linkView(v *display.View, m Model, now time.Time) {
	switch {
	case m.Phase == LinkWait:
		v.Kind, v.Lines = display.Lookup, []string{linkWaiting}
	case m.Phase == LinkCode && now.Before(m.Link.Code.Expires):
		c := m.Link.Code
		v.Kind, v.Title = display.Enrolling, linkTitle
		v.QR = c.URIComplete
		if v.QR == "" {
			v.QR = c.URI
		}
		v.Code, v.URL, v.Expires = c.UserCode, c.URI, c.Expires
	case m.Phase == LinkDone:
		v.Kind, v.Title, v.Hero = display.Idle, "Badge linked", "Tap again"
		if m.User != "" {
			v.Lines = []string{m.User}
		}
	case m.Phase == LinkRefused:
		v.Kind, v.Title = display.UnknownBadge, "Badge in use"
		v.Lines = []string{"Linked to someone else.", "Ask IT."}
	default: // expired, or the code screen in the moment before the tick that ends it
		v.Kind, v.Title = display.UnknownBadge, "Code expired"
		v.Lines = []string{"Tap your badge again for a new code."}
	}
}

// linkBadge runs DoLinkBadge on c (nil: not connected).
func (s *Station) linkBadge(ctx context.Context, c Cloud, e DoLinkBadge) {
	l, ok := c.(BadgeLinker)
	switch {
	case c == nil:
		s.post(BadgeLinkDone{Err: cloud.ErrOffline})
	case !ok:
		s.post(BadgeLinkDone{Err: errNoLinking})
	default:
		rep, err := l.LinkBadge(ctx, e.Badge)
		s.post(BadgeLinkDone{Reply: rep, Err: err})
	}
}
