package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Registered applications act for whichever users authorize them (authorization code flow with
// PKCE), unlike the seeded App, which is bound to one user by client credentials.

// Errors of registered applications and their grants.
var (
	ErrUnknownApp   = errors.New("auth: unknown application")
	ErrUnknownGrant = errors.New("auth: unknown refresh token")
	// ErrGrantReused: a rotated refresh token was presented again; its whole grant is revoked.
	ErrGrantReused  = errors.New("auth: refresh token already used; grant revoked")
	ErrGrantRevoked = errors.New("auth: grant revoked")
)

// RegisteredApp is an external application. Its secret is kept only as a SHA-256 hash: the
// secret is 256 random bits, so a fast hash is as safe as a slow one.
type RegisteredApp struct {
	ClientID     string    `json:"client_id"`
	SecretHash   string    `json:"secret_hash"` // hex SHA-256 of the secret
	Name         string    `json:"name"`
	Description  string    `json:"description"`
	IconURL      string    `json:"icon_url"`
	RedirectURIs []string  `json:"redirect_uris"`
	Created      time.Time `json:"created"`
}

func (a RegisteredApp) secretMatches(secret string) bool {
	h := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare([]byte(hex.EncodeToString(h[:])), []byte(a.SecretHash)) == 1
}

// Grant is one refresh token of a user's authorization of an application. Each refresh rotates
// it: the presented token is marked Used and a new one of the same Family is added. Presenting a
// used token again revokes the family (OAuth 2.0 Security BCP §4.14.2).
type Grant struct {
	TokenHash string    `json:"token_hash"` // hashToken of the refresh token; the token itself is never stored
	Family    string    `json:"family"`     // the authorization every rotation descends from
	ClientID  string    `json:"client_id"`
	UserID    string    `json:"user_id"`
	Scopes    []string  `json:"scopes"`
	AuthTime  time.Time `json:"auth_time"` // when the user consented
	Expires   time.Time `json:"expires"`
	Used      bool      `json:"used"`
	Revoked   bool      `json:"revoked"`
}

// AppStore keeps registered applications and their grants, so both survive a restart. Every
// implementation passes authtest.AppStore. Methods take no context, like the job store's.
type AppStore interface {
	// PutApp adds or replaces an application.
	PutApp(a RegisteredApp) error
	// GetApp returns an application; an unknown id is ErrUnknownApp.
	GetApp(clientID string) (RegisteredApp, error)
	// ListApps returns every application, by client id.
	ListApps() ([]RegisteredApp, error)
	// DeleteApp removes an application; an unknown id is ErrUnknownApp.
	DeleteApp(clientID string) error
	// AddGrant stores a new refresh token.
	AddGrant(g Grant) error
	// GetGrant returns the refresh token with this hash; unknown is ErrUnknownGrant.
	GetGrant(tokenHash string) (Grant, error)
	// RotateGrant marks the grant oldHash used and adds next, atomically. If oldHash was used
	// already it revokes the family and returns ErrGrantReused; if revoked, ErrGrantRevoked.
	RotateGrant(oldHash string, next Grant) error
	// RevokeGrantFamily revokes every token of a family and returns how many were live.
	RevokeGrantFamily(family string) (int, error)
	// ListGrants returns the user's unused, unrevoked grants ("" = every user's).
	ListGrants(userID string) ([]Grant, error)
	// PurgeGrants deletes the tokens that expired before t (used and revoked ones are kept
	// until then, to recognise their reuse) and returns how many.
	PurgeGrants(t time.Time) (int, error)
}

// hashToken is how a refresh token is found in an AppStore without storing the token.
func hashToken(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// appRefreshPrefix marks an application's refresh token, so the token endpoint looks it up in
// the AppStore rather than among station grants.
const appRefreshPrefix = "lsa_"

// MemAppStore is an AppStore in memory, for tests and a devcloud without a durable store.
type MemAppStore struct {
	mu     sync.Mutex
	apps   map[string]RegisteredApp
	grants map[string]Grant
}

var _ AppStore = (*MemAppStore)(nil)

// NewMemAppStore returns an empty MemAppStore.
func NewMemAppStore() *MemAppStore {
	return &MemAppStore{apps: map[string]RegisteredApp{}, grants: map[string]Grant{}}
}

func (m *MemAppStore) PutApp(a RegisteredApp) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	a.RedirectURIs = slices.Clone(a.RedirectURIs)
	m.apps[a.ClientID] = a
	return nil
}

func (m *MemAppStore) GetApp(id string) (RegisteredApp, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.apps[id]
	if !ok {
		return a, fmt.Errorf("%w: %q", ErrUnknownApp, id)
	}
	a.RedirectURIs = slices.Clone(a.RedirectURIs)
	return a, nil
}

func (m *MemAppStore) ListApps() ([]RegisteredApp, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []RegisteredApp
	for _, a := range m.apps {
		a.RedirectURIs = slices.Clone(a.RedirectURIs)
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b RegisteredApp) int { return strings.Compare(a.ClientID, b.ClientID) })
	return out, nil
}

