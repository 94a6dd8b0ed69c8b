package protocol

import (
	"errors"
	"strings"
	"testing"
)

var badgeLinkSeeds = []string{
	`{"v":2,"req":"5e0f","code":"BDFG-HJKL","uri":"https://cloud.example.com/device/badge","uri_complete":"https://cloud.example.com/device/badge?code=BDFG-HJKL","expires_in":300}`,
	`{"v":2,"req":"5e0f","error":{"code":"badge_linked","message":"this badge belongs to someone already"}}`,
	`{"v":2,"req":"5e0f","code":"","expires_in":-1}`,
}

var badgeLinkedSeeds = []string{
	`{"v":2,"code":"BDFG-HJKL","user":{"id":"alice","name":"Alice Adler"}}`,
	`{"v":2,"code":""}`,
}

func FuzzDecodeBadgeLinkReply(f *testing.F) { fuzzDecode[BadgeLinkReply](f, badgeLinkSeeds) }
func FuzzDecodeBadgeLinked(f *testing.F)    { fuzzDecode[BadgeLinked](f, badgeLinkedSeeds) }

// Whatever decodes, Check either accepts or names the field it refuses; it never panics.
func FuzzBadgeLinkReplyCheck(f *testing.F) {
	for _, s := range badgeLinkSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r BadgeLinkReply
		if Decode(data, &r) != nil {
			return
		}
		if err := r.Check(); err != nil && !errors.Is(err, ErrBadgeLinkReply) {
			t.Fatalf("Check: %v is not ErrBadgeLinkReply", err)
		}
	})
}

func TestBadgeLinkExamplesDecode(t *testing.T) {
	var r BadgeLinkReply
	if err := Decode([]byte(badgeLinkSeeds[0]), &r); err != nil || r.Check() != nil || r.Code != "BDFG-HJKL" || r.ExpiresIn != 300 {
		t.Fatalf("reply example: %+v %v %v", r, err, r.Check())
	}
	r = BadgeLinkReply{}
	if err := Decode([]byte(badgeLinkSeeds[1]), &r); err != nil || r.Error == nil || r.Error.Code != CodeBadgeLinked || r.Check() != nil {
		t.Fatalf("refusal example: %+v %v", r, err)
	}
	var l BadgeLinked
	if err := Decode([]byte(badgeLinkedSeeds[0]), &l); err != nil || l.Code != "BDFG-HJKL" || l.User.Name != "Alice Adler" {
		t.Fatalf("linked example: %+v %v", l, err)
	}
	var q BadgeLinkRequest
	if err := Decode([]byte(`{"v":2,"req":"5e0f","badge":"9f2c1a2b"}`), &q); err != nil || q.Badge != "9f2c1a2b" {
		t.Fatalf("request example: %+v %v", q, err)
	}
}

func TestBadgeLinkReplyCheckNamesTheField(t *testing.T) {
	good := BadgeLinkReply{V: Version, Req: "r", Code: "BDFG-HJKL", URI: "https://c.example/device/badge",
		URIComplete: "https://c.example/device/badge?code=BDFG-HJKL", ExpiresIn: 300}
	if err := good.Check(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		edit  func(*BadgeLinkReply)
		field string
	}{
		{"no code", func(r *BadgeLinkReply) { r.Code = "" }, "code:"},
		{"lower case code", func(r *BadgeLinkReply) { r.Code = "bdfg<b>" }, "code:"},
		{"javascript uri", func(r *BadgeLinkReply) { r.URI = "javascript:alert(1)" }, "uri:"},
		{"no host", func(r *BadgeLinkReply) { r.URIComplete = "https:///x" }, "uri_complete:"},
		{"no expiry", func(r *BadgeLinkReply) { r.ExpiresIn = 0 }, "expires_in:"},
		{"too long a life", func(r *BadgeLinkReply) { r.ExpiresIn = 3600 }, "expires_in:"},
	} {
		r := good
		tt.edit(&r)
		err := r.Check()
		if !errors.Is(err, ErrBadgeLinkReply) || !strings.Contains(err.Error(), tt.field) {
			t.Errorf("%s: %v, want an error naming %s", tt.name, err, tt.field)
		}
	}
}

// The request is the station's; the reply is the cloud's and so travels sealed.
func TestBadgeLinkLeaves(t *testing.T) {
	if !FromStation(LeafBadgeLink) || !FromCloud(LeafBadgeLinkReply) || !FromCloud(LeafBadgeLinked) {
		t.Fatalf("FromStation(%s)=%v FromCloud(%s)=%v", LeafBadgeLink, FromStation(LeafBadgeLink), LeafBadgeLinkReply, FromCloud(LeafBadgeLinkReply))
	}
	if Lifetime(LeafBadgeLinkReply) != Lifetime(LeafLookupReply) {
		t.Errorf("a link reply lives %v, a lookup reply %v", Lifetime(LeafBadgeLinkReply), Lifetime(LeafLookupReply))
	}
}

func TestBadgeTail(t *testing.T) {
	for in, want := range map[string]string{"9F2C1A2B": "1a2b", "ab": "ab", "": ""} {
		if got := BadgeTail(in); got != want {
			t.Errorf("BadgeTail(%q) = %q, want %q", in, got, want)
		}
	}
}
