package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"labelstation/devcloud/records"
)

// The op calls back into this storage for every grant. State lives in memory
// and, with Options.Records, is written through to the store, so a restart of
// devcloud keeps stations enrolled; device authorizations in progress are records
// (devicestore.go).
var (
	_ op.Storage                        = (*store)(nil)
	_ op.DeviceAuthorizationStorage     = (*store)(nil)
	_ op.ClientCredentialsStorage       = (*store)(nil)
	_ op.CanGetPrivateClaimsFromRequest = (*store)(nil)
	_ op.RefreshTokenRequest            = (*refreshGrant)(nil)
	_ op.TokenRequest                   = (*userGrant)(nil)
)

// errNotFound marks lookups of unknown clients, codes and tokens.
var errNotFound = errors.New("auth: not found")

// family is the chain of refresh tokens descending from one grant. Reusing a
// rotated token revokes the whole family (OAuth 2.0 Security BCP §4.14.2).
type family struct {
	id        string
	seq       uint64 // enrollment order: a later enrollment of a station has a larger seq
	kind      string // "station" | "user"
	stationID string
	userID    string
	serial    string
	revoked   bool
}

type refreshRec struct {
	fam      *family
	clientID string
	subject  string
	scopes   []string
	audience []string
	authTime time.Time
	amr      []string
	expires  time.Time
	used     bool // rotated away: presenting it again is reuse
}

type accessRec struct {
	fam      *family // nil for client_credentials tokens
	kind     string
	subject  string
	userID   string
	clientID string    // the application's; "" for stations
	issued   time.Time // by the injected clock
	gen      uint64    // issue order: a frozen test clock cannot order tokens, this can
	expires  time.Time
}

type store struct {
	srv *Server
	key *ecdsa.PrivateKey
	kid string
	// published are further keys in the JWKS: the cloud's message-signing keys.
	published published

	mu       sync.Mutex
	serials  map[string]string // hardware serial -> station id
	stations map[string]string // station id -> serial
	refresh  map[string]*refreshRec
	access   map[string]*accessRec // by token id (jti)
	gen      uint64                // access tokens issued so far
	famSeq   uint64                // station enrollments so far
	// refresh is keyed by refreshKey(token). rec, if set, keeps stations, grants and
	// tokens across restarts (persist.go).
	rec  records.Store
	flow codeState // authorization code flow of registered applications
	// flowMem keeps the code flow's records without rec (flowstore.go).
	flowMem     records.Store
	flowMemOnce sync.Once
	// lastDevicePurge is when this server last swept ended device authorizations.
	lastDevicePurge time.Time
	// checked is when the store last confirmed each station access token in memory (revoke.go).
	checked map[string]time.Time
}

func newStore(srv *Server, key *ecdsa.PrivateKey) *store {
	return &store{
		srv:      srv,
		key:      key,
		kid:      randomID(8),
		serials:  map[string]string{},
		stations: map[string]string{},
		refresh:  map[string]*refreshRec{},
		access:   map[string]*accessRec{},
	}
}

// randomID returns n random bytes, base64url encoded.
func randomID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// newStationID allocates a station id: short, lowercase, safe as an MQTT
// username and in topic names.
func newStationID() string {
	b := make([]byte, 5)
	rand.Read(b)
	return "st-" + hex.EncodeToString(b)
}

// normUserCode applies RFC 8628 §6.1: user codes compare case-insensitively
// and without the punctuation added for readability.
func normUserCode(c string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' {
			return -1
		}
		return r
	}, strings.ToUpper(c))
}

// --- clients ---

