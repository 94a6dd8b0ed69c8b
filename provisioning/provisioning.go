// Package provisioning enrolls a label station with its cloud by the OAuth
// 2.0 Device Authorization Grant (RFC 8628) and keeps it supplied with access
// tokens: it stores the grant atomically in the state directory, refreshes
// ahead of expiry, persists every rotated refresh token before using the new
// access token, and turns a dead grant into a re-enrollment that — because
// the hardware serial is sent along — brings back the same station id.
//
// It works against any RFC 8628 server; devcloud/auth is the reference.
package provisioning

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
)

// SerialParam is the device authorization request parameter carrying the
// hardware serial (see docs/provisioning.md).
const SerialParam = "serial_number"

// DefaultScopes is what a station asks for: `openid` so an OpenID server
// names the station in an ID token, `offline_access` so it issues a refresh
// token, `printing` for the job API and MQTT.
var DefaultScopes = []string{"openid", "offline_access", "printing"}

// DefaultConfigRetry is how long a station waits after a configuration error
// before asking again: slow enough not to load the server, quick enough that
// a fixed server is picked up without a visit to the station.
const DefaultConfigRetry = time.Minute

// Endpoints are the authorization server's endpoints from its metadata
// (RFC 8414 §2, RFC 8628 §4, OpenID Connect Discovery §3).
type Endpoints struct {
	DeviceAuthorization string `json:"device_authorization_endpoint"`
	Token               string `json:"token_endpoint"`
	Userinfo            string `json:"userinfo_endpoint,omitempty"`
	Introspection       string `json:"introspection_endpoint,omitempty"`
}

// Sentinel errors callers branch on.
var (
	// ErrReenroll: the refresh token was rejected (invalid_grant, or
	// invalid_request / unauthorized_client twice, e.g. after a lost
	// rotation response or a revoked grant). The tokens are forgotten; run
	// Enroll again.
	ErrReenroll = errors.New("provisioning: grant rejected, re-enrollment needed")
	// ErrNotEnrolled: Token was called with no tokens stored.
	ErrNotEnrolled = errors.New("provisioning: not enrolled")
)

// Config configures a Provisioner.
type Config struct {
	ClientID      string   // [station]
	DeviceAuthURL string   // RFC 8628 §3.1 endpoint
	TokenURL      string   // RFC 6749 §3.2 endpoint
	Scopes        []string // [DefaultScopes]
	Serial        string   // hardware serial, sent as serial_number with the device request
	StateDir      string   // the token file lives here, mode 0600

	// Audience, if set, is sent as the `audience` parameter of the device
	// request: Auth0 issues a JWT access token for an API only when asked.
	Audience string
	// StationClaim is the claim that names the station. [DefaultStationClaim]
	StationClaim string
	// UserinfoURL and IntrospectionURL, from the metadata when it has them,
	// are asked for the station claim when the tokens do not carry it.
	UserinfoURL, IntrospectionURL string
	// Rediscover, if set, reads the server's metadata again; a refresh
	// answered invalid_request or unauthorized_client is retried once with
	// the fresh endpoints before the grant is given up.
	Rediscover func(context.Context) (Endpoints, error)
	// ConfigRetry is the wait after a configuration error. [DefaultConfigRetry]
	ConfigRetry time.Duration
	// Jitter returns a random duration in [0, d]; nil = math/rand/v2.
	Jitter func(d time.Duration) time.Duration

	// HTTPClient must have a Timeout: a stalled server must not hang
	// enrollment or a refresh. nil = a client with a 30 s timeout.
	HTTPClient *http.Client

	// DeniedDelay is how long the "denied" screen stays before a new code
	// is requested (RetryNow cuts it short, e.g. on a button press). [30s]
	DeniedDelay time.Duration
	// OnEvent, if set, is told about every step of enrollment, for the
	// screen and the log.
	OnEvent func(Event)

	Now    func() time.Time                     // nil = time.Now
	After  func(time.Duration) <-chan time.Time // nil = time.After; tests inject a fake clock
	Logger *slog.Logger                         // nil = slog.Default(); tokens are never logged
}

