package provisioning

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// DefaultStationClaim names the station on any OpenID server: the subject.
const DefaultStationClaim = "sub"

// identify finds the station id in what the token endpoint answered, by the
// standards in order: the ID token (OpenID Connect, when `openid` was
// granted), a JWT access token (RFC 9068), the token response itself (an
// extension such as devcloud's station_id), then the userinfo endpoint
// (OpenID Connect Core §5.3) and token introspection (RFC 7662) when the
// metadata offers them. It returns a *SetupError when none names the station:
// only the server's admin can add the claim.
func (p *Provisioner) identify(ctx context.Context, accessToken, idToken string, resp map[string]any) (string, error) {
	name := p.cfg.StationClaim
	var tried []string
	check := func(src string, v any) (string, error) {
		id, ok := claimString(v)
		if !ok {
			tried = append(tried, src)
			return "", nil
		}
		if err := validStationID(id); err != nil {
			return "", &SetupError{Step: "identity", Code: "unusable " + name + " claim", Desc: fmt.Sprintf("from the %s: %v", src, err)}
		}
		return id, nil
	}
	// OpenID Connect Core §3.1.3.7: an ID token received directly from the
	// token endpoint over TLS needs no signature check by the client; the
	// broker verifies every access token it is shown.
	for _, c := range []struct {
		src string
		v   any
	}{
		{"ID token", jwtClaims(idToken)[name]},
		{"access token", jwtClaims(accessToken)[name]},
		{"token response", resp[name]},
	} {
		if id, err := check(c.src, c.v); id != "" || err != nil {
			return id, err
		}
	}
	ep := p.endpoints()
	if ep.Userinfo != "" {
		m, err := p.userinfo(ctx, ep.Userinfo, accessToken)
		if err != nil {
			return "", fmt.Errorf("userinfo: %w", err)
		}
		if id, err := check("userinfo", m[name]); id != "" || err != nil {
			return id, err
		}
	}
	if ep.Introspection != "" {
		m, err := p.introspect(ctx, ep.Introspection, accessToken)
		if err != nil && !transient(err) {
			// Many servers keep introspection for confidential clients.
			p.log.Info("provisioning: introspection refused to the station", "err", err)
		} else if err != nil {
			return "", fmt.Errorf("introspection: %w", err)
		} else if id, err := check("introspection", m[name]); id != "" || err != nil {
			return id, err
		}
	}
	return "", &SetupError{Step: "identity", Code: "no " + name + " claim", Desc: "looked in the " + strings.Join(tried, ", ")}
}

// validStationID: the id is the MQTT username, client id and a topic level.
func validStationID(id string) error {
	switch {
	case len(id) > 128:
		return fmt.Errorf("%d bytes, want at most 128", len(id))
	case strings.ContainsAny(id, "/+#\x00"):
		return fmt.Errorf("%q contains one of / + # NUL, which MQTT topics cannot carry", id)
	}
	return nil
}

// claimString accepts a string or a number claim (some servers issue numeric ids).
func claimString(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, v != ""
	case json.Number:
		return v.String(), true
	}
	return "", false
}

// jwtClaims reads a JWT's payload without verifying it; nil if tok is not a JWT
// (an opaque access token).
func jwtClaims(tok string) map[string]any {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil
	}
	return decodeObject(b)
}

func decodeObject(b []byte) map[string]any {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if d.Decode(&m) != nil {
		return nil
	}
	return m
}

// userinfo is OpenID Connect Core §5.3.1: GET with the access token.
func (p *Provisioner) userinfo(ctx context.Context, u, accessToken string) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json")
	return p.doJSON(req)
}

// introspect is RFC 7662 §2.1, authenticated as the public client.
func (p *Provisioner) introspect(ctx context.Context, u, accessToken string) (map[string]any, error) {
	form := url.Values{"token": {accessToken}, "token_type_hint": {"access_token"}, "client_id": {p.cfg.ClientID}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	m, err := p.doJSON(req)
	if err != nil {
		return nil, err
	}
	if m["active"] != true {
		return nil, errors.New("token not active")
	}
	return m, nil
}

// doJSON sends req and decodes a JSON object from a 2xx answer; other answers
// become an *oauth2.RetrieveError like the token endpoint's.
func (p *Provisioner) doJSON(req *http.Request) (map[string]any, error) {
	resp, err := p.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, retrieveError(resp, body)
	}
	m := decodeObject(body)
	if m == nil {
		return nil, fmt.Errorf("%s: not a JSON object", req.URL.Path)
	}
	return m, nil
}
