// Package badgelink links unknown badges to users by phone. A station that does not know a
// badge asks for a short-lived association code for the badge's keyed hash and shows it as a
// QR code; the badge's owner opens it, signs in and confirms, and from then on the badge is
// theirs. Codes are random, single-use and expire; wrong codes are counted per user, so a
// signed-in user cannot try codes until one belongs to someone else's badge. Codes, links and
// counters are records in devcloud's store, so they outlive a restart and every job-service
// replica on the store shares them.
package badgelink

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"labelstation/devcloud/records"
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
	// end cannot grow the cloud's store.
	maxCodes = 10000
	// maxPerStation bounds the codes one station has waiting (issued and not expired, used or
	// not), so a station asking without end cannot use up maxCodes for everyone else.
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
	// Records keeps the codes, links and wrong-code counters; nil keeps them in memory. Every
	// registry on one store (job-service replicas) sees the same codes and links.
	Records records.Store
	TTL     time.Duration
	// MaxWrong and WrongWindow rate-limit unknown codes per user.
	MaxWrong    int
	WrongWindow time.Duration
	Now         func() time.Time
	Rand        io.Reader
	// OnLinked, if set, is told of every confirmed code (the station showing it is told so).
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

// Record kinds. A code is its own key: it is single-use and short-lived, and the page looks it
// up by what the person typed.
const (
	kindCode  = "badgelink.code"  // code → storedCode
	kindLink  = "badgelink.link"  // badge hash → storedLink
	kindWrong = "badgelink.wrong" // user id → storedWrong
	// kindStation holds, per station, the expiry of each code it was issued that is still
	// valid: the bound of codes one station may have waiting.
	kindStation = "badgelink.station"
)

type storedCode struct {
	Badge   string    `json:"badge"`
	Station string    `json:"station"`
	Expires time.Time `json:"expires"`
	UsedBy  string    `json:"used_by,omitempty"`
}

type storedLink struct {
	User   string    `json:"user"`
	Linked time.Time `json:"linked"`
}

type storedWrong struct {
	N     int       `json:"n"`
	First time.Time `json:"first"`
}

// sweepEvery spaces the sweeps of ended codes and wrong-code counters: each lists every code.
const sweepEvery = time.Minute

// Registry holds the waiting codes and the badges linked by phone in a records store.
type Registry struct {
	opt Options
	rec records.Store

	mu        sync.Mutex
	lastSweep time.Time
	codes     int // kept at the last sweep plus issued since, for the maxCodes bound
}

// errTaken is a drawn code that is in use already: draw again.
var errTaken = errors.New("badgelink: code taken")

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
	rec := opt.Records
	if rec == nil {
		rec = records.NewMem()
	}
	return &Registry{opt: opt, rec: rec}
}

// TTL is how long a new code lives.
func (r *Registry) TTL() time.Duration { return r.opt.TTL }

// Owner returns who badge belongs to: known otherwise (the seed), or linked here. An error is
// the store's: the badge may be linked, it cannot be told now.
func (r *Registry) Owner(badge string) (string, bool, error) {
	if u, ok := r.opt.Owner(badge); ok {
		return u, true, nil
	}
	var l storedLink
	err := records.GetJSON(r.rec, kindLink, badge, &l)
	switch {
	case errors.Is(err, records.ErrNotFound):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("badgelink: owner: %w", err)
	}
	return l.User, true, nil
}

// Request issues a code for badge, asked for by station. A badge that belongs to someone
// already gets none (ErrLinked).
func (r *Registry) Request(station, badge string) (Pending, error) {
	if badge == "" || len(badge) > 128 {
		return Pending{}, fmt.Errorf("%w: badge: want 1-128 characters, got %d", ErrBadRequest, len(badge))
	}
	if _, ok, err := r.Owner(badge); err != nil {
		return Pending{}, err
	} else if ok {
		return Pending{}, ErrLinked
	}
	now := r.opt.Now()
	if err := r.sweep(now); err != nil {
		return Pending{}, err
	}
	r.mu.Lock()
	full := r.codes >= maxCodes
	r.mu.Unlock()
	if full {
		return Pending{}, ErrFull
	}
	p := Pending{Badge: badge, Station: station, Expires: now.Add(r.opt.TTL)}
	if err := r.takeSlot(station, now, p.Expires); err != nil {
		return Pending{}, err
	}
	val, err := json.Marshal(storedCode{Badge: badge, Station: station, Expires: p.Expires})
	if err != nil {
		return Pending{}, fmt.Errorf("badgelink: %w", err)
	}
	for {
		if p.Code, err = newCode(r.opt.Rand); err != nil {
			return Pending{}, err
		}
		err = r.rec.UpdateRecord(kindCode, p.Code, func(old []byte) ([]byte, error) {
			if old != nil {
				return nil, errTaken
			}
			return val, nil
		})
		if errors.Is(err, errTaken) {
			continue
		}
		if err != nil {
			return Pending{}, fmt.Errorf("badgelink: store code: %w", err)
		}
		r.mu.Lock()
		r.codes++
		r.mu.Unlock()
		return p, nil
	}
}