func (s *store) GetClientByClientID(_ context.Context, clientID string) (op.Client, error) {
	if clientID == StationClientID {
		return &client{id: StationClientID, method: oidc.AuthMethodNone,
			grants: []oidc.GrantType{oidc.GrantTypeDeviceCode, oidc.GrantTypeRefreshToken},
			scopes: []string{ScopePrinting, oidc.ScopeOfflineAccess, oidc.ScopeOpenID}}, nil
	}
	if a, ok := s.srv.apps[clientID]; ok {
		return &client{id: a.ClientID, method: oidc.AuthMethodBasic,
			grants: []oidc.GrantType{oidc.GrantTypeClientCredentials},
			scopes: []string{ScopePrinting}}, nil
	}
	if a, err := s.srv.appStore.GetApp(clientID); err == nil {
		return newAppClient(a), nil
	}
	return nil, oidc.ErrInvalidClient().WithDescription("unknown client %q", clientID)
}

func (s *store) AuthorizeClientIDSecret(ctx context.Context, clientID, clientSecret string) error {
	if _, seeded := s.srv.apps[clientID]; !seeded {
		if a, err := s.srv.appStore.GetApp(clientID); err == nil && a.secretMatches(clientSecret) {
			return nil
		}
		return errors.New("auth: bad client credentials")
	}
	_, err := s.ClientCredentials(ctx, clientID, clientSecret)
	return err
}

func (s *store) ClientCredentials(ctx context.Context, clientID, clientSecret string) (op.Client, error) {
	a, ok := s.srv.apps[clientID]
	if !ok || !a.secretMatches(clientSecret) {
		return nil, errors.New("auth: bad client credentials")
	}
	return s.GetClientByClientID(ctx, clientID)
}

func (s *store) ClientCredentialsTokenRequest(_ context.Context, clientID string, scopes []string) (op.TokenRequest, error) {
	a := s.srv.apps[clientID]
	for _, sc := range scopes {
		if sc != ScopePrinting {
			return nil, oidc.ErrInvalidScope().WithDescription("scope %q is not available to applications", sc)
		}
	}
	if len(scopes) == 0 {
		scopes = []string{ScopePrinting}
	}
	return &userGrant{subject: a.UserID, clientID: clientID, scopes: scopes}, nil
}

// --- device authorization (RFC 8628) ---

type serialKey struct{}

// purgeLocked drops expired token records.
func (s *store) purgeLocked(now time.Time) {
	for id, a := range s.access {
		if now.After(a.expires) {
			delete(s.access, id)
			s.logged(s.del(kindAccess, id))
		}
	}
	// Rotated tokens are kept until they expire, to recognise reuse.
	for rt, r := range s.refresh {
		if now.After(r.expires) {
			delete(s.refresh, rt)
			s.logged(s.del(kindRefresh, rt))
		}
	}
}

const grantDeviceCode = string(oidc.GrantTypeDeviceCode)

// pollTolerance absorbs network jitter between two polls that the client
// spaced exactly one interval apart.
const pollTolerance = 250 * time.Millisecond

// --- tokens ---

func (s *store) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	if _, ok := req.(*authRequest); ok {
		id, _, exp, err := s.createAppTokens(req, "", false)
		return id, exp, err
	}
	var fam *family
	if r, ok := req.(*op.DeviceAuthorizationState); ok {
		var err error
		if fam, err = s.consumeDevice(ctx, r); err != nil {
			return "", time.Time{}, err
		}
	}
	now := s.srv.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var a *accessRec
	switch r := req.(type) {
	case *userGrant:
		a = &accessRec{kind: KindUser, subject: r.subject, userID: r.subject, clientID: r.clientID}
	case *op.DeviceAuthorizationState:
		// A station that did not ask for offline_access: access token only.
		a = &accessRec{fam: fam, kind: KindStation, subject: r.Subject, userID: fam.userID}
	default:
		return "", time.Time{}, fmt.Errorf("auth: unexpected access token request %T", req)
	}
	id := randomID(16)
	s.gen++
	a.issued, a.gen = now, s.gen
	a.expires = now.Add(s.srv.accessTTL)
	if err := errors.Join(s.saveAccessLocked(id, a), s.saveCountersLocked()); err != nil {
		return "", time.Time{}, err
	}
	s.access[id] = a
	return id, a.expires, nil
}

