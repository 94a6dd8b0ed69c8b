package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// JWKSOptions configures a verifier for the JWT access tokens (RFC 9068) of an authorization
// server this project did not write: Keycloak, Auth0, Okta, Entra ID, dex, zitadel...
type JWKSOptions struct {
	// Issuer is the server's issuer URL, compared exactly with the token's `iss`.
	Issuer string
	// KeysURL is the JWK Set (RFC 7517 §5); empty reads jwks_uri from the issuer's metadata.
	KeysURL string
	// Audience, if set, must be one of the token's `aud` values: without it a token the server
	// issued for any other application would open the broker.
	Audience string
	// StationClaim is the claim that names the station (the MQTT username). Default "sub".
	StationClaim string
	// HTTPClient fetches metadata and keys; nil = a client with a 10 s timeout.
	HTTPClient *http.Client
	// Leeway absorbs clock skew on exp and nbf. Default 30 s.
	Leeway time.Duration
	// RefetchAfter is the least time between two key set fetches caused by an unknown key id, so
	// tokens with made-up key ids cannot make the broker hammer the server. Default 1 minute.
	RefetchAfter time.Duration
	Now          func() time.Time
}

// JWKS verifies access tokens by the issuer's published keys. A key id it has not seen makes it
// fetch the key set again (the server rotated its keys), at most once per RefetchAfter.
type JWKS struct {
	opt JWKSOptions

	mu      sync.Mutex
	keys    jose.JSONWebKeySet
	fetched time.Time
}

