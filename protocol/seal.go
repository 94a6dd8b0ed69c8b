package protocol

// Sealed messages. Every message the cloud publishes on a cloud → station leaf is a JWS in
// compact serialization whose payload binds the message to its addressee, its leaf, a lifetime
// and a unique id. A station acts only on what it can open with the cloud's published keys, so a
// broker that is misconfigured, shared or compromised cannot make it print, apply or execute
// anything. docs/protocol.md describes the format.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// SealType is the JWS "typ" of a sealed message. A station refuses any other type, so no other
// JWS signed by the issuer's keys (an access token, say) can pass for a message.
const SealType = "lrs-msg+jws"

// SealAlgorithms are the signature algorithms a station accepts.
var SealAlgorithms = []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA}

// GroupAudience prefixes a group name in Claims.Aud.
const GroupAudience = "grp:"

// stationLeaves are the leaves a station publishes. Every other leaf under a station's subtree
// is cloud → station and must be sealed: a leaf added later is verified without anyone
// remembering to list it.
var stationLeaves = []string{
	LeafPresence, LeafLookup, LeafRelease, LeafJobStatus, LeafConfigReported, LeafCmdResult,
	LeafTelemetry, LeafEvent, LeafBadgeLink,
}

// StationLeaves lists the station → cloud leaves, for brokers' ACLs.
func StationLeaves() []string { return slices.Clone(stationLeaves) }

// FromStation reports whether leaf is published by a station (station → cloud).
func FromStation(leaf string) bool { return slices.Contains(stationLeaves, leaf) }

// FromCloud reports whether leaf is published by the cloud and so must be sealed.
func FromCloud(leaf string) bool { return leaf != "" && !FromStation(leaf) }

// Lifetime is how long a sealed message on leaf stays valid; zero means no expiry.
//
// Jobs live long enough to wait in an offline station's persistent session; replies answer a
// request that times out in seconds; commands must not fire long after the fleet manager sent
// them. config/desired is retained and re-delivered on every connect, so it has no expiry:
// a station refuses one issued before the config it already applied instead.
func Lifetime(leaf string) time.Duration {
	switch leaf {
	case LeafJob:
		return 24 * time.Hour
	case LeafConfigDesired:
		return 0
	case LeafLookupReply, LeafReleaseReply, LeafBadgeLinkReply:
		return 2 * time.Minute
	default: // commands and any other cloud → station leaf
		return 10 * time.Minute
	}
}

// Claims are bound to a sealed message by the signature.
type Claims struct {
	Aud   string `json:"aud"`           // station id, or GroupAudience+name
	Topic string `json:"top"`           // leaf, e.g. "job"
	IAT   int64  `json:"iat"`           // issued at, Unix seconds
	EXP   int64  `json:"exp,omitempty"` // expiry, Unix seconds; 0: none
	JTI   string `json:"jti"`           // unique id, for the replay window
}

// sealed is the JWS payload.
type sealed struct {
	Claims
	Msg json.RawMessage `json:"msg"`
}

// Addressee splits a cloud → station topic into its audience (the station id, or grp:NAME) and
// its leaf.
func Addressee(topic string) (aud, leaf string, err error) {
	if station, leaf, err := ParseStationTopic(topic); err == nil {
		return station, leaf, nil
	}
	rest, ok := strings.CutPrefix(topic, Root+"/grp/")
	if ok {
		group, leaf, ok := strings.Cut(rest, "/")
		if ok && group != "" && leaf != "" {
			return GroupAudience + group, leaf, nil
		}
	}
	return "", "", fmt.Errorf("%w: %q", ErrTopic, topic)
}

// Reasons a sealed message is refused. Each is wrapped with the detail.
var (
	ErrUnsigned   = errors.New("protocol: message is not signed")
	ErrSignature  = errors.New("protocol: bad signature")
	ErrUnknownKey = errors.New("protocol: signed by an unknown key")
	ErrAddress    = errors.New("protocol: message is addressed elsewhere")
	ErrExpired    = errors.New("protocol: message expired")
	ErrReplay     = errors.New("protocol: message replayed")
)

