package protocol

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Linking an unknown badge by phone: the station asks the cloud for a short-lived code for the
// badge's keyed hash, shows it as a QR code, and the badge's owner signs in at the verification
// URL and confirms. The card number never leaves the station; only its BadgeHash does.
const (
	LeafBadgeLink      = "badge/link"       // station → cloud
	LeafBadgeLinkReply = "badge/link/reply" // cloud → station
	LeafBadgeLinked    = "badge/linked"     // cloud → station: someone confirmed a code
)

// CodeBadgeLinked answers a link request for a badge that already belongs to someone.
const CodeBadgeLinked = "badge_linked"

// BadgeLinkRequest asks for an association code for an unknown badge.
type BadgeLinkRequest struct {
	V     int    `json:"v"`
	Req   string `json:"req"`
	Badge string `json:"badge"`
}

// BadgeLinkReply answers a BadgeLinkRequest with the same Req: the code to show, where to
// enter it, and how long it lives (seconds, counted from when the station receives the reply,
// so a station with a wrong clock still counts down right). Error is set instead when no code
// was issued (CodeBadgeLinked: the badge belongs to someone already).
type BadgeLinkReply struct {
	V    int    `json:"v"`
	Req  string `json:"req"`
	Code string `json:"code,omitempty"`
	// URI is the page to type; URIComplete, if set, is URI with the code filled in: the QR.
	URI         string `json:"uri,omitempty"`
	URIComplete string `json:"uri_complete,omitempty"`
	ExpiresIn   int    `json:"expires_in,omitempty"`
	Error       *Error `json:"error,omitempty"`
}

// BadgeLinked tells the station that showed Code that its badge is now User's, so the code
// screen can say so instead of waiting for its countdown.
type BadgeLinked struct {
	V    int    `json:"v"`
	Code string `json:"code"`
	User User   `json:"user"`
}

// MaxLinkCodeLife bounds ExpiresIn: a code on screen for longer than this is a code someone
// else has time to read off and use.
const MaxLinkCodeLife = 15 * time.Minute

// ErrBadgeLinkReply is wrapped by BadgeLinkReply.Check.
var ErrBadgeLinkReply = errors.New("protocol: badge link reply")

// Check says what is wrong with a reply that carries no error, naming the field: a station
// shows nothing it cannot use (no code, a URL that is not http(s), a code that lives too long).
func (r BadgeLinkReply) Check() error {
	if r.Error != nil {
		return nil
	}
	fail := func(f string, a ...any) error { return fmt.Errorf("%w: "+f, append([]any{ErrBadgeLinkReply}, a...)...) }
	if r.Code == "" || len(r.Code) > 32 {
		return fail("code: want 1-32 characters, got %d", len(r.Code))
	}
	for _, c := range r.Code {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return fail("code: %q: want capital letters, digits and '-'", r.Code)
		}
	}
	if err := checkWebURL(r.URI); err != nil {
		return fail("uri: %v", err)
	}
	if r.URIComplete != "" {
		if err := checkWebURL(r.URIComplete); err != nil {
			return fail("uri_complete: %v", err)
		}
	}
	if r.ExpiresIn <= 0 || time.Duration(r.ExpiresIn)*time.Second > MaxLinkCodeLife {
		return fail("expires_in: %d s, want 1-%d", r.ExpiresIn, int(MaxLinkCodeLife.Seconds()))
	}
	return nil
}

func checkWebURL(s string) error {
	if len(s) > 512 {
		return fmt.Errorf("%d characters, want at most 512", len(s))
	}
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q: want an http(s) URL with a host", s)
	}
	return nil
}

// BadgeTail is what a person is shown of a badge: the last four hex digits of its keyed hash,
// enough to tell two badges apart on a confirmation page and useless for anything else.
func BadgeTail(hash string) string {
	h := strings.ToLower(hash)
	if len(h) > 4 {
		h = h[len(h)-4:]
	}
	return h
}