func (s *store) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	switch req.(type) {
	case *authRequest, *appRefresh:
		return s.createAppTokens(req, current, true)
	}
	var fam *family
	if r, ok := req.(*op.DeviceAuthorizationState); ok {
		var err error
		if fam, err = s.consumeDevice(ctx, r); err != nil {
			return "", "", time.Time{}, err
		}
	}
	now := s.srv.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var next refreshRec
	switch r := req.(type) {
	case *op.DeviceAuthorizationState:
		next = refreshRec{
			fam: fam, clientID: r.ClientID, subject: r.Subject, scopes: r.Scopes,
			audience: r.GetAudience(), authTime: r.AuthTime, amr: r.AMR,
		}
	case *refreshGrant:
		old, ok, err := s.refreshLocked(refreshKey(current))
		if err != nil {
			return "", "", time.Time{}, err
		}
		if !ok || old.fam.revoked {
			return "", "", time.Time{}, oidc.ErrInvalidGrant()
		}
		if old.used {
			// Two refreshes raced with the same token: treat as reuse.
			old.fam.revoked = true
			s.logged(s.saveFamilyLocked(old.fam))
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token reused; grant revoked")
		}
		// Rotation: the presented token dies now (Security BCP §4.14.2).
		err = s.rotateLocked(refreshKey(current), old)
		if errors.Is(err, errRotated) {
			// Rotated meanwhile through another devcloud: reuse.
			old.used, old.fam.revoked = true, true
			s.logged(s.saveFamilyLocked(old.fam))
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token reused; grant revoked")
		}
		if err != nil {
			return "", "", time.Time{}, err
		}
		old.used = true
		if err := s.saveRefreshLocked(refreshKey(current), old); err != nil {
			old.used = false
			return "", "", time.Time{}, err
		}
		next = *old
		next.used = false
		next.scopes = r.scopes
	default:
		return "", "", time.Time{}, fmt.Errorf("auth: unexpected refresh request %T", req)
	}
	next.expires = now.Add(s.srv.refreshTTL)
	rt := randomID(32)
	id := randomID(16)
	exp := now.Add(s.srv.accessTTL)
	s.gen++
	a := &accessRec{fam: next.fam, kind: next.fam.kind, subject: next.subject, userID: next.fam.userID, issued: now, gen: s.gen, expires: exp}
	if err := errors.Join(s.saveRefreshLocked(refreshKey(rt), &next), s.saveAccessLocked(id, a), s.saveCountersLocked()); err != nil {
		return "", "", time.Time{}, err
	}
	s.refresh[refreshKey(rt)] = &next
	s.access[id] = a
	return id, rt, exp, nil
}

func (s *store) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	if strings.HasPrefix(token, appRefreshPrefix) {
		return s.appRefreshRequest(token)
	}
	now := s.srv.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok, err := s.refreshLocked(refreshKey(token))
	if err != nil {
		return nil, err
	}
	switch {
	case !ok:
		return nil, errors.New("auth: unknown refresh token")
	case r.fam.revoked:
		return nil, errors.New("auth: refresh token family revoked")
	case r.used:
		r.fam.revoked = true
		s.logged(s.saveFamilyLocked(r.fam))
		s.srv.log.Warn("auth: rotated refresh token reused; grant revoked", "station_id", r.fam.stationID, "family", r.fam.id)
		return nil, errors.New("auth: rotated refresh token reused; grant revoked")
	case now.After(r.expires):
		return nil, errors.New("auth: refresh token expired")
	}
	return &refreshGrant{clientID: r.clientID, subject: r.subject, scopes: slices.Clone(r.scopes),
		audience: r.audience, authTime: r.authTime, amr: r.amr}, nil
}

// GetPrivateClaimsFromRequest puts the station identity into the JWT access
// token: `station_id` and, as in the seed's ezeep guide, `tp_id`.
func (s *store) GetPrivateClaimsFromRequest(_ context.Context, req op.TokenRequest, _ []string) (map[string]any, error) {
	switch req.(type) {
	case *op.DeviceAuthorizationState, *refreshGrant:
		s.mu.Lock()
		serial := s.stations[req.GetSubject()]
		s.mu.Unlock()
		return map[string]any{"kind": KindStation, "station_id": req.GetSubject(), "tp_id": req.GetSubject(), "serial": serial}, nil
	default:
		return map[string]any{"kind": KindUser}, nil
	}
}