// Reason is the short, stable code of a refusal, for logs and reports.
func Reason(err error) string {
	for _, r := range []struct {
		err  error
		code string
	}{
		{ErrUnsigned, "unsigned"}, {ErrUnknownKey, "unknown_key"}, {ErrSignature, "bad_signature"},
		{ErrAddress, "misaddressed"}, {ErrExpired, "expired"}, {ErrReplay, "replayed"},
	} {
		if errors.Is(err, r.err) {
			return r.code
		}
	}
	return "invalid"
}

// Sealer signs messages for stations; the cloud's single publish path owns one.
type Sealer struct {
	signer jose.Signer
	kid    string
	now    func() time.Time
	rand   io.Reader
}

// NewSealer signs with key (an *ecdsa.PrivateKey on P-256 for ES256, or an ed25519.PrivateKey
// for EdDSA) under kid, the key id published in the issuer's JWKS. now and random may be nil.
func NewSealer(key crypto.Signer, kid string, now func() time.Time, random io.Reader) (*Sealer, error) {
	alg, err := sealAlgorithm(key)
	if err != nil {
		return nil, err
	}
	if kid == "" {
		return nil, errors.New("protocol: sealer: empty key id")
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: string(alg)}},
		(&jose.SignerOptions{}).WithType(SealType))
	if err != nil {
		return nil, fmt.Errorf("protocol: sealer: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	if random == nil {
		random = rand.Reader
	}
	return &Sealer{signer: sig, kid: kid, now: now, rand: random}, nil
}

func sealAlgorithm(key crypto.Signer) (jose.SignatureAlgorithm, error) {
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return "", errors.New("protocol: sealer: ECDSA key must be on P-256 (ES256)")
		}
		return jose.ES256, nil
	case ed25519.PrivateKey:
		return jose.EdDSA, nil
	}
	return "", fmt.Errorf("protocol: sealer: unsupported key type %T (want ECDSA P-256 or Ed25519)", key)
}

// KeyID is the kid the sealer signs under.
func (s *Sealer) KeyID() string { return s.kid }

// PublicJWK is the public key to publish in the issuer's JWKS.
func (s *Sealer) PublicJWK(key crypto.Signer) jose.JSONWebKey {
	alg, _ := sealAlgorithm(key)
	return jose.JSONWebKey{Key: key.Public(), KeyID: s.kid, Algorithm: string(alg), Use: "sig"}
}

