// Package auth is devcloud's OAuth 2.0 authorization server, built on
// zitadel's op package: the RFC 8628 device authorization grant for label
// stations (with refresh-token rotation and reuse detection), the
// client_credentials grant for the applications that submit print jobs, the
// authorization code grant with PKCE for registered applications acting for
// the users who allow them (codeflow.go), an approval page, a consent page, and
// in-process token verification for the broker and the job API. Registered
// applications and their refresh grants are kept by an AppStore; keys, enrolled
// stations, grants and tokens in Options.Records when given (devcloud's
// --store), in memory otherwise.
package auth

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"labelstation/devcloud/records"
)

const (
	// StationClientID is the public client every label station uses
	// (RFC 6749 §2.1: no secret, client_id sent in the form).
	StationClientID = "station"
	// ScopePrinting is the scope a station and an application need.
	ScopePrinting = "printing"
	// ScopeOfflineAccess must be requested by a station to receive a
	// refresh token (the op issues refresh tokens only for it).
	ScopeOfflineAccess = oidc.ScopeOfflineAccess
	// ScopeOpenID gets a station an ID token whose `sub` is its station id.
	ScopeOpenID = oidc.ScopeOpenID

	// Principal kinds.
	KindStation = "station"
	KindUser    = "user"

	// SerialParam is the extra device authorization request parameter that
	// carries the station's hardware serial number.
	SerialParam = "serial_number"
)

// Sentinel errors callers branch on.
var (
	ErrInvalidToken    = errors.New("auth: invalid access token")
	ErrUnknownUserCode = errors.New("auth: unknown user code")
	ErrUnknownUser     = errors.New("auth: unknown user")
	ErrCodeExpired     = errors.New("auth: user code expired")
	ErrAlreadyDecided  = errors.New("auth: device authorization already approved or denied")
)

// User is a person who can approve stations and own applications. Without a PasswordHash
// (bcrypt, see HashPassword) the user cannot sign in and so cannot approve anything.
type User struct {
	ID, Name     string
	PasswordHash []byte
}

// App is a confidential client of the Submit Print Job API acting for UserID.
type App struct{ ClientID, Secret, UserID string }

func (a App) secretMatches(secret string) bool {
	return subtle.ConstantTimeCompare([]byte(a.Secret), []byte(secret)) == 1
}

// Options configures a Server. Zero durations take the defaults in brackets.
type Options struct {
	Issuer string // external base URL, e.g. "http://127.0.0.1:8080"; endpoints live under it
	Users  []User
	Apps   []App
	// AppStore keeps registered applications and their grants; nil keeps them in memory.
	AppStore AppStore

	AccessTTL     time.Duration // [60m] the seed's access-token lifetime
	RefreshTTL    time.Duration // [30d] sliding: each rotation starts a new period
	DeviceCodeTTL time.Duration // [10m] RFC 8628 §3.2 expires_in
	PollInterval  time.Duration // [5s] RFC 8628 §3.2 interval

	Now    func() time.Time // injected clock; nil = time.Now
	Logger *slog.Logger     // nil = slog.Default()

	// Records, if set, keeps the signing keys, enrolled stations, grants and tokens, so a
	// restart neither re-pairs stations nor invalidates their tokens. Nil: memory only.
	Records records.Store
}

// Principal is who an access token speaks for.
type Principal struct {
	Kind      string // KindStation | KindUser
	StationID string // for stations
	UserID    string // the user an app acts for; for stations the approving admin
	ClientID  string // the application the token was issued to; "" for stations
	// Delegated: a registered application's token, given by a user's consent to submit jobs
	// in the user's name and nothing else (no fleet or registration API).
	Delegated bool
	Serial    string // for stations: the hardware serial sent at enrollment
	Expiry    time.Time
	// TokenID, IssuedAt and Generation identify this access token; Generation grows with every
	// token the server issues, so the broker can tell a station's newest token from a stolen
	// older one even when the clock has not moved.
	TokenID    string
	IssuedAt   time.Time
	Generation uint64
	// Enrollment names the grant (refresh-token family) a station token descends from;
	// EnrollmentSeq orders a station's enrollments, later ones larger.
	Enrollment    string
	EnrollmentSeq uint64
}

// Server is the authorization server.
type Server struct {
	issuer                                         string
	users                                          map[string]User
	userList                                       []User
	apps                                           map[string]App
	appStore                                       AppStore
	accessTTL, refreshTTL, deviceTTL, pollInterval time.Duration
	now                                            func() time.Time
	log                                            *slog.Logger

	store    *store
	sessions sessions
	op       *op.Provider
	faults   faults
	mux      *http.ServeMux
}

