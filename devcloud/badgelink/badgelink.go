// Package badgelink links unknown badges to users by phone. A station that does not know a
// badge asks for a short-lived association code for the badge's keyed hash and shows it as a
// QR code; the badge's owner opens it, signs in and confirms, and from then on the badge is
// theirs. Codes are random, single-use and expire; wrong codes are counted per user, so a
// signed-in user cannot try codes until one belongs to someone else's badge.
package badgelink

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"labelstation/protocol"
)

// Refusals; the page tells a person each in words.
var (
	ErrUnknownCode  = errors.New("badgelink: no badge is waiting for this code")
	ErrExpired      = errors.New("badgelink: the code has expired")
	ErrUsed         = errors.New("badgelink: the code has been used")
	ErrLinked       = errors.New("badgelink: the badge belongs to someone else")
	ErrTooManyWrong = errors.New("badgelink: too many wrong codes; try again later")
	ErrFull         = errors.New("badgelink: too many codes waiting; try again later")
	ErrBadRequest   = errors.New("badgelink: bad request")
)

// Defaults.
const (
	DefaultTTL = 5 * time.Minute
	// After MaxWrong unknown codes within WrongWindow, a user's look-ups are refused until the
	// window has passed since the first: 5 tries in 15 minutes against 20^8 codes.
	DefaultMaxWrong    = 5
	DefaultWrongWindow = 15 * time.Minute
	// maxCodes bounds the codes kept (waiting, expired or used), so stations asking without
	// end cannot grow the cloud's memory.
	maxCodes = 10000
	// maxPerStation bounds the codes one station has waiting, so a station asking without end
	// cannot use up maxCodes for everyone else.
	maxPerStation = 16
	// keepDone is how long an expired or used code is remembered, so the page can say
	// "expired" or "used" rather than "unknown".
	keepDone = time.Hour
)

// alphabet is RFC 8628 §6.1's: consonants only, so no word is spelled and nothing reads as
// another character; 20^8 ≈ 2^34.6 codes.
const alphabet = "BCDFGHJKLMNPQRSTVWXZ"

// Options configure a Registry.
type Options struct {
	// Owner returns who a badge belongs to outside this registry (the seed's users).
	Owner func(badge string) (user string, ok bool)
	TTL   time.Duration
	// MaxWrong and WrongWindow rate-limit unknown codes per user.
	MaxWrong    int
	WrongWindow time.Duration
	Now         func() time.Time
	Rand        io.Reader
	// OnLinked, if set, is told of every confirmed code (the station showing it is told so);
	// it runs after the registry's lock is released.
	OnLinked func(p Pending, user string)
}

// Pending is a code and the badge it would link.
type Pending struct {
	Code    string
	Badge   string // the keyed hash; never shown whole
	Station string
	Expires time.Time
}

// Tail is what the page shows of the badge.
func (p Pending) Tail() string { return protocol.BadgeTail(p.Badge) }

type entry struct {
	Pending
	used bool
}

type wrong struct {
	n     int
	first time.Time
}

// Registry holds the waiting codes and the badges linked by phone, in memory.
type Registry struct {
	opt   Options
	mu    sync.Mutex
	codes map[string]*entry
	links map[string]string // badge hash → user id
	wrong map[string]*wrong // by user
}