// Provisioner owns the station's grant. Its methods are safe for concurrent use.
type Provisioner struct {
	cfg   Config
	hc    *http.Client
	path  string
	log   *slog.Logger
	now   func() time.Time
	after func(time.Duration) <-chan time.Time
	retry chan struct{}
	ep    atomic.Pointer[Endpoints]

	mu sync.Mutex // serialises refreshes: one rotation in flight at a time
	// After a failed refresh no request is sent before retryAt (backoff, or
	// ConfigRetry after a configuration error); lastErr is returned meanwhile.
	retryAt  time.Time
	failures int
	lastErr  error
	cur      *grant // nil: not loaded or not enrolled
	loaded   bool
	invalid  bool // Invalidate was called for cur
}

// New checks cfg and returns a Provisioner. It does no I/O.
func New(cfg Config) (*Provisioner, error) {
	if cfg.ClientID == "" {
		cfg.ClientID = "station"
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = DefaultScopes
	}
	if cfg.DeniedDelay == 0 {
		cfg.DeniedDelay = 30 * time.Second
	}
	if cfg.StationClaim == "" {
		cfg.StationClaim = DefaultStationClaim
	}
	if cfg.ConfigRetry == 0 {
		cfg.ConfigRetry = DefaultConfigRetry
	}
	if cfg.Jitter == nil {
		cfg.Jitter = func(d time.Duration) time.Duration { return rand.N(d + 1) }
	}
	for _, f := range []struct{ name, v string }{{"DeviceAuthURL", cfg.DeviceAuthURL}, {"TokenURL", cfg.TokenURL}} {
		u, err := url.Parse(f.v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("provisioning: Config.%s %q: want an absolute http(s) URL", f.name, f.v)
		}
	}
	if cfg.StateDir == "" {
		return nil, errors.New("provisioning: Config.StateDir: empty")
	}
	p := &Provisioner{
		cfg:   cfg,
		hc:    cfg.HTTPClient,
		path:  filepath.Join(cfg.StateDir, TokenFile),
		log:   cfg.Logger,
		now:   cfg.Now,
		after: cfg.After,
		retry: make(chan struct{}, 1),
	}
	p.ep.Store(&Endpoints{DeviceAuthorization: cfg.DeviceAuthURL, Token: cfg.TokenURL, Userinfo: cfg.UserinfoURL, Introspection: cfg.IntrospectionURL})
	if p.hc == nil {
		p.hc = &http.Client{Timeout: 30 * time.Second}
	} else if p.hc.Timeout <= 0 {
		return nil, errors.New("provisioning: Config.HTTPClient: needs a Timeout")
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.after == nil {
		p.after = time.After
	}
	return p, nil
}

func (p *Provisioner) endpoints() Endpoints { return *p.ep.Load() }

// rediscover reads the metadata again, keeping the old endpoints on failure.
func (p *Provisioner) rediscover(ctx context.Context) {
	if p.cfg.Rediscover == nil {
		return
	}
	ep, err := p.cfg.Rediscover(ctx)
	if err != nil || ep.DeviceAuthorization == "" || ep.Token == "" {
		p.log.Warn("provisioning: metadata not refreshed", "err", err)
		return
	}
	p.ep.Store(&ep)
}

// loadLocked reads the token file once.
func (p *Provisioner) loadLocked() error {
	if p.loaded {
		return nil
	}
	tf, err := loadTokens(p.path)
	if errors.Is(err, fs.ErrNotExist) {
		p.loaded = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("provisioning: %w", err)
	}
	g := &grant{
		tok: (&oauth2.Token{
			AccessToken: tf.AccessToken, TokenType: tf.TokenType,
			RefreshToken: tf.RefreshToken, ExpiresIn: tf.ExpiresIn,
		}).WithExtra(map[string]any{"station_id": tf.StationID}),
		lifetime:  time.Duration(tf.ExpiresIn) * time.Second,
		stationID: tf.StationID,
	}
	// An expiry written with a sane clock is trusted only while the clock
	// is sane now; otherwise it is unknown and a 401 will tell.
	if tf.Expiry != nil && clockSane(p.now()) {
		g.tok.Expiry = *tf.Expiry
	}
	p.cur, p.loaded = g, true
	return nil
}

// saveLocked persists g, then makes it current. The file is written before
// anyone can use g's access token, so a rotated refresh token is never lost
// to a crash after the token was used.
func (p *Provisioner) saveLocked(g *grant) error {
	tf := tokenFile{
		Version:      fileVersion,
		AccessToken:  g.tok.AccessToken,
		TokenType:    g.tok.TokenType,
		RefreshToken: g.tok.RefreshToken,
		ExpiresIn:    int64(g.lifetime / time.Second),
		StationID:    g.stationID,
		Serial:       p.cfg.Serial,
	}
	if !g.tok.Expiry.IsZero() && clockSane(p.now()) {
		e := g.tok.Expiry.UTC()
		tf.Expiry = &e
	}
	b, err := json.MarshalIndent(tf, "", "  ")
	if err != nil {
		return err
	}
	if err := mkdirState(p.cfg.StateDir); err != nil {
		return err
	}
	if err := writeFileAtomic(p.path, b, 0o600); err != nil {
		return err
	}
	p.cur, p.loaded, p.invalid = g, true, false
	return nil
}

// Enrolled reports whether tokens are stored.
func (p *Provisioner) Enrolled() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.loadLocked(); err != nil {
		p.log.Warn("provisioning: token file unreadable; treating as not enrolled", "err", err)
		return false
	}
	return p.cur != nil
}