// Endpoint paths relative to the issuer.
const (
	pathDiscovery = "/.well-known/openid-configuration"
	pathDeviceReq = "/oauth/device_authorization"
	pathToken     = "/oauth/token"
	pathDevice    = "/device"
	pathApprove   = "/device/approve"
	pathDeny      = "/device/deny"
	pathLogin     = "/device/login"
	pathLogout    = "/device/logout"
)

// New validates opt and builds the server. It does not listen; mount Handler.
func New(opt Options) (*Server, error) {
	u, err := url.Parse(opt.Issuer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("auth: Options.Issuer %q: want an absolute http(s) URL", opt.Issuer)
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("auth: Options.Issuer %q: must not have a path", opt.Issuer)
	}
	s := &Server{
		issuer:       strings.TrimSuffix(opt.Issuer, "/"),
		users:        map[string]User{},
		userList:     opt.Users,
		apps:         map[string]App{},
		accessTTL:    orDefault(opt.AccessTTL, 60*time.Minute),
		refreshTTL:   orDefault(opt.RefreshTTL, 30*24*time.Hour),
		deviceTTL:    orDefault(opt.DeviceCodeTTL, 10*time.Minute),
		pollInterval: orDefault(opt.PollInterval, 5*time.Second),
		now:          opt.Now,
		log:          opt.Logger,
		appStore:     opt.AppStore,
	}
	if s.appStore == nil {
		s.appStore = NewMemAppStore()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.pollInterval%time.Second != 0 {
		return nil, fmt.Errorf("auth: Options.PollInterval %v: must be whole seconds (RFC 8628 §3.2)", opt.PollInterval)
	}
	for i, usr := range opt.Users {
		if usr.ID == "" {
			return nil, fmt.Errorf("auth: Options.Users[%d].ID: empty", i)
		}
		if _, dup := s.users[usr.ID]; dup {
			return nil, fmt.Errorf("auth: Options.Users[%d].ID %q: duplicate", i, usr.ID)
		}
		if len(usr.PasswordHash) > 0 {
			if err := CheckPasswordHash(usr.PasswordHash); err != nil {
				return nil, fmt.Errorf("auth: Options.Users[%d].PasswordHash: %w", i, err)
			}
		}
		s.users[usr.ID] = usr
	}
	for i, a := range opt.Apps {
		switch {
		case a.ClientID == "" || a.ClientID == StationClientID:
			return nil, fmt.Errorf("auth: Options.Apps[%d].ClientID %q: empty or reserved", i, a.ClientID)
		case a.Secret == "":
			return nil, fmt.Errorf("auth: Options.Apps[%d].Secret: empty", i)
		}
		if _, ok := s.users[a.UserID]; !ok {
			return nil, fmt.Errorf("auth: Options.Apps[%d].UserID %q: %w", i, a.UserID, ErrUnknownUser)
		}
		if _, dup := s.apps[a.ClientID]; dup {
			return nil, fmt.Errorf("auth: Options.Apps[%d].ClientID %q: duplicate", i, a.ClientID)
		}
		s.apps[a.ClientID] = a
	}
	key, kid, cryptoKey, err := loadKeys(opt.Records)
	if err != nil {
		return nil, err
	}
	s.store = newStore(s, key)
	s.store.kid, s.store.rec = kid, opt.Records
	if err := s.store.load(); err != nil {
		return nil, err
	}
	cfg := &op.Config{
		CryptoKey:             cryptoKey,
		GrantTypeRefreshToken: true,
		CodeMethodS256:        true,
		AuthMethodPost:        true,
		SupportedScopes:       []string{ScopeOpenID, ScopePrinting, ScopeOfflineAccess},
		SupportedClaims:       append(op.DefaultSupportedClaims, "station_id", "tp_id", "serial", "kind"),
		DeviceAuthorization: op.DeviceAuthorizationConfig{
			Lifetime:     s.deviceTTL,
			PollInterval: s.pollInterval,
			UserFormPath: pathDevice,
			UserCode:     op.UserCodeBase20,
		},
	}
	s.op, err = newProvider(cfg, s.store, op.StaticIssuer(s.issuer),
		op.WithAllowInsecure(), // devcloud runs on plain http on a LAN or loopback
		op.WithCustomAuthEndpoint(op.NewEndpoint("oauth/authorize")),
		op.WithCustomTokenEndpoint(op.NewEndpoint(pathToken[1:])),
		op.WithCustomIntrospectionEndpoint(op.NewEndpoint("oauth/introspect")),
		op.WithCustomUserinfoEndpoint(op.NewEndpoint("oauth/userinfo")),
		op.WithCustomRevocationEndpoint(op.NewEndpoint("oauth/revoke")),
		op.WithCustomEndSessionEndpoint(op.NewEndpoint("oauth/end_session")),
		op.WithCustomKeysEndpoint(op.NewEndpoint("oauth/keys")),
		op.WithCustomDeviceAuthorizationEndpoint(op.NewEndpoint(pathDeviceReq[1:])),
	)
	if err != nil {
		return nil, fmt.Errorf("auth: op: %w", err)
	}
	s.mux = http.NewServeMux()
	s.mux.Handle(pathDiscovery, s.op)
	s.mux.Handle("/oauth/", s.op)
	s.mux.HandleFunc("POST "+pathDeviceReq, s.handleDeviceRequest)
	s.mux.HandleFunc("POST "+pathToken, s.handleToken)
	s.sessions.failures = map[string]*failures{}
	s.mux.HandleFunc(pathDevice, s.handleDevicePage)
	s.mux.HandleFunc("POST "+pathLogin, s.handleLogin)
	s.mux.HandleFunc("POST "+pathLogout, s.handleLogout)
	s.mux.HandleFunc("POST "+pathApprove, s.handleApprove)
	s.mux.HandleFunc("POST "+pathDeny, s.handleDeny)
	s.mountApps()
	return s, nil
}

// providerMu serialises newProvider.
var providerMu sync.Mutex

// newProvider is op.NewProvider on a private copy of op.DefaultEndpoints: the library hands every
// provider that one global struct and the WithCustom...Endpoint options write into it, so without
// the copy devcloud's paths would leak into any other OpenID provider in the same process (and
// its metadata would advertise endpoints its router never registered).
func newProvider(cfg *op.Config, st op.Storage, issuer func(bool) (op.IssuerFromRequest, error), opts ...op.Option) (*op.Provider, error) {
	providerMu.Lock()
	defer providerMu.Unlock()
	global := op.DefaultEndpoints
	own := *global
	op.DefaultEndpoints = &own
	defer func() { op.DefaultEndpoints = global }()
	return op.NewProvider(cfg, st, issuer, opts...)
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Handler serves every auth endpoint and the approval page. Only the paths
// below are claimed, so it can be mounted at "/" next to other APIs:
// /.well-known/openid-configuration, /oauth/..., /device, /device/approve,
// /device/deny, /device/login, /device/logout.
func (s *Server) Handler() http.Handler { return s.mux }

// Issuer returns the issuer URL.
func (s *Server) Issuer() string { return s.issuer }

// DeviceAuthURL is the RFC 8628 §3.1 device authorization endpoint.
func (s *Server) DeviceAuthURL() string { return s.issuer + pathDeviceReq }

// TokenURL is the RFC 6749 §3.2 token endpoint.
func (s *Server) TokenURL() string { return s.issuer + pathToken }

// StationBySerial returns the station id allocated to a hardware serial.
func (s *Server) StationBySerial(serial string) (string, bool) {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	id, ok := s.store.serials[serial]
	return id, ok
}

// SerialOf returns the hardware serial a station enrolled with.
func (s *Server) SerialOf(stationID string) (string, bool) {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	serial, ok := s.store.stations[stationID]
	return serial, ok
}

// Users returns the configured users, for pickers.
func (s *Server) Users() []User { return append([]User(nil), s.userList...) }

// Approve lets the station holding userCode have tokens on its next poll.
// The station id is allocated here: the same serial always gets the same id,
// so a reset station keeps its identity and configuration.
func (s *Server) Approve(userCode, userID string) error {
	if _, ok := s.users[userID]; !ok {
		return fmt.Errorf("auth: approve: user %q: %w", userID, ErrUnknownUser)
	}
	if _, err := s.approve(userCode, userID); err != nil {
		return fmt.Errorf("auth: approve: %w", err)
	}
	return nil
}

// Deny makes the station holding userCode get access_denied on its next poll.
func (s *Server) Deny(userCode string) error {
	key, err := s.store.deviceKeyByUserCode(userCode)
	if err != nil {
		return fmt.Errorf("auth: deny: %w", err)
	}
	d, err := s.store.updateDevice(key, s.decision(userCode, func(d *storedDevice) { d.Denied = true }))
	if err != nil {
		return fmt.Errorf("auth: deny: %w", err)
	}
	s.log.Info("auth: station denied", "serial", d.Serial)
	return nil
}

// accessClaims are the claims devcloud puts in its JWT access tokens.
type accessClaims struct {
	Issuer    string `json:"iss"`
	Subject   string `json:"sub"`
	ID        string `json:"jti"`
	Kind      string `json:"kind"`
	StationID string `json:"station_id"`
	Serial    string `json:"serial"`
}

// parseClaims verifies the signature of a devcloud access token and returns its claims.
func (s *Server) parseClaims(token string) (accessClaims, error) {
	var c accessClaims
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return c, err
	}
	payload, err := jws.Verify(&s.store.key.PublicKey)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return c, err
	}
	if c.Issuer != s.issuer {
		return c, fmt.Errorf("issuer %q", c.Issuer)
	}
	return c, nil
}