// sweep forgets codes that ended more than keepDone ago and counters past their window, at
// most once per sweepEvery (each sweep lists every code), and counts the codes kept.
func (r *Registry) sweep(now time.Time) error {
	r.mu.Lock()
	due := r.lastSweep.IsZero() || now.Sub(r.lastSweep) >= sweepEvery || now.Before(r.lastSweep)
	if due {
		r.lastSweep = now
	}
	r.mu.Unlock()
	if !due {
		return nil
	}
	codes, err := records.ListJSON[storedCode](r.rec, kindCode)
	if err != nil {
		return fmt.Errorf("badgelink: list codes: %w", err)
	}
	kept := 0
	for code, c := range codes {
		if now.Sub(c.Expires) <= keepDone {
			kept++
		} else if err := r.rec.DeleteRecord(kindCode, code); err != nil {
			return fmt.Errorf("badgelink: forget code: %w", err)
		}
	}
	r.mu.Lock()
	r.codes = kept
	r.mu.Unlock()
	wrong, err := records.ListJSON[storedWrong](r.rec, kindWrong)
	if err != nil {
		return fmt.Errorf("badgelink: list wrong codes: %w", err)
	}
	for u, w := range wrong {
		if now.Sub(w.First) >= r.opt.WrongWindow {
			if err := r.rec.DeleteRecord(kindWrong, u); err != nil {
				return fmt.Errorf("badgelink: forget wrong codes: %w", err)
			}
		}
	}
	stations, err := records.ListJSON[[]time.Time](r.rec, kindStation)
	if err != nil {
		return fmt.Errorf("badgelink: list stations: %w", err)
	}
	for st, waiting := range stations {
		if !slices.ContainsFunc(waiting, now.Before) {
			if err := r.rec.DeleteRecord(kindStation, st); err != nil {
				return fmt.Errorf("badgelink: forget station: %w", err)
			}
		}
	}
	return nil
}

// takeSlot counts a new code against station's codes in their lifetime, refusing it past
// maxPerStation; its record is the expiry of each code issued to the station and still valid.
func (r *Registry) takeSlot(station string, now, expires time.Time) error {
	err := r.rec.UpdateRecord(kindStation, station, func(old []byte) ([]byte, error) {
		var waiting []time.Time
		if old != nil {
			if err := json.Unmarshal(old, &waiting); err != nil {
				return nil, err
			}
		}
		waiting = slices.DeleteFunc(waiting, func(t time.Time) bool { return !now.Before(t) })
		if len(waiting) >= maxPerStation {
			return nil, fmt.Errorf("%w: station %q has %d codes waiting", ErrFull, station, len(waiting))
		}
		return json.Marshal(append(waiting, expires))
	})
	if err != nil && !errors.Is(err, ErrFull) {
		return fmt.Errorf("badgelink: count station's codes: %w", err)
	}
	return err
}