func (m *MemAppStore) DeleteApp(id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.apps[id]; !ok {
		return fmt.Errorf("%w: %q", ErrUnknownApp, id)
	}
	delete(m.apps, id)
	return nil
}

func (m *MemAppStore) AddGrant(g Grant) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	g.Scopes = slices.Clone(g.Scopes)
	m.grants[g.TokenHash] = g
	return nil
}

func (m *MemAppStore) GetGrant(h string) (Grant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g, ok := m.grants[h]
	if !ok {
		return g, ErrUnknownGrant
	}
	g.Scopes = slices.Clone(g.Scopes)
	return g, nil
}

func (m *MemAppStore) RotateGrant(oldHash string, next Grant) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.grants[oldHash]
	switch {
	case !ok:
		return ErrUnknownGrant
	case old.Revoked:
		return ErrGrantRevoked
	case old.Used:
		m.revokeLocked(old.Family)
		return ErrGrantReused
	}
	old.Used = true
	m.grants[oldHash] = old
	next.Scopes = slices.Clone(next.Scopes)
	m.grants[next.TokenHash] = next
	return nil
}

func (m *MemAppStore) revokeLocked(family string) int {
	n := 0
	for h, g := range m.grants {
		if g.Family == family && !g.Revoked {
			if !g.Used {
				n++
			}
			g.Revoked = true
			m.grants[h] = g
		}
	}
	return n
}

func (m *MemAppStore) RevokeGrantFamily(family string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.revokeLocked(family), nil
}

func (m *MemAppStore) PurgeGrants(t time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for h, g := range m.grants {
		if g.Expires.Before(t) {
			delete(m.grants, h)
			n++
		}
	}
	return n, nil
}

func (m *MemAppStore) ListGrants(user string) ([]Grant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Grant
	for _, g := range m.grants {
		if (user == "" || g.UserID == user) && !g.Used && !g.Revoked {
			g.Scopes = slices.Clone(g.Scopes)
			out = append(out, g)
		}
	}
	slices.SortFunc(out, func(a, b Grant) int { return a.AuthTime.Compare(b.AuthTime) })
	return out, nil
}

// AppRegistration is what an operator gives to register an application.
type AppRegistration struct {
	Name         string   `json:"client_name"`
	Description  string   `json:"description"`
	IconURL      string   `json:"logo_uri"`
	RedirectURIs []string `json:"redirect_uris"`
}

// check names the first field that is wrong.
func (r AppRegistration) check() error {
	switch {
	case strings.TrimSpace(r.Name) == "":
		return errors.New("client_name: required (shown to users on the consent page)")
	case utf8.RuneCountInString(r.Name) > 80:
		return errors.New("client_name: longer than 80 characters")
	case utf8.RuneCountInString(r.Description) > 500:
		return errors.New("description: longer than 500 characters")
	case len(r.RedirectURIs) == 0:
		return errors.New("redirect_uris: at least one is required")
	case len(r.RedirectURIs) > 10:
		return errors.New("redirect_uris: at most 10")
	}
	if r.IconURL != "" {
		if u, err := url.Parse(r.IconURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("logo_uri: %q is not an absolute http(s) URL", r.IconURL)
		}
	}
	for i, ru := range r.RedirectURIs {
		u, err := url.Parse(ru)
		switch {
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
			return fmt.Errorf("redirect_uris[%d]: %q is not an absolute http(s) URL", i, ru)
		case u.Fragment != "" || strings.Contains(ru, "#"):
			return fmt.Errorf("redirect_uris[%d]: %q must not have a fragment (RFC 6749 §3.1.2)", i, ru)
		}
	}
	return nil
}

// newAppClientID allocates a client id that cannot collide with a seeded app's by accident.
func newAppClientID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "app-" + hex.EncodeToString(b)
}