// jwtAlgs are the signature algorithms accepted; "none" and HMAC (a shared secret the broker
// does not have) are not among them.
var jwtAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// NewJWKS checks opt; keys are fetched on first use, so the broker starts while the issuer is down.
func NewJWKS(opt JWKSOptions) (*JWKS, error) {
	u, err := url.Parse(opt.Issuer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("broker: JWKSOptions.Issuer %q: want an absolute http(s) URL", opt.Issuer)
	}
	if opt.StationClaim == "" {
		opt.StationClaim = "sub"
	}
	if opt.HTTPClient == nil {
		opt.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if opt.Leeway == 0 {
		opt.Leeway = 30 * time.Second
	}
	if opt.RefetchAfter == 0 {
		opt.RefetchAfter = time.Minute
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &JWKS{opt: opt}, nil
}

// Verifier is j as the broker's Verifier.
func (j *JWKS) Verifier() Verifier { return j.Verify }

// Verify checks the token's signature, issuer, expiry, audience and returns the station claim.
func (j *JWKS) Verify(ctx context.Context, token string) (string, error) {
	c, err := j.VerifyClaims(ctx, token)
	return c.StationID, err
}

// VerifyClaims is Verify that also returns the token's jti and iat, so the broker can tell a
// station's newer token from a replayed one.
func (j *JWKS) VerifyClaims(ctx context.Context, token string) (Claims, error) {
	jws, err := jose.ParseSigned(token, jwtAlgs)
	if err != nil {
		return Claims{}, fmt.Errorf("broker: token: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return Claims{}, errors.New("broker: token: want exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	key, err := j.key(ctx, kid)
	if err != nil {
		return Claims{}, err
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return Claims{}, fmt.Errorf("broker: token: %w", err)
	}
	return j.check(payload)
}

// key returns the public key for kid, fetching the key set when it is unknown.
func (j *JWKS) key(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if k := j.lookup(kid); k != nil {
		return k, nil
	}
	now := j.opt.Now()
	if !j.fetched.IsZero() && now.Sub(j.fetched) < j.opt.RefetchAfter {
		return nil, fmt.Errorf("broker: token: unknown key id %q", kid)
	}
	j.fetched = now
	ks, err := j.fetch(ctx)
	if err != nil {
		return nil, fmt.Errorf("broker: key set of %s: %w", j.opt.Issuer, err)
	}
	j.keys = ks
	if k := j.lookup(kid); k != nil {
		return k, nil
	}
	return nil, fmt.Errorf("broker: token: unknown key id %q", kid)
}

// lookup finds a signing key by id; a token without kid matches a set of one signing key.
func (j *JWKS) lookup(kid string) *jose.JSONWebKey {
	var sig []jose.JSONWebKey
	for _, k := range j.keys.Keys {
		if k.Use == "" || k.Use == "sig" {
			sig = append(sig, k)
		}
	}
	for i := range sig {
		if sig[i].KeyID == kid && kid != "" {
			return &sig[i]
		}
	}
	if kid == "" && len(sig) == 1 {
		return &sig[0]
	}
	return nil
}

func (j *JWKS) fetch(ctx context.Context) (jose.JSONWebKeySet, error) {
	var ks jose.JSONWebKeySet
	u := j.opt.KeysURL
	if u == "" {
		var md struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := j.getJSON(ctx, strings.TrimSuffix(j.opt.Issuer, "/")+"/.well-known/openid-configuration", &md); err != nil {
			return ks, err
		}
		// OpenID Connect Discovery §4.3: metadata for another issuer is not this issuer's.
		if md.Issuer != j.opt.Issuer {
			return ks, fmt.Errorf("metadata names issuer %q, want %q", md.Issuer, j.opt.Issuer)
		}
		if md.JWKSURI == "" {
			return ks, errors.New("metadata has no jwks_uri")
		}
		u = md.JWKSURI
	}
	if err := j.getJSON(ctx, u, &ks); err != nil {
		return ks, err
	}
	return ks, nil
}

func (j *JWKS) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := j.opt.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}

// check validates the claims of a verified payload and returns the station, jti and iat.
func (j *JWKS) check(payload []byte) (Claims, error) {
	d := json.NewDecoder(bytes.NewReader(payload))
	d.UseNumber()
	var c map[string]any
	if err := d.Decode(&c); err != nil {
		return Claims{}, fmt.Errorf("broker: token claims: %w", err)
	}
	if iss, _ := c["iss"].(string); iss != j.opt.Issuer {
		return Claims{}, fmt.Errorf("broker: token issuer %q, want %q", iss, j.opt.Issuer)
	}
	now := j.opt.Now()
	exp, ok := numericDate(c["exp"])
	if !ok {
		return Claims{}, errors.New("broker: token has no exp")
	}
	if !now.Before(exp.Add(j.opt.Leeway)) {
		return Claims{}, fmt.Errorf("broker: token expired at %v", exp)
	}
	if nbf, ok := numericDate(c["nbf"]); ok && now.Add(j.opt.Leeway).Before(nbf) {
		return Claims{}, fmt.Errorf("broker: token not valid before %v", nbf)
	}
	if j.opt.Audience != "" && !slices.Contains(audiences(c["aud"]), j.opt.Audience) {
		return Claims{}, fmt.Errorf("broker: token audience %v does not include %q", c["aud"], j.opt.Audience)
	}
	var id string
	switch v := c[j.opt.StationClaim].(type) {
	case string:
		id = v
	case json.Number:
		id = v.String()
	}
	if id == "" || strings.ContainsAny(id, "+#/\x00") {
		return Claims{}, fmt.Errorf("broker: token claim %s %q cannot name a station", j.opt.StationClaim, id)
	}
	out := Claims{StationID: id}
	out.ID, _ = c["jti"].(string)
	if iat, ok := numericDate(c["iat"]); ok {
		out.IssuedAt = iat
	}
	return out, nil
}

// numericDate reads a JWT NumericDate (RFC 7519 §2), which may have a fraction.
func numericDate(v any) (time.Time, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil {
		return time.Time{}, false
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), true
}

// audiences reads `aud`, a string or an array of strings (RFC 7519 §4.1.3).
func audiences(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, a := range v {
			if s, ok := a.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