// StationID is the station's id: the Config.StationClaim of its tokens. ""
// if not enrolled, or if the server's tokens do not name the station (Enroll
// reported a *SetupError; the next refresh looks again).
func (p *Provisioner) StationID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.loadLocked() != nil || p.cur == nil {
		return ""
	}
	return p.cur.stationID
}

// Invalidate forces the next Token to refresh: call it after a 401 or an MQTT
// "not authorized", which mean the server no longer takes this access token.
func (p *Provisioner) Invalidate() {
	p.mu.Lock()
	p.invalid = true
	p.mu.Unlock()
}

// Reset forgets the tokens; the station must enroll again.
func (p *Provisioner) Reset() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.resetLocked()
}

func (p *Provisioner) resetLocked() error {
	p.cur, p.loaded, p.invalid = nil, true, false
	if err := removeDurably(p.path); err != nil {
		return fmt.Errorf("provisioning: reset: %w", err)
	}
	return nil
}

// refreshMargin is how long before expiry a token is renewed: 5 minutes, or
// a quarter of a short lifetime, so a short-lived token is not refreshed on
// every call.
func refreshMargin(lifetime time.Duration) time.Duration {
	const m = 5 * time.Minute
	if lifetime > 0 && lifetime/4 < m {
		return lifetime / 4
	}
	return m
}

// needsRefresh: expiry unknown means "use it until the server says 401".
func (p *Provisioner) needsRefresh(g *grant) bool {
	if p.invalid {
		return true
	}
	if g.tok.Expiry.IsZero() {
		return false
	}
	// Expiry from this boot carries a monotonic reading, so a clock step
	// (NTP after a 1970 boot) does not trigger a refresh storm.
	return !p.now().Before(g.tok.Expiry.Add(-refreshMargin(g.lifetime)))
}