// RegisterApp registers an application and returns it with its client secret, which is shown
// this once: only its hash is kept.
func (s *Server) RegisterApp(r AppRegistration) (RegisteredApp, string, error) {
	if err := r.check(); err != nil {
		return RegisteredApp{}, "", fmt.Errorf("auth: register app: %w", err)
	}
	secret := randomToken()
	h := sha256.Sum256([]byte(secret))
	a := RegisteredApp{
		ClientID: newAppClientID(),
		Name:     strings.TrimSpace(r.Name), Description: strings.TrimSpace(r.Description),
		IconURL: r.IconURL, RedirectURIs: slices.Clone(r.RedirectURIs),
		SecretHash: hex.EncodeToString(h[:]), Created: s.now().UTC(),
	}
	if _, seeded := s.apps[a.ClientID]; seeded {
		return RegisteredApp{}, "", errors.New("auth: register app: client id collision; try again")
	}
	if err := s.appStore.PutApp(a); err != nil {
		return RegisteredApp{}, "", fmt.Errorf("auth: register app: %w", err)
	}
	s.log.Info("auth: application registered", "client_id", a.ClientID, "name", a.Name)
	return a, secret, nil
}

// DeleteApp removes an application and revokes every grant users gave it: its tokens answer
// 401 and its client id is unknown from then on.
func (s *Server) DeleteApp(clientID string) error {
	if err := s.appStore.DeleteApp(clientID); err != nil {
		return fmt.Errorf("auth: delete app: %w", err)
	}
	gs, err := s.appStore.ListGrants("")
	if err != nil {
		return fmt.Errorf("auth: delete app: %w", err)
	}
	done := map[string]bool{}
	for _, g := range gs {
		if g.ClientID == clientID && !done[g.Family] {
			done[g.Family] = true
			if err := s.revokeAppFamily(g.Family); err != nil {
				return fmt.Errorf("auth: delete app: %w", err)
			}
		}
	}
	s.log.Info("auth: application deleted", "client_id", clientID, "grants_revoked", len(done))
	return nil
}

// RegisteredApps returns the registered applications.
func (s *Server) RegisteredApps() ([]RegisteredApp, error) { return s.appStore.ListApps() }

// RegisteredApp returns one registered application; an unknown id is ErrUnknownApp.
func (s *Server) RegisteredApp(clientID string) (RegisteredApp, error) {
	return s.appStore.GetApp(clientID)
}

// AuthorizedApp is an application a user has authorized, for the user's "your apps" page.
type AuthorizedApp struct {
	App      RegisteredApp
	Since    time.Time // first consent still in force
	Scopes   []string
	families []string
}

// AuthorizedApps lists the applications that hold a live grant of user.
func (s *Server) AuthorizedApps(user string) ([]AuthorizedApp, error) {
	gs, err := s.appStore.ListGrants(user)
	if err != nil {
		return nil, fmt.Errorf("auth: authorized apps: %w", err)
	}
	now := s.now()
	slices.SortFunc(gs, func(a, b Grant) int { return a.AuthTime.Compare(b.AuthTime) })
	byClient := map[string]*AuthorizedApp{}
	var order []string
	for _, g := range gs {
		if !now.Before(g.Expires) {
			continue
		}
		aa := byClient[g.ClientID]
		if aa == nil {
			a, err := s.appStore.GetApp(g.ClientID)
			if err != nil {
				continue // the application was removed
			}
			aa = &AuthorizedApp{App: a, Since: g.AuthTime}
			byClient[g.ClientID] = aa
			order = append(order, g.ClientID)
		}
		aa.families = append(aa.families, g.Family)
		for _, sc := range g.Scopes {
			if !slices.Contains(aa.Scopes, sc) {
				aa.Scopes = append(aa.Scopes, sc)
			}
		}
	}
	out := make([]AuthorizedApp, 0, len(order))
	for _, id := range order {
		out = append(out, *byClient[id])
	}
	return out, nil
}

// RevokeApp withdraws every authorization user gave clientID: its access tokens answer 401 at
// once and its refresh tokens get invalid_grant, so the application must ask the user again.
// It returns the number of grants revoked.
func (s *Server) RevokeApp(user, clientID string) (int, error) {
	apps, err := s.AuthorizedApps(user)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, aa := range apps {
		if aa.App.ClientID != clientID {
			continue
		}
		for _, f := range aa.families {
			if err := s.revokeAppFamily(f); err != nil {
				return n, err
			}
			n++
		}
	}
	s.log.Info("auth: application revoked by user", "client_id", clientID, "user", user, "grants", n)
	return n, nil
}

// revokeAppFamily revokes a grant in the store and deletes its access tokens' records, so
// every devcloud on the store refuses them.
func (s *Server) revokeAppFamily(family string) error {
	if _, err := s.appStore.RevokeGrantFamily(family); err != nil {
		return fmt.Errorf("auth: revoke grant: %w", err)
	}
	if _, err := s.store.dropAppAccess(family, time.Time{}); err != nil {
		return err
	}
	return nil
}
