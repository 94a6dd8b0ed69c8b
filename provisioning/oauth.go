package provisioning

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
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
		return nil, retrieveError(resp, body)
	}
	return body, nil
}

// retrieveError is the *oauth2.RetrieveError for a non-2xx answer, with the
// RFC 6749 §5.2 error code when the body has one.
func retrieveError(resp *http.Response, body []byte) error {
	re := &oauth2.RetrieveError{Response: resp, Body: body}
	var e struct {
		Code string `json:"error"`
		Desc string `json:"error_description"`
	}
	if json.Unmarshal(body, &e) == nil {
		re.ErrorCode, re.ErrorDescription = e.Code, e.Desc
	}
	return re
}

// oauthCode returns the RFC 6749 §5.2 error code of err, "" if none.
func oauthCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
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
	if p.cfg.Audience != "" {
		form.Set("audience", p.cfg.Audience)
	}
	body, err := p.post(ctx, p.endpoints().DeviceAuthorization, form)
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

// tokenResponse is RFC 6749 §5.1 with OpenID Connect's id_token.
type tokenResponse struct {
	AccessToken  string  `json:"access_token"`
	TokenType    string  `json:"token_type"`
	RefreshToken string  `json:"refresh_token"`
	ExpiresIn    seconds `json:"expires_in"`
	IDToken      string  `json:"id_token"`
}

// seconds is expires_in as a JSON number or, as some servers send it, a string.
type seconds int64

func (s *seconds) UnmarshalJSON(b []byte) error {
	b = bytes.Trim(b, `"`)
	if len(b) == 0 || string(b) == "null" {
		*s = 0
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("expires_in %s: want whole seconds", b)
	}
	*s = seconds(n)
	return nil
}

// grant is the station's current token with what the station needs to know about it.
type grant struct {
	tok       *oauth2.Token
	lifetime  time.Duration // 0: unknown
	stationID string
	// identErr says why stationID is empty (a *SetupError, or a transient
	// failure of the userinfo endpoint).
	identErr error
}

// exchange posts a token request (RFC 6749 §4.1.3-style form) and decodes the answer.
func (p *Provisioner) exchange(ctx context.Context, form url.Values) (*grant, error) {
	form.Set("client_id", p.cfg.ClientID)
	obtained := p.now()
	body, err := p.post(ctx, p.endpoints().Token, form)
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
			ExpiresIn:    int64(tr.ExpiresIn),
		}).WithExtra(extra),
		lifetime: time.Duration(tr.ExpiresIn) * time.Second,
	}
	if g.lifetime > 0 {
		// Measured from before the request: errs on the early side.
		g.tok.Expiry = obtained.Add(g.lifetime)
	}
	g.stationID, g.identErr = p.identify(ctx, tr.AccessToken, tr.IDToken, decodeObject(body))
	return g, nil
}