// Token returns an access token, refreshing it ahead of expiry or after
// Invalidate. The rotated refresh token is on disk before the new access
// token is returned. A failure while the current token is still valid
// returns the current token. Errors: ErrNotEnrolled and ErrReenroll mean "run
// Enroll"; a *SetupError means the server refuses the station's settings;
// anything else is transient. After a failure Token sends no request until a
// backoff (or Config.ConfigRetry) has passed, so no caller can storm the
// server.
func (p *Provisioner) Token(ctx context.Context) (*oauth2.Token, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.loadLocked(); err != nil {
		return nil, err
	}
	g := p.cur
	if g == nil {
		return nil, ErrNotEnrolled
	}
	if !p.needsRefresh(g) {
		return tokenCopy(g.tok), nil
	}
	if g.tok.RefreshToken == "" {
		p.resetLocked()
		return nil, fmt.Errorf("%w: no refresh token", ErrReenroll)
	}
	usable := !p.invalid && (g.tok.Expiry.IsZero() || p.now().Before(g.tok.Expiry))
	if p.now().Before(p.retryAt) {
		if usable {
			return tokenCopy(g.tok), nil
		}
		return nil, p.lastErr
	}
	ng, err := p.refresh(ctx, g)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		switch classify(err, true) {
		case classDeadGrant:
			p.log.Warn("provisioning: refresh token rejected; re-enrollment needed", "station_id", g.stationID, "err", err)
			if rerr := p.resetLocked(); rerr != nil {
				return nil, rerr
			}
			return nil, fmt.Errorf("%w: %v", ErrReenroll, err)
		case classConfig:
			se := setupError("refresh", err)
			p.retryAt, p.lastErr = p.now().Add(p.cfg.ConfigRetry), se
			p.log.Error("provisioning: the server refuses the station's refresh; ask its admin", "code", se.Code, "desc", se.Desc, "retry_in", p.cfg.ConfigRetry)
			if !usable {
				p.emit(Event{Kind: EventSetupProblem, Err: se, Delay: p.cfg.ConfigRetry})
			}
			err = se
		default:
			d := p.backoff(p.failures)
			p.failures++
			p.retryAt, p.lastErr = p.now().Add(d), fmt.Errorf("provisioning: refresh: %w", err)
			p.log.Warn("provisioning: refresh failed", "err", err, "retry_in", d, "current_token_valid", usable)
			err = p.lastErr
		}
		if usable {
			return tokenCopy(g.tok), nil
		}
		return nil, err
	}
	p.retryAt, p.failures, p.lastErr = time.Time{}, 0, nil
	if ng.tok.RefreshToken == "" {
		// RFC 6749 §6: the server may keep the refresh token unchanged.
		ng.tok.RefreshToken = g.tok.RefreshToken
	}
	switch {
	case ng.stationID == "":
		ng.stationID = g.stationID
	case g.stationID != "" && ng.stationID != g.stationID:
		// The link is dialled with the old id; the broker will say which is right.
		p.log.Warn("provisioning: the refreshed token names another station; keeping the enrolled id", "enrolled", g.stationID, "token", ng.stationID)
		ng.stationID = g.stationID
	}
	if err := p.saveLocked(ng); err != nil {
		// The old refresh token is dead on the server; keep the new one in
		// memory so a later Token can still persist and use it.
		p.cur, p.invalid = ng, true
		return nil, fmt.Errorf("provisioning: save rotated token: %w", err)
	}
	p.log.Info("provisioning: token refreshed", "station_id", ng.stationID, "expires_in", ng.lifetime)
	return tokenCopy(ng.tok), nil
}

// refresh is the RFC 6749 §6 request. invalid_request and unauthorized_client
// are ambiguous — a server may use them for a reused refresh token (§5.2) or
// answer so because its endpoints moved — so they get one retry with fresh
// metadata before the caller counts them as a dead grant.
func (p *Provisioner) refresh(ctx context.Context, g *grant) (*grant, error) {
	form := func() url.Values {
		return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {g.tok.RefreshToken}}
	}
	ng, err := p.exchange(ctx, form())
	if c := oauthCode(err); c == errInvalidRequest || c == errUnauthorizedClient {
		p.log.Warn("provisioning: refresh refused; retrying once with fresh metadata", "code", c)
		p.rediscover(ctx)
		ng, err = p.exchange(ctx, form())
	}
	return ng, err
}

func tokenCopy(t *oauth2.Token) *oauth2.Token {
	c := *t
	return &c
}
