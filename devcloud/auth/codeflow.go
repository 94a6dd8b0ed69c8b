package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"labelstation/devcloud/records"
)

// The authorization code flow (RFC 6749 §4.1) with PKCE (RFC 7636) for registered
// applications, on the same op as the device flow: the op parses and validates /oauth/authorize,
// sends the browser to the consent page, issues the code at /oauth/authorize/callback and checks
// client, redirect URI and code_verifier at the token endpoint; this file keeps the requests,
// codes and tokens, as records (flowstore.go).

// CodeTTL is how long a consent request and the authorization code it yields are valid
// (RFC 6749 §4.1.2 recommends at most 10 minutes).
const CodeTTL = 10 * time.Minute

var (
	_ op.AuthRequest         = (*authRequest)(nil)
	_ op.RefreshTokenRequest = (*appRefresh)(nil)
	_ op.Client              = (*appClient)(nil)
)

// authRequest is one /oauth/authorize request, from the consent page to the code exchange.
type authRequest struct {
	id           string
	clientID     string
	redirectURI  string
	state, nonce string
	scopes       []string
	responseMode oidc.ResponseMode
	challenge    *oidc.CodeChallenge
	created      time.Time // by the injected clock
	userID       string
	authTime     time.Time
	done         bool
	codeHash     string // hashToken of the code
	codeIssued   time.Time
	exchanged    bool   // tokens were issued for the code
	family       string // the grant the exchange started
}

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return "" }
func (a *authRequest) GetAMR() []string                      { return []string{"pwd"} }
func (a *authRequest) GetAudience() []string                 { return []string{a.clientID} }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.challenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return oidc.ResponseTypeCode }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.responseMode }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.userID }
func (a *authRequest) Done() bool                            { return a.done }

// codeState is the code flow's part of the store kept in memory, guarded by store.mu.
type codeState struct {
	// lastPurge is when expired application refresh tokens and access tokens were last
	// deleted; lastFlowPurge, ended requests and codes.
	lastPurge, lastFlowPurge time.Time
}

func (s *store) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	if _, err := s.srv.appStore.GetApp(req.ClientID); err != nil {
		return nil, oidc.ErrUnauthorizedClient().WithDescription("client %q may not use the authorization code flow", req.ClientID)
	}
	if req.CodeChallenge == "" || req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE is required: send code_challenge with code_challenge_method=S256 (RFC 7636)")
	}
	if !slices.Contains(req.Scopes, ScopePrinting) {
		return nil, oidc.ErrInvalidScope().WithDescription("scope: ask for %q", ScopePrinting)
	}
	// Applications always get a refresh token: they act for the user long after the consent.
	scopes := []string{ScopePrinting, ScopeOfflineAccess}
	if slices.Contains(req.Scopes, ScopeOpenID) {
		scopes = append(scopes, ScopeOpenID)
	}
	now := s.srv.now()
	r := &authRequest{
		id: randomID(18), clientID: req.ClientID, redirectURI: req.RedirectURI, state: req.State, nonce: req.Nonce,
		scopes: scopes, responseMode: req.ResponseMode, created: now,
		challenge: &oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: req.CodeChallengeMethod},
	}
	s.purgeFlow(now)
	if err := records.PutJSON(s.flowRecords(), kindAuthReq, r.id, r.stored()); err != nil {
		return nil, fmt.Errorf("auth: store authorization request: %w", err)
	}
	return r, nil
}

// pendingAuthRequest returns a consent request still waiting for the user.
func (s *store) pendingAuthRequest(id string) (*authRequest, error) {
	r, err := s.getAuthRequest(id)
	switch {
	case err != nil:
		return nil, err
	case r.done:
		return nil, fmt.Errorf("auth: authorization request: %w", ErrAlreadyDecided)
	case !s.srv.now().Before(r.created.Add(CodeTTL)):
		return nil, fmt.Errorf("auth: authorization request: %w", ErrCodeExpired)
	}
	return r, nil
}

