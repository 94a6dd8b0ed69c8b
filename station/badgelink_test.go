package station

import (
	"image"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	xdraw "golang.org/x/image/draw"

	"labelstation/display"
	"labelstation/protocol"
	"labelstation/station/cloud"
)

// goldenLink is a link code as devcloud issues one.
func goldenLink(exp time.Time) BadgeLink {
	return BadgeLink{Badge: "9f2c1a2b", Code: PairingCode{UserCode: "BDFG-HJKL", URI: "https://cloud.example.com/device/badge",
		URIComplete: "https://cloud.example.com/device/badge?code=BDFG-HJKL", Expires: exp}}
}

// The link states: an unknown badge gets a code, the code is shown until it expires, the same
// badge gets it back, another badge is looked up as usual, and a badge that belongs to someone
// else is refused.
func TestStepBadgeLink(t *testing.T) {
	link := goldenLink(t0.Add(5 * time.Minute))
	link.Badge = "h1"
	reply := protocol.BadgeLinkReply{V: protocol.Version, Req: "r", Code: link.Code.UserCode, URI: link.Code.URI,
		URIComplete: link.Code.URIComplete, ExpiresIn: 300}
	unknown := LookupDone{Reply: protocol.LookupReply{Error: &protocol.Error{Code: protocol.CodeUnknownBadge, Message: "no"}}}
	waiting := with(idle(), func(m *Model) { m.Phase, m.Badge = LinkWait, "h1" })
	showing := with(idle(), func(m *Model) { m.Phase, m.Badge, m.Link, m.Until = LinkCode, "h1", link, link.Code.Expires })
	tests := []struct {
		name    string
		from    Model
		ev      Event
		s       Settings
		at      time.Time
		want    Model
		effects []Effect
	}{
		{"unknown badge asks for a code, bounded", with(idle(), func(m *Model) { m.Phase, m.Badge = Lookup, "h1" }), unknown, timed, t0,
			with(waiting, func(m *Model) { m.Until = t0.Add(15 * time.Second) }), []Effect{DoLinkBadge{Badge: "h1"}}},
		{"the code is shown", waiting, BadgeLinkDone{Reply: reply}, settings, t0, showing, nil},
		{"the code counts from its arrival", waiting, BadgeLinkDone{Reply: reply}, settings, t0.Add(time.Minute),
			with(showing, func(m *Model) {
				m.Link.Code.Expires = t0.Add(6 * time.Minute)
				m.Until = m.Link.Code.Expires
			}), nil},
		{"already linked to someone else", waiting, BadgeLinkDone{Reply: protocol.BadgeLinkReply{Error: &protocol.Error{Code: protocol.CodeBadgeLinked}}}, settings, t0,
			with(idle(), func(m *Model) { m.Phase, m.Until = LinkRefused, t0.Add(5*time.Second) }), nil},
		{"a cloud without linking: unknown badge", waiting, BadgeLinkDone{Reply: protocol.BadgeLinkReply{Error: &protocol.Error{Code: protocol.CodeBadRequest}}}, settings, t0,
			with(idle(), func(m *Model) { m.Phase, m.Until = UnknownBadge, t0.Add(5*time.Second) }), nil},
		{"a bad reply: unknown badge", waiting, BadgeLinkDone{Err: protocol.ErrBadgeLinkReply}, settings, t0,
			with(idle(), func(m *Model) { m.Phase, m.Until = UnknownBadge, t0.Add(5*time.Second) }), nil},
		{"no answer from a cloud that looked the badge up: unknown badge", waiting, BadgeLinkDone{Err: cloud.ErrTimeout}, settings, t0,
			with(idle(), func(m *Model) { m.Phase, m.Until = UnknownBadge, t0.Add(5*time.Second) }), nil},
		{"offline while asking", waiting, BadgeLinkDone{Err: cloud.ErrOffline}, settings, t0,
			with(idle(), func(m *Model) { m.Phase, m.Message, m.Until = Offline, "Cloud unreachable", t0.Add(5*time.Second) }), nil},
		{"no answer in time", with(waiting, func(m *Model) { m.Until = t0 }), Tick{}, timed, t0,
			with(idle(), func(m *Model) {
				m.Phase, m.Message, m.Until = Offline, "No answer from the cloud", t0.Add(5*time.Second)
			}), nil},
		{"a late answer is ignored", idle(), BadgeLinkDone{Reply: reply}, settings, t0, idle(), nil},
		{"the code stays while valid", showing, Tick{}, settings, t0.Add(4 * time.Minute), showing, nil},
		{"the code expires", showing, Tick{}, settings, link.Code.Expires,
			with(idle(), func(m *Model) { m.Phase, m.Until = LinkExpired, link.Code.Expires.Add(5*time.Second) }), nil},
		{"the expired screen returns to idle", with(idle(), func(m *Model) { m.Phase, m.Until = LinkExpired, t0 }), Tick{}, settings, t0, idle(), nil},
		{"the refused screen returns to idle", with(idle(), func(m *Model) { m.Phase, m.Until = LinkRefused, t0 }), Tick{}, settings, t0, idle(), nil},
		{"same badge again is looked up, keeping its code", showing, BadgeTapped{Hash: "h1"}, settings, t0.Add(time.Minute),
			with(showing, func(m *Model) { m.Releasing = true; m.Phase, m.Until = Lookup, link.Code.Expires }), []Effect{DoLookup{Badge: "h1", ReleaseAll: true}}},
		{"still unknown: the same code again", with(showing, func(m *Model) { m.Phase = Lookup }), unknown, settings, t0.Add(time.Minute), showing, nil},
		{"linked meanwhile: the code is done with", with(showing, func(m *Model) { m.Phase = Lookup }),
			LookupDone{Reply: protocol.LookupReply{User: &protocol.User{ID: "alice", Name: "Alice"}}}, settings, t0.Add(time.Minute),
			with(idle(), func(m *Model) {
				m.Phase, m.Badge, m.User, m.Until = NoJobs, "", "Alice", t0.Add(time.Minute+5*time.Second)
			}), nil},
		{"another badge ends the code", showing, BadgeTapped{Hash: "h2"}, settings, t0.Add(time.Minute),
			with(idle(), func(m *Model) { m.Releasing = true; m.Phase, m.Badge, m.Until = Lookup, "h2", link.Code.Expires }), []Effect{DoLookup{Badge: "h2", ReleaseAll: true}}},
		{"a tap on the code screen offline", with(showing, func(m *Model) { m.Online = false }), BadgeTapped{Hash: "h1"}, settings, t0,
			with(showing, func(m *Model) {
				m.Online, m.Phase, m.Badge, m.Message, m.Until = false, Offline, "", "Cloud unreachable", t0.Add(5*time.Second)
			}), nil},
		{"an expired code is not shown again", with(showing, func(m *Model) { m.Phase = Lookup }), unknown, settings, link.Code.Expires,
			with(waiting, func(m *Model) {}), []Effect{DoLinkBadge{Badge: "h1"}}},
		{"a button puts the code away", showing, ButtonPressed{Name: "a"}, settings, t0,
			with(showing, func(m *Model) { m.Phase, m.Until = Idle, time.Time{} }), nil},
		{"a tap while asking is ignored", waiting, BadgeTapped{Hash: "h2"}, settings, t0, waiting, nil},
		{"confirmed on a phone: the screen says so", showing, LinkConfirmed{Code: link.Code.UserCode, User: "Alice"}, settings, t0.Add(time.Minute),
			with(idle(), func(m *Model) { m.Phase, m.User, m.Until = LinkDone, "Alice", t0.Add(time.Minute+5*time.Second) }), nil},
		{"another code's confirmation changes nothing", showing, LinkConfirmed{Code: "XXXX-XXXX", User: "Bob"}, settings, t0, showing, nil},
		{"confirmed while a tap is looked up: the lookup finds the owner", with(showing, func(m *Model) { m.Phase = Lookup }),
			LinkConfirmed{Code: link.Code.UserCode, User: "Alice"}, settings, t0,
			with(showing, func(m *Model) { m.Phase, m.Link = Lookup, BadgeLink{} }), nil},
		{"the linked screen returns to idle", with(idle(), func(m *Model) { m.Phase, m.User, m.Until = LinkDone, "Alice", t0 }), Tick{}, settings, t0, idle(), nil},
		{"a tap on the linked screen is looked up", with(idle(), func(m *Model) { m.Phase, m.User, m.Until = LinkDone, "Alice", t0.Add(time.Second) }),
			BadgeTapped{Hash: "h1"}, settings, t0,
			with(idle(), func(m *Model) { m.Releasing = true; m.Phase, m.Badge, m.Until = Lookup, "h1", t0.Add(time.Second) }), []Effect{DoLookup{Badge: "h1", ReleaseAll: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, effects := Step(tt.from, tt.ev, tt.at, tt.s)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("model:\n got %+v\nwant %+v", got, tt.want)
			}
			if !reflect.DeepEqual(effects, tt.effects) {
				t.Errorf("effects: got %+v, want %+v", effects, tt.effects)
			}
		})
	}
}