// Seal signs msg (a JSON message) for topic. The audience and leaf come from the topic, the
// expiry from Lifetime.
func (s *Sealer) Seal(topic string, msg []byte) ([]byte, error) {
	aud, leaf, err := Addressee(topic)
	if err != nil {
		return nil, err
	}
	if !FromCloud(leaf) {
		return nil, fmt.Errorf("protocol: seal: %s is a station → cloud leaf", leaf)
	}
	var id [16]byte
	if _, err := io.ReadFull(s.rand, id[:]); err != nil {
		return nil, fmt.Errorf("protocol: seal: %w", err)
	}
	now := s.now()
	c := Claims{Aud: aud, Topic: leaf, IAT: now.Unix(), JTI: hex.EncodeToString(id[:])}
	if ttl := Lifetime(leaf); ttl > 0 {
		c.EXP = now.Add(ttl).Unix()
	}
	payload, err := json.Marshal(sealed{Claims: c, Msg: msg})
	if err != nil {
		return nil, fmt.Errorf("protocol: seal: %w", err)
	}
	jws, err := s.signer.Sign(payload)
	if err != nil {
		return nil, fmt.Errorf("protocol: seal: %w", err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		return nil, fmt.Errorf("protocol: seal: %w", err)
	}
	return []byte(out), nil
}

// KeyFunc returns the public key published under kid.
type KeyFunc func(kid string) (*jose.JSONWebKey, error)

// Open verifies a sealed message received on topic and returns its claims and the message.
// It checks the type, the algorithm, the signature (with the key named by the kid header) and
// that audience and leaf match the topic it arrived on. Time and replay are the caller's, who
// knows the clock and keeps the window (Claims.Fresh).
func Open(payload []byte, topic string, key KeyFunc) (Claims, []byte, error) {
	var c Claims
	aud, leaf, err := Addressee(topic)
	if err != nil {
		return c, nil, err
	}
	jws, err := jose.ParseSigned(string(payload), SealAlgorithms)
	if err != nil {
		return c, nil, fmt.Errorf("%w: %v", ErrUnsigned, err)
	}
	if len(jws.Signatures) != 1 {
		return c, nil, fmt.Errorf("%w: %d signatures", ErrSignature, len(jws.Signatures))
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != SealType {
		return c, nil, fmt.Errorf("%w: typ %q, want %q", ErrSignature, typ, SealType)
	}
	if h.KeyID == "" {
		return c, nil, fmt.Errorf("%w: no kid", ErrUnknownKey)
	}
	k, err := key(h.KeyID)
	if err != nil {
		return c, nil, err
	}
	if k.Use != "" && k.Use != "sig" {
		return c, nil, fmt.Errorf("%w: key %q is for %q", ErrUnknownKey, h.KeyID, k.Use)
	}
	if k.Algorithm != "" && k.Algorithm != h.Algorithm {
		return c, nil, fmt.Errorf("%w: key %q is for %s, message says %s", ErrSignature, h.KeyID, k.Algorithm, h.Algorithm)
	}
	body, err := jws.Verify(k)
	if err != nil {
		return c, nil, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	var s sealed
	if err := json.Unmarshal(body, &s); err != nil {
		return c, nil, fmt.Errorf("%w: payload: %v", ErrSignature, err)
	}
	c = s.Claims
	switch {
	case c.Aud != aud:
		return c, nil, fmt.Errorf("%w: for %q, received on %s", ErrAddress, c.Aud, topic)
	case c.Topic != leaf:
		return c, nil, fmt.Errorf("%w: for leaf %q, received on %s", ErrAddress, c.Topic, topic)
	case c.JTI == "" || c.IAT == 0 || len(s.Msg) == 0:
		return c, nil, fmt.Errorf("%w: jti, iat or msg missing", ErrSignature)
	}
	return c, s.Msg, nil
}

// Unverified returns the message inside payload without checking anything, so a refusal can
// name the job or command it was about. Never act on it.
func Unverified(payload []byte) []byte {
	if jws, err := jose.ParseSigned(string(payload), SealAlgorithms); err == nil {
		var s sealed
		if json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &s) == nil {
			return s.Msg
		}
		return nil
	}
	return payload
}

// ClockSane reports whether now can be trusted for expiry checks. A board without a real-time
// clock boots in 1970 until NTP answers; every message would look issued in the future.
func ClockSane(now time.Time) bool { return now.Year() >= 2024 }

// Skew is how far a station's clock may be off the cloud's.
const Skew = 5 * time.Minute

// Fresh checks iat and exp against now. With a clock that is not sane it checks nothing; the
// signature, the audience and the replay window still hold.
func (c Claims) Fresh(now time.Time) error {
	if !ClockSane(now) {
		return nil
	}
	t := now.Unix()
	sk := int64(Skew / time.Second)
	if c.EXP != 0 && t > c.EXP+sk {
		return fmt.Errorf("%w: at %s", ErrExpired, time.Unix(c.EXP, 0).UTC().Format(time.RFC3339))
	}
	if c.IAT > t+sk {
		return fmt.Errorf("%w: issued in the future (%s)", ErrExpired, time.Unix(c.IAT, 0).UTC().Format(time.RFC3339))
	}
	return nil
}
