package broker

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	jose "github.com/go-jose/go-jose/v4"
)

// issuer is an authorization server's metadata and key set, with keys generated for the test.
type issuer struct {
	t        *testing.T
	url      string
	mu       sync.Mutex
	keys     []jose.JSONWebKey // private
	keyFetch atomic.Int32
}

func newIssuer(t *testing.T) *issuer {
	is := &issuer{t: t}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": is.url, "jwks_uri": is.url + "/keys"})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		is.keyFetch.Add(1)
		is.mu.Lock()
		defer is.mu.Unlock()
		var set jose.JSONWebKeySet
		for _, k := range is.keys {
			set.Keys = append(set.Keys, k.Public())
		}
		json.NewEncoder(w).Encode(set)
	})
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	is.url = hs.URL
	is.addKey("ec-1", jose.ES256)
	return is
}

func (is *issuer) addKey(kid string, alg jose.SignatureAlgorithm) {
	var key any
	var err error
	if alg == jose.RS256 {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		is.t.Fatal(err)
	}
	is.mu.Lock()
	is.keys = append(is.keys, jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: string(alg), Use: "sig"})
	is.mu.Unlock()
}

// sign makes a JWT access token with the key kid (the last one added when kid is "").
func (is *issuer) sign(kid string, claims map[string]any) string {
	is.mu.Lock()
	k := is.keys[len(is.keys)-1]
	for _, c := range is.keys {
		if c.KeyID == kid {
			k = c
		}
	}
	is.mu.Unlock()
	opts := (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", k.KeyID)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.Algorithm), Key: k.Key}, opts)
	if err != nil {
		is.t.Fatal(err)
	}
	b, _ := json.Marshal(claims)
	jws, err := s.Sign(b)
	if err != nil {
		is.t.Fatal(err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		is.t.Fatal(err)
	}
	return tok
}

var jwksNow = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func (is *issuer) claims(mod func(map[string]any)) map[string]any {
	c := map[string]any{
		"iss": is.url, "sub": "device-7f3a", "aud": []string{"label-stations", "account"},
		"iat": jwksNow.Unix(), "exp": jwksNow.Add(time.Hour).Unix(), "tp_id": 4711,
	}
	if mod != nil {
		mod(c)
	}
	return c
}

func newTestJWKS(t *testing.T, is *issuer, mod func(*JWKSOptions)) *JWKS {
	o := JWKSOptions{Issuer: is.url, Audience: "label-stations", Now: func() time.Time { return jwksNow }}
	if mod != nil {
		mod(&o)
	}
	j, err := NewJWKS(o)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestJWKSVerify(t *testing.T) {
	is := newIssuer(t)
	j := newTestJWKS(t, is, nil)
	hs := func(claims map[string]any) string {
		s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("0123456789abcdef0123456789abcdef")}, nil)
		b, _ := json.Marshal(claims)
		jws, _ := s.Sign(b)
		tok, _ := jws.CompactSerialize()
		return tok
	}
	for _, tc := range []struct {
		name, token, want, err string
	}{
		{"good", is.sign("", is.claims(nil)), "device-7f3a", ""},
		{"audience as a string", is.sign("", is.claims(func(c map[string]any) { c["aud"] = "label-stations" })), "device-7f3a", ""},
		{"other audience", is.sign("", is.claims(func(c map[string]any) { c["aud"] = "crm" })), "", "audience"},
		{"other issuer", is.sign("", is.claims(func(c map[string]any) { c["iss"] = "https://evil.example" })), "", "issuer"},
		{"expired", is.sign("", is.claims(func(c map[string]any) { c["exp"] = jwksNow.Add(-time.Minute).Unix() })), "", "expired"},
		{"within leeway", is.sign("", is.claims(func(c map[string]any) { c["exp"] = jwksNow.Add(-10 * time.Second).Unix() })), "device-7f3a", ""},
		{"no exp", is.sign("", is.claims(func(c map[string]any) { delete(c, "exp") })), "", "no exp"},
		{"not yet valid", is.sign("", is.claims(func(c map[string]any) { c["nbf"] = jwksNow.Add(time.Hour).Unix() })), "", "not valid before"},
		{"station id with a slash", is.sign("", is.claims(func(c map[string]any) { c["sub"] = "a/b" })), "", "cannot name a station"},
		{"HMAC with a guessed secret", hs(is.claims(nil)), "", "algorithm"},
		{"tampered payload", tamper(is.sign("", is.claims(nil))), "", ""},
		{"not a JWT (opaque token)", "2YotnFZFEjr1zCsicMWpAA", "", "token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := j.Verify(context.Background(), tc.token)
			if tc.want != "" {
				if err != nil || got != tc.want {
					t.Fatalf("Verify = %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Verify = %q, %v; want an error about %q", got, err, tc.err)
			}
		})
	}
}

// tamper swaps the payload for one naming another station, keeping the signature.
func tamper(tok string) string {
	p := strings.Split(tok, ".")
	var c map[string]any
	b, _ := base64.RawURLEncoding.DecodeString(p[1])
	json.Unmarshal(b, &c)
	c["sub"] = "someone-else"
	b, _ = json.Marshal(c)
	p[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(p, ".")
}

func TestJWKSStationClaim(t *testing.T) {
	is := newIssuer(t)
	j := newTestJWKS(t, is, func(o *JWKSOptions) { o.StationClaim = "tp_id" })
	if got, err := j.Verify(context.Background(), is.sign("", is.claims(nil))); err != nil || got != "4711" {
		t.Fatalf("Verify = %q, %v; want the numeric tp_id as text", got, err)
	}
	tok := is.sign("", is.claims(func(c map[string]any) { delete(c, "tp_id") }))
	if _, err := j.Verify(context.Background(), tok); err == nil || !strings.Contains(err.Error(), "tp_id") {
		t.Fatalf("Verify without the claim: %v", err)
	}
}

// VerifyClaims also returns jti and iat, which order a station's tokens for session takeover.
func TestJWKSVerifyClaims(t *testing.T) {
	is := newIssuer(t)
	j := newTestJWKS(t, is, func(o *JWKSOptions) { o.StationClaim = "tp_id" })
	c, err := j.VerifyClaims(context.Background(), is.sign("", is.claims(func(c map[string]any) { c["jti"] = "tok-1" })))
	if err != nil || c.StationID != "4711" || c.ID != "tok-1" || !c.IssuedAt.Equal(time.Unix(jwksNow.Unix(), 0)) {
		t.Fatalf("VerifyClaims = %+v, %v", c, err)
	}
	later := is.sign("", is.claims(func(c map[string]any) { c["iat"] = jwksNow.Add(time.Minute).Unix() }))
	c2, err := j.VerifyClaims(context.Background(), later)
	if err != nil || !c2.mayReplace(c) || c.mayReplace(c2) {
		t.Fatalf("a later iat must replace an earlier one: %+v %+v %v", c2, c, err)
	}
}

// A rotated key is fetched once; made-up key ids do not make the broker hammer the issuer.
func TestJWKSKeyRotationAndRefetchLimit(t *testing.T) {
	is := newIssuer(t)
	now := jwksNow
	var nowMu sync.Mutex
	j := newTestJWKS(t, is, func(o *JWKSOptions) {
		o.Now = func() time.Time { nowMu.Lock(); defer nowMu.Unlock(); return now }
	})
	if _, err := j.Verify(context.Background(), is.sign("", is.claims(nil))); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		tok := is.sign("", is.claims(nil))
		// Same signature, a header naming a key that does not exist.
		hdr := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"alg":"ES256","kid":"bogus-%d"}`, i)))
		p := strings.Split(tok, ".")
		if _, err := j.Verify(context.Background(), hdr+"."+p[1]+"."+p[2]); err == nil {
			t.Fatal("a token with an unknown key id verified")
		}
	}
	if n := is.keyFetch.Load(); n != 1 {
		t.Fatalf("%d key set fetches for 100 unknown key ids within a minute, want 1", n)
	}
	is.addKey("rsa-2", jose.RS256)
	nowMu.Lock()
	now = now.Add(2 * time.Minute)
	nowMu.Unlock()
	if got, err := j.Verify(context.Background(), is.sign("rsa-2", is.claims(func(c map[string]any) { c["exp"] = now.Add(time.Hour).Unix() }))); err != nil || got != "device-7f3a" {
		t.Fatalf("token signed with the rotated-in key: %q, %v", got, err)
	}
	if n := is.keyFetch.Load(); n != 2 {
		t.Fatalf("%d key set fetches, want 2", n)
	}
}

func TestJWKSMetadataForAnotherIssuer(t *testing.T) {
	is := newIssuer(t)
	j := newTestJWKS(t, is, func(o *JWKSOptions) { o.Issuer = is.url + "/" })
	tok := is.sign("", is.claims(func(c map[string]any) { c["iss"] = is.url + "/" }))
	if _, err := j.Verify(context.Background(), tok); err == nil || !strings.Contains(err.Error(), "names issuer") {
		t.Fatalf("Verify: %v, want a refusal of metadata for another issuer", err)
	}
}

// The embedded broker lets a station in with an external issuer's access token, as the station
// named by the token, and no one else under that name.
func TestBrokerAcceptsExternalIssuerTokens(t *testing.T) {
	is := newIssuer(t)
	j := newTestJWKS(t, is, func(o *JWKSOptions) { o.Now = time.Now })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Start(Options{Listener: ln, Verify: j.Verifier(), ServiceUser: "svc", ServicePassword: "svc-pass"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	good := is.sign("", is.claims(func(c map[string]any) { c["exp"] = time.Now().Add(time.Hour).Unix() }))
	connect := func(user, token string) error {
		o := paho.NewClientOptions().AddBroker("tcp://" + b.Addr()).SetClientID(user).SetUsername(user).SetPassword(token).
			SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(10 * time.Second)
		c := paho.NewClient(o)
		tk := c.Connect()
		if !tk.WaitTimeout(15 * time.Second) {
			return fmt.Errorf("connect timed out")
		}
		if tk.Error() == nil {
			c.Disconnect(100)
		}
		return tk.Error()
	}
	if err := connect("device-7f3a", good); err != nil {
		t.Fatalf("station with a valid external token refused: %v", err)
	}
	if err := connect("device-other", good); err == nil {
		t.Fatal("another station's name accepted with this token")
	}
	expired := is.sign("", is.claims(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }))
	if err := connect("device-7f3a", expired); err == nil {
		t.Fatal("expired token accepted")
	}
}