// consent records the user's approval of request id.
func (s *store) consent(id, userID string) error {
	now := s.srv.now()
	_, err := s.updateAuthRequest(id, func(r *authRequest) error {
		if r.done {
			return fmt.Errorf("auth: consent: %w", errNotFound)
		}
		r.done, r.userID, r.authTime = true, userID, now
		return nil
	})
	return err
}

func (s *store) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	r, err := s.getAuthRequest(id)
	if err != nil {
		return nil, err
	}
	if !s.srv.now().Before(r.created.Add(CodeTTL)) {
		return nil, fmt.Errorf("auth: authorization request: %w", errNotFound)
	}
	return r, nil
}

func (s *store) SaveAuthCode(_ context.Context, id, code string) error {
	now := s.srv.now()
	h := hashToken(code)
	_, err := s.updateAuthRequest(id, func(r *authRequest) error {
		switch {
		case !r.done:
			return oidc.ErrInvalidRequest().WithDescription("no approved authorization request")
		case r.codeHash != "":
			// One code per consent: a replayed callback gets nothing.
			return oidc.ErrInvalidRequest().WithDescription("the code of this authorization request was issued already")
		}
		r.codeHash, r.codeIssued = h, now
		return nil
	})
	if errors.Is(err, errNotFound) {
		return oidc.ErrInvalidRequest().WithDescription("no approved authorization request")
	}
	if err != nil {
		return err
	}
	if err := records.PutJSON(s.flowRecords(), kindAuthCode, h, storedCode{Request: id, Expires: now.Add(CodeTTL)}); err != nil {
		return fmt.Errorf("auth: store authorization code: %w", err)
	}
	return nil
}

// errCodeReused is the answer to an authorization code presented a second time.
var errCodeReused = errors.New("auth: authorization code already used; the tokens issued for it are revoked")

func (s *store) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	now := s.srv.now()
	var c storedCode
	err := records.GetJSON(s.flowRecords(), kindAuthCode, hashToken(code), &c)
	switch {
	case errors.Is(err, records.ErrNotFound):
		return nil, fmt.Errorf("auth: authorization code: %w", errNotFound)
	case err != nil:
		return nil, fmt.Errorf("auth: authorization code: %w", err)
	case c.Spent:
		s.srv.log.Warn("auth: authorization code reused; revoking its grant", "family", c.Family)
		if err := s.srv.revokeAppFamily(c.Family); err != nil {
			return nil, err
		}
		return nil, errCodeReused
	}
	r, err := s.getAuthRequest(c.Request)
	if err != nil {
		return nil, err
	}
	if !now.Before(r.codeIssued.Add(CodeTTL)) {
		return nil, fmt.Errorf("auth: authorization code expired (valid %v)", CodeTTL)
	}
	return r, nil
}