func (s *store) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *store) TerminateSession(context.Context, string, string) error { return nil }

func (s *store) RevokeToken(_ context.Context, tokenOrID, _, clientID string) *oidc.Error {
	if clientID != StationClientID {
		return s.revokeApp(tokenOrID, clientID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok, err := s.refreshLocked(refreshKey(tokenOrID)); err != nil {
		return oidc.ErrServerError().WithParent(err)
	} else if ok {
		r.fam.revoked = true
		s.logged(s.saveFamilyLocked(r.fam))
	} else {
		delete(s.access, tokenOrID)
		s.logged(s.del(kindAccess, tokenOrID))
	}
	return nil
}

func (s *store) GetRefreshTokenInfo(_ context.Context, clientID, token string) (string, string, error) {
	if strings.HasPrefix(token, appRefreshPrefix) {
		return s.appRefreshInfo(clientID, token)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok, err := s.refreshLocked(refreshKey(token))
	if err != nil || !ok {
		return "", "", op.ErrInvalidRefreshToken
	}
	return r.subject, token, nil
}

// --- keys ---

type signingKey struct {
	id  string
	key *ecdsa.PrivateKey
}

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.ES256 }
func (k signingKey) Key() any                                    { return k.key }
func (k signingKey) ID() string                                  { return k.id }

type publicKey struct{ signingKey }

func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.ES256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.key.PublicKey }

func (s *store) SigningKey(context.Context) (op.SigningKey, error) {
	return signingKey{id: s.kid, key: s.key}, nil
}

func (s *store) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.ES256}, nil
}

func (s *store) KeySet(context.Context) ([]op.Key, error) {
	return append([]op.Key{publicKey{signingKey{id: s.kid, key: s.key}}}, s.published.list()...), nil
}

// --- interfaces the op requires but devcloud does not use (no userinfo) ---

func (s *store) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}
func (s *store) SetUserinfoFromToken(_ context.Context, ui *oidc.UserInfo, _, subject, _ string) error {
	ui.Subject = subject
	return nil
}
func (s *store) SetIntrospectionFromToken(_ context.Context, ir *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	ir.Subject = subject
	ir.ClientID = clientID
	a, ok, err := s.accessByID(tokenID)
	if err != nil {
		return err
	}
	ir.Active = ok && (a.fam == nil || !a.fam.revoked) && !s.srv.now().After(a.expires)
	return nil
}
func (s *store) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errNotFound
}
func (s *store) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errNotFound
}
func (s *store) Health(context.Context) error { return nil }

// --- token request types ---

// refreshGrant is a validated refresh_token grant (RFC 6749 §6).
type refreshGrant struct {
	clientID, subject string
	scopes, audience  []string
	authTime          time.Time
	amr               []string
}

func (r *refreshGrant) GetAMR() []string                 { return r.amr }
func (r *refreshGrant) GetAudience() []string            { return r.audience }
func (r *refreshGrant) GetAuthTime() time.Time           { return r.authTime }
func (r *refreshGrant) GetClientID() string              { return r.clientID }
func (r *refreshGrant) GetScopes() []string              { return r.scopes }
func (r *refreshGrant) GetSubject() string               { return r.subject }
func (r *refreshGrant) SetCurrentScopes(scopes []string) { r.scopes = scopes }

// userGrant is a client_credentials grant (RFC 6749 §4.4) of an application
// acting for the user it is registered to.
type userGrant struct {
	subject, clientID string
	scopes            []string
}

func (u *userGrant) GetSubject() string    { return u.subject }
func (u *userGrant) GetAudience() []string { return []string{u.clientID} }
func (u *userGrant) GetScopes() []string   { return u.scopes }
