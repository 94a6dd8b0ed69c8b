package protocol

import (
	"errors"
	"testing"
)

func TestParseStationTopic(t *testing.T) {
	for _, tt := range []struct {
		topic, station, leaf string
		ok                   bool
	}{
		{StationTopic("st-1", LeafLookup), "st-1", "lookup", true},
		{StationTopic("st-1", LeafJobStatus), "st-1", "job/status", true},
		{"lrs/v1/st/st-1", "", "", false},
		{"lrs/v1/st//lookup", "", "", false},
		{"lrs/v2/st/st-1/lookup", "", "", false},
		{GroupTopic("g", LeafCmd), "", "", false},
	} {
		st, leaf, err := ParseStationTopic(tt.topic)
		if (err == nil) != tt.ok || st != tt.station || leaf != tt.leaf {
			t.Errorf("ParseStationTopic(%q) = %q, %q, %v", tt.topic, st, leaf, err)
		}
		if err != nil && !errors.Is(err, ErrTopic) {
			t.Errorf("error %v is not ErrTopic", err)
		}
	}
}

func TestDecodeChecksVersion(t *testing.T) {
	var r LookupRequest
	if err := Decode([]byte(`{"v":1,"req":"a","badge":"b"}`), &r); err != nil || r.Req != "a" || r.Badge != "b" {
		t.Fatalf("v1: %+v %v", r, err)
	}
	for _, bad := range []string{`{"req":"a"}`, `{"v":2,"req":"a"}`, `{"v":"1"}`, `not json`} {
		err := Decode([]byte(bad), &r)
		if err == nil {
			t.Errorf("Decode(%s) accepted", bad)
		}
	}
	if err := Decode([]byte(`{"v":2}`), &r); !errors.Is(err, ErrVersion) {
		t.Errorf("v2: %v, want ErrVersion", err)
	}
}

// The badge hash is HMAC-SHA256 (RFC 2104) in lower-case hex; the vector is RFC 4231 test case 2.
func TestBadgeHash(t *testing.T) {
	got := BadgeHash([]byte("Jefe"), "what do ya want for nothing?")
	want := "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
	if got != want {
		t.Fatalf("BadgeHash = %s, want %s", got, want)
	}
	if BadgeHash([]byte("k1"), "04A1") == BadgeHash([]byte("k2"), "04A1") {
		t.Fatal("the key does not change the hash")
	}
}

func TestMessageID(t *testing.T) {
	for in, want := range map[string]string{
		`{"v":1,"id":"job-7","labels":"three"}`:  "job-7",
		`{"v":2,"id":"cmd-1"}`:                   "cmd-1",
		`{"v":1,"version":"cfg_9","config":"x"}`: "cfg_9",
		`{"v":1,"id":42}`:                        "",
		`not json`:                               "",
		`{"v":1}`:                                "",
	} {
		if got := MessageID([]byte(in)); got != want {
			t.Errorf("MessageID(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckLabel(t *testing.T) {
	j := Job{Labels: 2}
	if err := j.CheckLabel(2); err != nil {
		t.Fatalf("label 2 of 2: %v", err)
	}
	if err := j.CheckLabel(3); !errors.Is(err, ErrTooManyLabels) {
		t.Fatalf("label 3 of 2: %v, want ErrTooManyLabels", err)
	}
}