func (s *store) DeleteAuthRequest(_ context.Context, id string) error {
	r, err := s.getAuthRequest(id)
	if errors.Is(err, errNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	rec := s.flowRecords()
	if r.codeHash != "" {
		if r.exchanged {
			err = records.PutJSON(rec, kindAuthCode, r.codeHash, storedCode{Spent: true, Family: r.family, Expires: r.codeIssued.Add(CodeTTL)})
		} else {
			err = rec.DeleteRecord(kindAuthCode, r.codeHash)
		}
		if err != nil {
			return fmt.Errorf("auth: authorization code: %w", err)
		}
	}
	if err := rec.DeleteRecord(kindAuthReq, id); err != nil {
		return fmt.Errorf("auth: authorization request: %w", err)
	}
	return nil
}

// appRefresh is a validated refresh_token grant of an application.
type appRefresh struct {
	grant  Grant
	scopes []string
}

func (r *appRefresh) GetAMR() []string                 { return []string{"pwd"} }
func (r *appRefresh) GetAudience() []string            { return []string{r.grant.ClientID} }
func (r *appRefresh) GetAuthTime() time.Time           { return r.grant.AuthTime }
func (r *appRefresh) GetClientID() string              { return r.grant.ClientID }
func (r *appRefresh) GetScopes() []string              { return r.scopes }
func (r *appRefresh) GetSubject() string               { return r.grant.UserID }
func (r *appRefresh) SetCurrentScopes(scopes []string) { r.scopes = scopes }

// appRefreshRequest looks up an application's refresh token. A rotated token presented again
// revokes its grant.
func (s *store) appRefreshRequest(token string) (op.RefreshTokenRequest, error) {
	g, err := s.srv.appStore.GetGrant(hashToken(token))
	switch {
	case err != nil:
		return nil, err
	case g.Revoked:
		return nil, ErrGrantRevoked
	case g.Used:
		s.srv.log.Warn("auth: rotated application refresh token reused; grant revoked", "client_id", g.ClientID, "user", g.UserID)
		if err := s.srv.revokeAppFamily(g.Family); err != nil {
			return nil, err
		}
		return nil, ErrGrantReused
	case !s.srv.now().Before(g.Expires):
		return nil, errors.New("auth: refresh token expired")
	}
	return &appRefresh{grant: g, scopes: slices.Clone(g.Scopes)}, nil
}

// createAppTokens issues an application's access token and rotated refresh token for a code
// exchange (*authRequest) or a refresh (*appRefresh). withRefresh is false when the op asks
// for an access token alone.
func (s *store) createAppTokens(req op.TokenRequest, current string, withRefresh bool) (string, string, time.Time, error) {
	now := s.srv.now()
	rt := appRefreshPrefix + randomID(32)
	next := Grant{TokenHash: hashToken(rt), Expires: now.Add(s.srv.refreshTTL)}
	switch r := req.(type) {
	case *authRequest:
		// A code yields tokens once, even when two exchanges race past AuthRequestByCode on
		// two replicas: the request's record is updated atomically.
		used := oidc.ErrInvalidGrant().WithDescription("authorization code already used")
		live, err := s.updateAuthRequest(r.id, func(live *authRequest) error {
			if live.exchanged {
				return used
			}
			live.exchanged, live.family = true, randomID(12)
			return nil
		})
		switch {
		case errors.Is(err, errNotFound) || errors.Is(err, used):
			return "", "", time.Time{}, used
		case err != nil:
			return "", "", time.Time{}, err
		}
		next.Family = live.family
		next.ClientID, next.UserID, next.Scopes, next.AuthTime = r.clientID, r.userID, r.scopes, r.authTime
		if withRefresh {
			if err := s.srv.appStore.AddGrant(next); err != nil {
				return "", "", time.Time{}, fmt.Errorf("auth: store grant: %w", err)
			}
		}
	case *appRefresh:
		next.Family, next.ClientID, next.UserID, next.Scopes, next.AuthTime = r.grant.Family, r.grant.ClientID, r.grant.UserID, r.scopes, r.grant.AuthTime
		err := s.srv.appStore.RotateGrant(hashToken(current), next)
		if errors.Is(err, ErrGrantReused) {
			s.srv.revokeAppFamily(next.Family)
		}
		if err != nil {
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("%v", err)
		}
	default:
		return "", "", time.Time{}, fmt.Errorf("auth: unexpected application token request %T", req)
	}
	s.purgeGrants(now)
	s.mu.Lock()
	id := randomID(16)
	s.gen++
	exp := now.Add(s.srv.accessTTL)
	a := &accessRec{
		fam:  &family{id: next.Family, kind: KindUser, userID: next.UserID},
		kind: KindUser, subject: next.UserID, userID: next.UserID, clientID: next.ClientID,
		issued: now, gen: s.gen, expires: exp,
	}
	s.mu.Unlock()
	if err := s.putAppAccess(id, a); err != nil {
		return "", "", time.Time{}, err
	}
	if withRefresh {
		// A revocation that ran while this token was made must not miss it: it deleted the
		// grant's tokens it found, this one may have been stored after.
		if g, err := s.srv.appStore.GetGrant(next.TokenHash); err != nil || g.Revoked {
			if err := s.flowRecords().DeleteRecord(kindAppAccess, id); err != nil {
				return "", "", time.Time{}, fmt.Errorf("auth: revoked grant's access token: %w", err)
			}
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("grant revoked")
		}
		return id, rt, exp, nil
	}
	return id, "", exp, nil
}

// grantPurgeEvery spaces the deletions of expired refresh tokens.
const grantPurgeEvery = time.Hour

// purgeGrants deletes expired application refresh tokens, at most once per grantPurgeEvery: a
// grant leaves one used token behind per refresh.
func (s *store) purgeGrants(now time.Time) {
	s.mu.Lock()
	due := now.Sub(s.flow.lastPurge) >= grantPurgeEvery
	if due {
		s.flow.lastPurge = now
	}
	s.mu.Unlock()
	if !due {
		return
	}
	if n, err := s.srv.appStore.PurgeGrants(now); err != nil {
		s.srv.log.Warn("auth: purging expired application refresh tokens", "err", err)
	} else if n > 0 {
		s.srv.log.Info("auth: purged expired application refresh tokens", "count", n)
	}
	if n, err := s.dropAppAccess("", now); err != nil {
		s.srv.log.Warn("auth: purging expired application access tokens", "err", err)
	} else if n > 0 {
		s.srv.log.Info("auth: purged expired application access tokens", "count", n)
	}
}

// appRefreshInfo answers GetRefreshTokenInfo for an application's refresh token.
func (s *store) appRefreshInfo(clientID, token string) (string, string, error) {
	g, err := s.srv.appStore.GetGrant(hashToken(token))
	if err != nil || g.ClientID != clientID {
		return "", "", op.ErrInvalidRefreshToken
	}
	return g.UserID, token, nil
}

// revokeApp is RFC 7009 revocation for an application: a refresh token revokes its whole
// grant (§2.1), an access token only itself. A token of another client is refused.
func (s *store) revokeApp(token, clientID string) *oidc.Error {
	if strings.HasPrefix(token, appRefreshPrefix) {
		g, err := s.srv.appStore.GetGrant(hashToken(token))
		if err != nil {
			return nil // RFC 7009 §2.2: an invalid token is not an error
		}
		if g.ClientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("the token was not issued to this client")
		}
		if err := s.srv.revokeAppFamily(g.Family); err != nil {
			return oidc.ErrServerError().WithParent(err)
		}
		return nil
	}
	if c, err := s.srv.parseClaims(token); err == nil {
		token = c.ID // a JWT the op could not verify by the wall clock: revoke it by its id
	}
	a, ok, err := s.appAccess(token)
	if err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	if ok {
		if a.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("the token was not issued to this client")
		}
		if err := s.flowRecords().DeleteRecord(kindAppAccess, token); err != nil {
			return oidc.ErrServerError().WithParent(err)
		}
		return nil
	}
	// A client-credentials token: issued here or by another devcloud on the store.
	if a, ok, err = s.accessByID(token); err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	if !ok {
		return nil
	}
	if a.clientID != clientID {
		return oidc.ErrInvalidClient().WithDescription("the token was not issued to this client")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.access, token)
	if err := s.del(kindAccess, token); err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	return nil
}

// appClient is a registered application as the op sees it: confidential (client_secret_post),
// code and refresh_token grants, its registered redirect URIs only. A loopback redirect URI
// may use any port (RFC 8252 §7.3), so a native app can listen where it can.
type appClient struct {
	*client
	app RegisteredApp
}

func (c *appClient) RedirectURIs() []string { return c.app.RedirectURIs }
func (c *appClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *appClient) LoginURL(id string) string { return pathAppsConsent + "?id=" + id }
func (c *appClient) DevMode() bool             { return false }
func (c *appClient) ApplicationType() op.ApplicationType {
	for _, u := range c.app.RedirectURIs {
		if _, loop := op.HTTPLoopbackOrLocalhost(u); !loop {
			return op.ApplicationTypeWeb
		}
	}
	return op.ApplicationTypeNative
}

func newAppClient(a RegisteredApp) *appClient {
	return &appClient{app: a, client: &client{id: a.ClientID, method: oidc.AuthMethodPost,
		grants: []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken},
		scopes: []string{ScopePrinting, ScopeOfflineAccess}}}
}
