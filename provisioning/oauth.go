package provisioning

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Requests are posted by hand rather than through oauth2.Config.DeviceAuth /
// DeviceAccessToken: those ignore the context, compute expiry from the wall
// clock, give up on the first 5xx and cannot show "denied" then carry on.
// The wire format is the library's: oauth2.DeviceAuthResponse, oauth2.Token,
// oauth2.RetrieveError, client authentication as oauth2.AuthStyleInParams
// (a public client sends client_id in the form, RFC 6749 §2.3.1).

const (
	grantDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"
	maxBody         = 1 << 20
)

// RFC 8628 §3.5 and RFC 6749 §5.2 error codes the client branches on.
const (
	errPending      = "authorization_pending"
	errSlowDown     = "slow_down"
	errAccessDenied = "access_denied"
	errExpiredToken = "expired_token"
	errInvalidGrant = "invalid_grant"
)

// post sends form to u and returns the body of a 2xx answer, or an
// *oauth2.RetrieveError carrying the RFC 6749 §5.2 error code.
func (p *Provisioner) post(ctx context.Context, u string, form url.Values) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
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
		re := &oauth2.RetrieveError{Response: resp, Body: body}
		var e struct {
			Code string `json:"error"`
			Desc string `json:"error_description"`
		}
		if json.Unmarshal(body, &e) == nil {
			re.ErrorCode, re.ErrorDescription = e.Code, e.Desc
		}
		return nil, re
	}
	return body, nil
}

// oauthCode returns the RFC 6749 §5.2 error code of err, "" if none.
func oauthCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

// transient reports whether err is worth retrying as is: the network
// (refused, reset, timeout), or a server that is overloaded or failing.
func transient(err error) bool {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		s := re.Response.StatusCode
		return s >= 500 || s == http.StatusTooManyRequests || re.ErrorCode == "temporarily_unavailable"
	}
	var ne net.Error
	var ue *url.Error
	return errors.As(err, &ne) || errors.As(err, &ue) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// requestCode is the RFC 8628 §3.1 device authorization request, with the
// hardware serial as the extra serial_number parameter.
func (p *Provisioner) requestCode(ctx context.Context) (*oauth2.DeviceAuthResponse, error) {
	form := url.Values{"client_id": {p.cfg.ClientID}}
	if len(p.cfg.Scopes) > 0 {
		form.Set("scope", strings.Join(p.cfg.Scopes, " "))
	}
	if p.cfg.Serial != "" {
		form.Set(SerialParam, p.cfg.Serial)
	}
	body, err := p.post(ctx, p.cfg.DeviceAuthURL, form)
	if err != nil {
		return nil, err
	}
	da := new(oauth2.DeviceAuthResponse)
	var raw struct {
		ExpiresIn int64 `json:"expires_in"`
	}
	if err := json.Unmarshal(body, da); err != nil {
		return nil, fmt.Errorf("device authorization response: %w", err)
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("device authorization response: %w", err)
	}
	switch {
	case da.DeviceCode == "":
		return nil, errors.New("device authorization response: device_code: empty")
	case da.UserCode == "":
		return nil, errors.New("device authorization response: user_code: empty")
	case da.VerificationURI == "":
		return nil, errors.New("device authorization response: verification_uri: empty")
	case raw.ExpiresIn <= 0:
		return nil, fmt.Errorf("device authorization response: expires_in %d: want > 0", raw.ExpiresIn)
	}
	// The library stamps Expiry with the wall clock; use the injected one.
	da.Expiry = p.now().Add(time.Duration(raw.ExpiresIn) * time.Second)
	if da.Interval <= 0 {
		da.Interval = 5 // RFC 8628 §3.2 default
	}
	return da, nil
}

// tokenResponse is RFC 6749 §5.1 plus devcloud's station_id.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int64  `json:"expires_in"`
	StationID    string `json:"station_id"`
}

// grant is the station's current token with what the station needs to know about it.
type grant struct {
	tok       *oauth2.Token
	lifetime  time.Duration // 0: unknown
	stationID string
}

// exchange posts a token request (RFC 6749 §4.1.3-style form) and decodes the answer.
func (p *Provisioner) exchange(ctx context.Context, form url.Values) (*grant, error) {
	form.Set("client_id", p.cfg.ClientID)
	obtained := p.now()
	body, err := p.post(ctx, p.cfg.TokenURL, form)
	if err != nil {
		return nil, err
	}
	var tr tokenResponse
	var extra map[string]any
	if err := json.Unmarshal(body, &tr); err != nil {
		return nil, fmt.Errorf("token response: %w", err)
	}
	if err := json.Unmarshal(body, &extra); err != nil {
		return nil, fmt.Errorf("token response: %w", err)
	}
	if tr.AccessToken == "" {
		return nil, errors.New("token response: access_token: empty")
	}
	if tr.ExpiresIn < 0 {
		return nil, fmt.Errorf("token response: expires_in %d: negative", tr.ExpiresIn)
	}
	g := &grant{
		tok: (&oauth2.Token{
			AccessToken:  tr.AccessToken,
			TokenType:    tr.TokenType,
			RefreshToken: tr.RefreshToken,
			ExpiresIn:    tr.ExpiresIn,
		}).WithExtra(extra),
		lifetime:  time.Duration(tr.ExpiresIn) * time.Second,
		stationID: tr.StationID,
	}
	if g.lifetime > 0 {
		// Measured from before the request: errs on the early side.
		g.tok.Expiry = obtained.Add(g.lifetime)
	}
	if g.stationID == "" {
		g.stationID = claim(tr.AccessToken, "station_id")
	}
	return g, nil
}

// claim reads a string claim from a JWT access token without verifying it:
// the station only learns its own identity from a token its server just
// sent it over TLS; the server verifies every use.
func claim(jwt, name string) string {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return ""
	}
	s, _ := m[name].(string)
	return s
}