// Verify checks an access token in-process: signature, issuer, expiry by the
// injected clock, and that its grant was not revoked by refresh-token reuse.
// Every failure wraps ErrInvalidToken (the caller answers 401 / MQTT "not
// authorized").
func (s *Server) Verify(_ context.Context, accessToken string) (Principal, error) {
	c, err := s.parseClaims(accessToken)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	a, ok, err := s.store.accessByID(c.ID)
	switch {
	case err != nil:
		return Principal{}, err
	case !ok:
		return Principal{}, fmt.Errorf("%w: unknown or revoked", ErrInvalidToken)
	case a.fam != nil && a.fam.revoked:
		return Principal{}, fmt.Errorf("%w: grant revoked", ErrInvalidToken)
	case !s.now().Before(a.expires):
		return Principal{}, fmt.Errorf("%w: expired", ErrInvalidToken)
	case a.subject != c.Subject:
		return Principal{}, fmt.Errorf("%w: subject mismatch", ErrInvalidToken)
	}
	p := Principal{Kind: a.kind, UserID: a.userID, ClientID: a.clientID, Delegated: a.kind == KindUser && a.fam != nil, Expiry: a.expires, TokenID: c.ID, IssuedAt: a.issued, Generation: a.gen}
	if a.kind == KindStation {
		p.StationID, p.Serial, p.Enrollment, p.EnrollmentSeq = a.fam.stationID, a.fam.serial, a.fam.id, a.fam.seq
	}
	return p, nil
}