// What each link screen says, on the smallest panel.
func TestLinkScreensText(t *testing.T) {
	link := goldenLink(t0.Add(5 * time.Minute))
	for _, tt := range []struct {
		name string
		m    Model
		at   time.Time
		want []string
	}{
		{"code", Model{Phase: LinkCode, Link: link, Online: true}, t0.Add(time.Minute), []string{"Link", "BDFG-HJKL", "4:00"}},
		{"code past its expiry", Model{Phase: LinkCode, Link: link, Online: true}, link.Code.Expires, []string{"Code expired", "new code"}},
		{"expired", Model{Phase: LinkExpired, Online: true}, t0, []string{"Code expired", "again"}},
		{"refused", Model{Phase: LinkRefused, Online: true}, t0, []string{"Badge in use", "someone else"}},
		{"waiting", Model{Phase: LinkWait, Online: true}, t0, []string{"code to", "link"}},
		{"linked", Model{Phase: LinkDone, User: "Alice", Online: true}, t0, []string{"Badge linked", "Alice", "Tap again"}},
	} {
		lines, err := display.Text(ViewOf(tt.m, tt.at, "Dock 3"), image.Pt(128, 64))
		if err != nil {
			t.Fatal(err)
		}
		text, joined := strings.Join(lines, " "), strings.Join(lines, "")
		for _, w := range tt.want {
			if !strings.Contains(text, w) && !strings.Contains(joined, w) {
				t.Errorf("%s: reads %q, missing %q", tt.name, lines, w)
			}
		}
	}
}

