package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"labelstation/devcloud/records"
)

// Sign-in errors.
var (
	ErrBadPassword = errors.New("auth: wrong user or password")
	ErrNoSession   = errors.New("auth: not signed in")
	ErrBadCSRF     = errors.New("auth: missing or wrong CSRF token")
)

// HashPassword returns the bcrypt hash of a password, for User.PasswordHash and the seed file.
func HashPassword(password string) ([]byte, error) {
	return hashPassword(password, bcrypt.DefaultCost)
}

// HashGeneratedPassword hashes a password that is itself 128 or more random bits, as devcloud
// generates at start-up: guessing it is hopeless whatever the cost, so the cheapest bcrypt
// cost keeps start-up fast.
func HashGeneratedPassword(password string) ([]byte, error) {
	return hashPassword(password, bcrypt.MinCost)
}

func hashPassword(password string, cost int) ([]byte, error) {
	if password == "" {
		return nil, errors.New("auth: empty password")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return nil, fmt.Errorf("auth: hash password: %w", err)
	}
	return h, nil
}

// CheckPasswordHash reports whether h is a bcrypt hash this server can check.
func CheckPasswordHash(h []byte) error {
	if _, err := bcrypt.Cost(h); err != nil {
		return fmt.Errorf("auth: password hash: want bcrypt ($2a$, $2b$ or $2y$): %w", err)
	}
	return nil
}

// dummyHash is compared against when the user is unknown, so a wrong user name takes as long
// as a wrong password.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("no such user"), bcrypt.DefaultCost)

// Password guessing: after maxFailures wrong passwords for one user within failureWindow, that
// user's sign-ins are refused until the window has passed since the first failure.
const (
	maxFailures   = 10
	failureWindow = 15 * time.Minute
)

// ErrTooManyFailures is returned while a user's sign-ins are paused.
var ErrTooManyFailures = errors.New("auth: too many wrong passwords; try again later")

type failures struct {
	n     int
	first time.Time
}

// SignIn checks a user's password and returns the user.
func (s *Server) SignIn(userID, password string) (User, error) {
	now := s.now()
	s.sessions.mu.Lock()
	f := s.sessions.failures[userID]
	if f != nil && now.Sub(f.first) >= failureWindow {
		delete(s.sessions.failures, userID)
		f = nil
	}
	paused := f != nil && f.n >= maxFailures
	s.sessions.mu.Unlock()
	if paused {
		s.log.Warn("auth: sign-in paused after repeated wrong passwords", "user", userID)
		return User{}, ErrTooManyFailures
	}
	u, ok := s.users[userID]
	h := u.PasswordHash
	if !ok || len(h) == 0 {
		h = dummyHash
	}
	if bcrypt.CompareHashAndPassword(h, []byte(password)) != nil || !ok || len(u.PasswordHash) == 0 {
		s.sessions.mu.Lock()
		if f := s.sessions.failures[userID]; f != nil {
			f.n++
		} else if len(s.sessions.failures) < 10000 { // unknown names must not grow memory without bound
			s.sessions.failures[userID] = &failures{n: 1, first: now}
		}
		s.sessions.mu.Unlock()
		s.log.Warn("auth: sign-in refused", "user", userID)
		return User{}, ErrBadPassword
	}
	s.sessions.mu.Lock()
	delete(s.sessions.failures, userID)
	s.sessions.mu.Unlock()
	return u, nil
}

const (
	sessionCookie = "devcloud_session"
	sessionTTL    = 8 * time.Hour
	csrfField     = "csrf_token"
)

// session is one browser's state: anonymous until sign-in, always with a CSRF token so even
// the sign-in form cannot be posted from another site.
type session struct {
	user    string // "" until signed in
	csrf    string
	expires time.Time
}

// Sessions are records (kind auth.session, keyed by the SHA-256 of the cookie, so a copy of the
// store signs no one in), so a browser signed in at one devcloud is signed in at every one on
// the store, and stays signed in across a restart.
const kindSession = "auth.session"

type storedSession struct {
	User    string    `json:"user,omitempty"`
	CSRF    string    `json:"csrf"`
	Expires time.Time `json:"expires"`
}

type sessions struct {
	mu        sync.Mutex
	failures  map[string]*failures // wrong passwords by user name
	lastPurge time.Time
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux ≥ 3.17
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// current returns the request's live session, or nil.
func (s *Server) currentSession(r *http.Request) (string, *session) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return "", nil
	}
	var st storedSession
	err = records.GetJSON(s.store.flowRecords(), kindSession, hashToken(c.Value), &st)
	if err != nil {
		if !errors.Is(err, records.ErrNotFound) {
			s.log.Error("auth: read session", "err", err)
		}
		return "", nil
	}
	if !s.now().Before(st.Expires) {
		s.dropSession(c.Value)
		return "", nil
	}
	return c.Value, &session{user: st.User, csrf: st.CSRF, expires: st.Expires}
}

// startSession creates a session for user ("" = anonymous), sets its cookie and returns it.
// Signing in always starts a new session, so a session id planted before sign-in is worthless.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, user string) *session {
	id := randomToken()
	now := s.now()
	sess := &session{user: user, csrf: randomToken(), expires: now.Add(sessionTTL)}
	s.purgeSessions(now)
	err := records.PutJSON(s.store.flowRecords(), kindSession, hashToken(id), storedSession{User: user, CSRF: sess.csrf, Expires: sess.expires})
	if err != nil {
		// The page still renders; its form is refused as out of date and the user tries again.
		s.log.Error("auth: store session", "err", err)
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: id, Path: pathDevice,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.secureCookies(r),
		MaxAge: int(sessionTTL.Seconds()),
	})
	return sess
}

// dropSession deletes session id, on every devcloud on the store.
func (s *Server) dropSession(id string) {
	if id == "" {
		return
	}
	if err := s.store.flowRecords().DeleteRecord(kindSession, hashToken(id)); err != nil {
		s.log.Error("auth: delete session", "err", err)
	}
}

// purgeSessions deletes expired sessions, at most once per flowPurgeEvery on this server.
func (s *Server) purgeSessions(now time.Time) {
	s.sessions.mu.Lock()
	due := now.Sub(s.sessions.lastPurge) >= flowPurgeEvery || now.Before(s.sessions.lastPurge)
	if due {
		s.sessions.lastPurge = now
	}
	s.sessions.mu.Unlock()
	if !due {
		return
	}
	rec := s.store.flowRecords()
	all, err := records.ListJSON[storedSession](rec, kindSession)
	errs := []error{err}
	for k, st := range all {
		if !now.Before(st.Expires) {
			errs = append(errs, rec.DeleteRecord(kindSession, k))
		}
	}
	if err := errors.Join(errs...); err != nil {
		s.log.Warn("auth: purging expired sessions", "err", err)
	}
}

func (s *Server) endSession(w http.ResponseWriter, r *http.Request, id string) {
	s.dropSession(id)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: pathDevice, MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.secureCookies(r)})
}

// secureCookies: over TLS, or behind a TLS-terminating proxy for an https issuer.
func (s *Server) secureCookies(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(s.issuer, "https://")
}

// checkForm verifies that a POST comes from our own page: the session's CSRF token in the form
// and, when the browser sends one, an Origin of this server.
func (s *Server) checkForm(r *http.Request, sess *session) error {
	if sess == nil {
		return ErrNoSession
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || (u.Host != r.Host && o != s.issuer) {
			return fmt.Errorf("%w: request from origin %q", ErrBadCSRF, o)
		}
	}
	got := r.PostFormValue(csrfField)
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(sess.csrf)) != 1 {
		return ErrBadCSRF
	}
	return nil
}
