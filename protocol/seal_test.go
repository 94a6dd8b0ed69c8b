package protocol

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func newSealer(t *testing.T, kid string, ed bool, now func() time.Time) (*Sealer, jose.JSONWebKey) {
	t.Helper()
	var key crypto.Signer = mustKey(t)
	if ed {
		_, key, _ = ed25519.GenerateKey(rand.Reader)
	}
	s, err := NewSealer(key, kid, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, s.PublicJWK(key)
}

func keyFunc(keys ...jose.JSONWebKey) KeyFunc {
	return func(kid string) (*jose.JSONWebKey, error) {
		for i := range keys {
			if keys[i].KeyID == kid {
				return &keys[i], nil
			}
		}
		return nil, fmt.Errorf("%w: %q", ErrUnknownKey, kid)
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	for _, ed := range []bool{false, true} {
		s, pub := newSealer(t, "k1", ed, func() time.Time { return t0 })
		topic := StationTopic("st-b", LeafJob)
		msg := []byte(`{"v":2,"id":"job_1"}`)
		b, err := s.Seal(topic, msg)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(string(b), ".") != 2 {
			t.Fatalf("not a compact JWS: %s", b)
		}
		c, got, err := Open(b, topic, keyFunc(pub))
		if err != nil {
			t.Fatalf("ed=%v: %v", ed, err)
		}
		if string(got) != string(msg) {
			t.Errorf("msg = %s", got)
		}
		if c.Aud != "st-b" || c.Topic != LeafJob || c.IAT != t0.Unix() || c.EXP != t0.Add(24*time.Hour).Unix() || len(c.JTI) != 32 {
			t.Errorf("claims = %+v", c)
		}
		if err := c.Fresh(t0.Add(23 * time.Hour)); err != nil {
			t.Errorf("fresh within its lifetime: %v", err)
		}
	}
}

func TestSealUniqueIDs(t *testing.T) {
	s, pub := newSealer(t, "k1", false, nil)
	topic := StationTopic("st-b", LeafCmd)
	seen := map[string]bool{}
	for range 50 {
		b, _ := s.Seal(topic, []byte(`{}`))
		c, _, err := Open(b, topic, keyFunc(pub))
		if err != nil || seen[c.JTI] {
			t.Fatalf("jti %q repeated or %v", c.JTI, err)
		}
		seen[c.JTI] = true
	}
}

func TestOpenRefuses(t *testing.T) {
	s, pub := newSealer(t, "k1", false, func() time.Time { return t0 })
	other, _ := newSealer(t, "k1", false, func() time.Time { return t0 }) // same kid, other key
	stranger, _ := newSealer(t, "k9", true, func() time.Time { return t0 })
	jobB := StationTopic("st-b", LeafJob)
	msg := []byte(`{"v":2,"id":"job_1"}`)
	seal := func(s *Sealer, topic string) []byte {
		b, err := s.Seal(topic, msg)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := seal(s, jobB)
	// A signed access token: a JWS by a trusted key, but not a message.
	tokSigner, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: mustKey(t), KeyID: "k1"}}, (&jose.SignerOptions{}).WithType("JWT"))
	tok, _ := tokSigner.Sign([]byte(`{"aud":"st-b"}`))
	tokStr, _ := tok.CompactSerialize()
	parts := strings.Split(string(good), ".")
	tampered := parts[0] + "." + strings.TrimRight(parts[1], "A") + "B." + parts[2]
	for _, tt := range []struct {
		name, topic string
		payload     []byte
		want        error
	}{
		{"unsigned JSON", jobB, msg, ErrUnsigned},
		{"other key, same kid", jobB, seal(other, jobB), ErrSignature},
		{"unknown kid", jobB, seal(stranger, jobB), ErrUnknownKey},
		{"tampered payload", jobB, []byte(tampered), ErrSignature},
		{"addressed to A, received by B", jobB, seal(s, StationTopic("st-a", LeafJob)), ErrAddress},
		{"a reply moved to the job leaf", jobB, seal(s, StationTopic("st-b", LeafLookupReply)), ErrAddress},
		{"group config moved to a station", StationTopic("st-b", LeafConfigDesired), seal(s, GroupTopic("g", LeafConfigDesired)), ErrAddress},
		{"wrong typ", jobB, []byte(tokStr), ErrSignature},
	} {
		_, _, err := Open(tt.payload, tt.topic, keyFunc(pub))
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
}

func mustKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestFresh(t *testing.T) {
	now := t0
	s, pub := newSealer(t, "k1", false, func() time.Time { return now })
	open := func(leaf string) Claims {
		topic := StationTopic("st-b", leaf)
		b, _ := s.Seal(topic, []byte(`{}`))
		c, _, err := Open(b, topic, keyFunc(pub))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	cmd := open(LeafCmd)
	if err := cmd.Fresh(t0.Add(10*time.Minute + Skew + time.Second)); !errors.Is(err, ErrExpired) {
		t.Errorf("command after 10 min + skew: %v, want ErrExpired", err)
	}
	if err := cmd.Fresh(t0.Add(-Skew - time.Minute)); !errors.Is(err, ErrExpired) {
		t.Errorf("command from the future: %v, want ErrExpired", err)
	}
	// A board that booted in 1970 checks no times: signature, audience and replay still hold.
	if err := cmd.Fresh(time.Unix(60, 0)); err != nil {
		t.Errorf("insane clock: %v", err)
	}
	cfg := open(LeafConfigDesired)
	if cfg.EXP != 0 {
		t.Errorf("config has exp %d; retained config must not expire", cfg.EXP)
	}
	if err := cfg.Fresh(t0.Add(365 * 24 * time.Hour)); err != nil {
		t.Errorf("config a year later: %v", err)
	}
	if r := open(LeafReleaseReply); r.EXP-r.IAT != 120 {
		t.Errorf("reply lifetime %d s", r.EXP-r.IAT)
	}
}

func TestDirection(t *testing.T) {
	for _, leaf := range []string{LeafJob, LeafLookupReply, LeafReleaseReply, LeafConfigDesired, LeafCmd, "job/status/ack", "anything/new"} {
		if !FromCloud(leaf) || FromStation(leaf) {
			t.Errorf("%s is not cloud → station", leaf)
		}
	}
	for _, leaf := range []string{LeafPresence, LeafLookup, LeafRelease, LeafJobStatus, LeafConfigReported, LeafCmdResult, LeafTelemetry, LeafEvent} {
		if FromCloud(leaf) || !FromStation(leaf) {
			t.Errorf("%s is not station → cloud", leaf)
		}
	}
	s, _ := newSealer(t, "k", false, nil)
	if _, err := s.Seal(StationTopic("st-b", LeafJobStatus), []byte(`{}`)); err == nil {
		t.Error("sealed a station → cloud leaf")
	}
}

func TestUnverifiedNamesTheMessage(t *testing.T) {
	s, _ := newSealer(t, "k", false, nil)
	b, _ := s.Seal(StationTopic("st-b", LeafJob), []byte(`{"v":2,"id":"job_7"}`))
	for _, p := range [][]byte{b, []byte(`{"v":2,"id":"job_7"}`)} {
		var head struct{ ID string }
		if json.Unmarshal(Unverified(p), &head); head.ID != "job_7" {
			t.Errorf("Unverified(%.20s…) id = %q", p, head.ID)
		}
	}
}

func TestAddressee(t *testing.T) {
	for _, tt := range []struct{ topic, aud, leaf string }{
		{StationTopic("st-1", LeafJob), "st-1", "job"},
		{GroupTopic("floor2", LeafCmd), "grp:floor2", "cmd"},
		{GroupTopic("floor2", LeafConfigDesired), "grp:floor2", "config/desired"},
	} {
		aud, leaf, err := Addressee(tt.topic)
		if err != nil || aud != tt.aud || leaf != tt.leaf {
			t.Errorf("Addressee(%s) = %q %q %v", tt.topic, aud, leaf, err)
		}
	}
	if _, _, err := Addressee("lrs/v1/grp//cmd"); err == nil {
		t.Error("empty group accepted")
	}
}

// A job of about 4 KiB (layout and a few records), sealed by the cloud and opened by a station.
func BenchmarkSeal(b *testing.B) {
	s, _ := benchSealer(b)
	msg := benchJob()
	topic := StationTopic("st-b", LeafJob)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Seal(topic, msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	s, pub := benchSealer(b)
	topic := StationTopic("st-b", LeafJob)
	sealed, _ := s.Seal(topic, benchJob())
	keys := keyFunc(pub)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Open(sealed, topic, keys); err != nil {
			b.Fatal(err)
		}
	}
}

func benchSealer(b *testing.B) (*Sealer, jose.JSONWebKey) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	s, err := NewSealer(k, "k1", nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	return s, s.PublicJWK(k)
}

func benchJob() []byte {
	data := []byte(strings.Repeat("Ada Lovelace,12 Square,4JH,London,TRK0000000001\n", 40))
	msg, _ := json.Marshal(Job{V: Version, ID: "job_1", Title: "Shipping labels", Layout: json.RawMessage(`{"v":1,"size":{"w":100,"h":150}}`),
		Format: "csv", Data: data, Labels: 40})
	return msg
}