// The link screen scans on every panel size: the QR carries the URL with the code, read by
// zbar close up (×4). A URL too long for the smallest panels' QR falls back to the page alone,
// with the code on screen to type. Read from a little too far (0.75× bilinear), where 2 px
// modules blur, the smallest panels read this URL; that margin is not there for every URL and
// code (about 1 in 30 in a sweep of hosts and codes fails it).
func TestLinkScreenScans(t *testing.T) {
	if _, err := exec.LookPath("zbarimg"); err != nil {
		t.Skip("zbarimg not installed: apt-get install zbar-tools to run this test")
	}
	type resample struct {
		name     string
		num, den int
		k        xdraw.Interpolator
	}
	close := resample{"x4", 4, 1, xdraw.NearestNeighbor}
	far := resample{"x0.75", 3, 4, xdraw.BiLinear}
	for _, tt := range []struct {
		uri   string
		sizes []image.Point
		rs    []resample
		whole bool // the QR holds the code; false: the page alone
	}{
		{"https://cloud.example.com/device/badge", goldenSizes, []resample{close}, true},
		{"https://cloud.example.com/device/badge", []image.Point{{128, 64}, {64, 128}}, []resample{far}, true},
		{"http://127.0.0.1:45678/device/badge", goldenSizes, []resample{close}, true},
		{"http://devcloud.lan:8780/device/badge", goldenSizes, []resample{close, far}, true},
		{"https://labelcloud.warehouse.example.com/device/badge", []image.Point{{128, 64}, {64, 128}}, []resample{close}, false},
	} {
		link := goldenLink(t0.Add(5 * time.Minute))
		link.Code.URI, link.Code.URIComplete = tt.uri, tt.uri+"?code="+link.Code.UserCode
		want := link.Code.URIComplete
		if !tt.whole {
			want = link.Code.URI
		}
		for _, size := range tt.sizes {
			v := ViewOf(Model{Phase: LinkCode, Link: link, Online: true}, t0, "Dock 3")
			img, err := display.Render(v, size)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range tt.rs {
				got, err := zbar(t, scale(img, r.num, r.den, r.k))
				if err != nil || !sameURL(got, want) {
					t.Errorf("%s on %v at %s: zbar read %q (%v), want %q", tt.uri, size, r.name, got, err, want)
				}
			}
			lines, _ := display.Text(v, size)
			if j := strings.Join(lines, ""); !strings.Contains(j, "BDFG-HJKL") {
				t.Errorf("%s on %v: the code is not on screen: %q", tt.uri, size, lines)
			}
		}
	}
}