// New builds a registry.
func New(opt Options) *Registry {
	if opt.TTL <= 0 {
		opt.TTL = DefaultTTL
	}
	if opt.MaxWrong <= 0 {
		opt.MaxWrong = DefaultMaxWrong
	}
	if opt.WrongWindow <= 0 {
		opt.WrongWindow = DefaultWrongWindow
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Rand == nil {
		opt.Rand = rand.Reader
	}
	if opt.Owner == nil {
		opt.Owner = func(string) (string, bool) { return "", false }
	}
	return &Registry{opt: opt, codes: map[string]*entry{}, links: map[string]string{}, wrong: map[string]*wrong{}}
}

// TTL is how long a new code lives.
func (r *Registry) TTL() time.Duration { return r.opt.TTL }

// Owner returns who badge belongs to: linked here, or known otherwise.
func (r *Registry) Owner(badge string) (string, bool) {
	r.mu.Lock()
	u, ok := r.links[badge]
	r.mu.Unlock()
	if ok {
		return u, true
	}
	return r.opt.Owner(badge)
}

// Request issues a code for badge, asked for by station. A badge that belongs to someone
// already gets none (ErrLinked).
func (r *Registry) Request(station, badge string) (Pending, error) {
	if badge == "" || len(badge) > 128 {
		return Pending{}, fmt.Errorf("%w: badge: want 1-128 characters, got %d", ErrBadRequest, len(badge))
	}
	if _, ok := r.Owner(badge); ok {
		return Pending{}, ErrLinked
	}
	now := r.opt.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sweepLocked(now)
	if len(r.codes) >= maxCodes {
		return Pending{}, ErrFull
	}
	waiting := 0
	for _, e := range r.codes {
		if e.Station == station && !e.used && now.Before(e.Expires) {
			waiting++
		}
	}
	if waiting >= maxPerStation {
		return Pending{}, fmt.Errorf("%w: station %q has %d codes waiting", ErrFull, station, waiting)
	}
	for {
		code, err := newCode(r.opt.Rand)
		if err != nil {
			return Pending{}, err
		}
		if _, taken := r.codes[code]; taken {
			continue
		}
		p := Pending{Code: code, Badge: badge, Station: station, Expires: now.Add(r.opt.TTL)}
		r.codes[code] = &entry{Pending: p}
		return p, nil
	}
}

// sweepLocked forgets codes that ended more than keepDone ago.
func (r *Registry) sweepLocked(now time.Time) {
	for k, e := range r.codes {
		if now.Sub(e.Expires) > keepDone {
			delete(r.codes, k)
		}
	}
	for u, w := range r.wrong {
		if now.Sub(w.first) >= r.opt.WrongWindow {
			delete(r.wrong, u)
		}
	}
}

// Look returns what code would link, for user to confirm. An unknown code counts against
// user's tries.
func (r *Registry) Look(code, user string) (Pending, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, err := r.lookLocked(code, user)
	if err != nil {
		return Pending{}, err
	}
	return e.Pending, nil
}

func (r *Registry) lookLocked(code, user string) (*entry, error) {
	now := r.opt.Now()
	w := r.wrong[user]
	if w != nil && now.Sub(w.first) >= r.opt.WrongWindow {
		delete(r.wrong, user)
		w = nil
	}
	if w != nil && w.n >= r.opt.MaxWrong {
		return nil, ErrTooManyWrong
	}
	e, ok := r.codes[NormCode(code)]
	switch {
	case !ok:
		if w != nil {
			w.n++
		} else if len(r.wrong) < maxCodes {
			r.wrong[user] = &wrong{n: 1, first: now}
		}
		return nil, ErrUnknownCode
	case e.used:
		return nil, ErrUsed
	case !now.Before(e.Expires):
		return nil, ErrExpired
	}
	return e, nil
}

// Confirm links the code's badge to user and uses the code up. A badge that belongs to
// someone else by now is refused (ErrLinked); one already user's is confirmed again.
func (r *Registry) Confirm(code, user string) (Pending, error) {
	r.mu.Lock()
	e, err := r.lookLocked(code, user)
	var badge string
	if err == nil {
		badge = e.Badge
	}
	r.mu.Unlock()
	if err != nil {
		return Pending{}, err
	}
	// Outside the lock: Owner may ask the seed.
	if owner, ok := r.Owner(badge); ok && owner != user {
		return e.Pending, ErrLinked
	}
	r.mu.Lock()
	switch owner, ok := r.links[badge]; {
	case e.used:
		r.mu.Unlock()
		return Pending{}, ErrUsed // confirmed by a racing request meanwhile
	case ok && owner != user:
		r.mu.Unlock()
		return e.Pending, ErrLinked
	}
	e.used = true
	r.links[badge] = user
	p := e.Pending
	r.mu.Unlock()
	if r.opt.OnLinked != nil {
		r.opt.OnLinked(p, user)
	}
	return p, nil
}

// NormCode reads a code as typed: case, spaces and dashes do not matter.
func NormCode(s string) string {
	var b strings.Builder
	for _, c := range strings.ToUpper(s) {
		if strings.ContainsRune(alphabet, c) {
			b.WriteRune(c)
		}
	}
	n := b.String()
	if len(n) == 8 {
		return n[:4] + "-" + n[4:]
	}
	return n
}

// newCode draws 8 letters of alphabet without bias, as XXXX-XXXX.
func newCode(rnd io.Reader) (string, error) {
	var out []byte
	buf := make([]byte, 16)
	for len(out) < 8 {
		if _, err := io.ReadFull(rnd, buf); err != nil {
			return "", fmt.Errorf("badgelink: random: %w", err)
		}
		for _, b := range buf {
			// 240 = 12 × 20: bytes above it would favour the first letters.
			if b < 240 && len(out) < 8 {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out[:4]) + "-" + string(out[4:]), nil
}