// Look returns what code would link, for user to confirm. An unknown code counts against
// user's tries.
func (r *Registry) Look(code, user string) (Pending, error) {
	code = NormCode(code)
	now := r.opt.Now()
	var w storedWrong
	err := records.GetJSON(r.rec, kindWrong, user, &w)
	switch {
	case errors.Is(err, records.ErrNotFound):
	case err != nil:
		return Pending{}, fmt.Errorf("badgelink: wrong codes: %w", err)
	case now.Sub(w.First) < r.opt.WrongWindow && w.N >= r.opt.MaxWrong:
		return Pending{}, ErrTooManyWrong
	}
	var c storedCode
	err = records.GetJSON(r.rec, kindCode, code, &c)
	if errors.Is(err, records.ErrNotFound) {
		if err := r.countWrong(user, now); err != nil {
			return Pending{}, err
		}
		return Pending{}, ErrUnknownCode
	}
	if err != nil {
		return Pending{}, fmt.Errorf("badgelink: code: %w", err)
	}
	if err := c.usable(now); err != nil {
		return Pending{}, err
	}
	return Pending{Code: code, Badge: c.Badge, Station: c.Station, Expires: c.Expires}, nil
}

func (c storedCode) usable(now time.Time) error {
	switch {
	case c.UsedBy != "":
		return ErrUsed
	case !now.Before(c.Expires):
		return ErrExpired
	}
	return nil
}

// countWrong adds one unknown code to user's tries in the window.
func (r *Registry) countWrong(user string, now time.Time) error {
	err := r.rec.UpdateRecord(kindWrong, user, func(old []byte) ([]byte, error) {
		var w storedWrong
		if old != nil {
			if err := json.Unmarshal(old, &w); err != nil {
				return nil, err
			}
		}
		if old == nil || now.Sub(w.First) >= r.opt.WrongWindow {
			w = storedWrong{First: now}
		}
		w.N++
		return json.Marshal(w)
	})
	if err != nil {
		return fmt.Errorf("badgelink: count wrong code: %w", err)
	}
	return nil
}

// Confirm links the code's badge to user and uses the code up. A badge that belongs to
// someone else by now is refused (ErrLinked); one already user's is confirmed again. The code
// is used up first and the link made second, each by an atomic update of its record: of two
// confirmations of one code only one gets past the first, and of two codes for one badge
// only one gets past the second, whichever replica serves them.
func (r *Registry) Confirm(code, user string) (Pending, error) {
	p, err := r.Look(code, user)
	if err != nil {
		return Pending{}, err
	}
	if owner, ok := r.opt.Owner(p.Badge); ok && owner != user {
		return p, ErrLinked
	}
	now := r.opt.Now()
	err = r.rec.UpdateRecord(kindCode, p.Code, func(old []byte) ([]byte, error) {
		var c storedCode
		if old == nil {
			return nil, ErrUnknownCode // swept meanwhile
		}
		if err := json.Unmarshal(old, &c); err != nil {
			return nil, err
		}
		if err := c.usable(now); err != nil {
			return nil, err // confirmed by a racing request meanwhile
		}
		c.UsedBy = user
		return json.Marshal(c)
	})
	if err != nil {
		return Pending{}, r.refusal("use code", err)
	}
	err = r.rec.UpdateRecord(kindLink, p.Badge, func(old []byte) ([]byte, error) {
		var l storedLink
		if old != nil {
			if err := json.Unmarshal(old, &l); err != nil {
				return nil, err
			}
			if l.User != user {
				return nil, ErrLinked
			}
			return old, nil
		}
		return json.Marshal(storedLink{User: user, Linked: now})
	})
	if err != nil {
		// Nothing linked: give the code back, as a refusal before using it would have left it.
		undo := r.rec.UpdateRecord(kindCode, p.Code, func(old []byte) ([]byte, error) {
			var c storedCode
			if old == nil {
				return nil, nil
			}
			if err := json.Unmarshal(old, &c); err != nil {
				return nil, err
			}
			c.UsedBy = ""
			return json.Marshal(c)
		})
		if undo != nil {
			undo = fmt.Errorf("badgelink: give code back: %w", undo)
		}
		if errors.Is(err, ErrLinked) {
			return p, errors.Join(ErrLinked, undo)
		}
		return Pending{}, errors.Join(fmt.Errorf("badgelink: store link: %w", err), undo)
	}
	if r.opt.OnLinked != nil {
		r.opt.OnLinked(p, user)
	}
	return p, nil
}

// refusal passes the registry's own refusals on as they are and names the step of any other
// (the store's) error.
func (r *Registry) refusal(step string, err error) error {
	for _, known := range []error{ErrUnknownCode, ErrExpired, ErrUsed, ErrLinked} {
		if errors.Is(err, known) {
			return known
		}
	}
	return fmt.Errorf("badgelink: %s: %w", step, err)
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