// client is an op.Client: the station's public client or an application.
type client struct {
	id     string
	method oidc.AuthMethod
	grants []oidc.GrantType
	scopes []string
}

var _ op.Client = (*client)(nil)

func (c *client) GetID() string                       { return c.id }
func (c *client) RedirectURIs() []string              { return nil }
func (c *client) PostLogoutRedirectURIs() []string    { return nil }
func (c *client) ApplicationType() op.ApplicationType { return op.ApplicationTypeNative }
func (c *client) AuthMethod() oidc.AuthMethod         { return c.method }
func (c *client) ResponseTypes() []oidc.ResponseType  { return nil }
func (c *client) GrantTypes() []oidc.GrantType        { return c.grants }
func (c *client) LoginURL(string) string              { return "" }
func (c *client) AccessTokenType() op.AccessTokenType {
	return op.AccessTokenTypeJWT
}
func (c *client) IDTokenLifetime() time.Duration { return time.Hour }
func (c *client) DevMode() bool                  { return true }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) IsScopeAllowed(scope string) bool {
	for _, s := range c.scopes {
		if s == scope {
			return true
		}
	}
	return false
}
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c *client) ClockSkew() time.Duration             { return 0 }

// RevokeStation revokes every grant of a station: its access tokens stop
// verifying at once and its next refresh gets invalid_grant, so it
// re-enrolls (and, sending the same serial, keeps its id). It returns the
// number of grants revoked.
func (s *Server) RevokeStation(stationID string) int {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	fams := map[*family]bool{}
	for _, r := range s.store.refresh {
		if r.fam.stationID == stationID && !r.fam.revoked {
			fams[r.fam] = true
		}
	}
	for _, a := range s.store.access {
		if a.fam != nil && a.fam.stationID == stationID && !a.fam.revoked {
			fams[a.fam] = true
		}
	}
	seen := map[string]bool{}
	for f := range fams {
		f.revoked = true
		seen[f.id] = true
		s.store.logged(s.store.saveFamilyLocked(f))
	}
	// Grants another devcloud on the store issued.
	others, err := s.store.revokeStationStoredLocked(stationID, seen)
	s.store.logged(err)
	n := len(fams) + len(others)
	if n > 0 {
		s.log.Info("auth: station revoked", "station_id", stationID, "grants", n)
	}
	return n
}
