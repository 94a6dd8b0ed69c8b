package badgelink

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestCodesAreRandomConsonants(t *testing.T) {
	r := New(Options{})
	seen := map[string]bool{}
	re := regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`)
	for i := 0; i < 200; i++ {
		p, err := r.Request(fmt.Sprintf("st-%d", i), "badge")
		if err != nil {
			t.Fatal(err)
		}
		if !re.MatchString(p.Code) || seen[p.Code] {
			t.Fatalf("code %q: malformed or repeated", p.Code)
		}
		seen[p.Code] = true
	}
}

// Bytes at or above 240 are skipped: they would favour the first letters of the alphabet.
func TestCodeDrawIsUnbiased(t *testing.T) {
	src := append(bytes.Repeat([]byte{255}, 16), []byte{0, 1, 2, 3, 4, 5, 6, 7, 19, 239, 0, 0, 0, 0, 0, 0}...)
	code, err := newCode(bytes.NewReader(src))
	if err != nil || code != "BCDF-GHJK" {
		t.Fatalf("newCode = %q, %v", code, err)
	}
	if _, err := newCode(bytes.NewReader(nil)); err == nil {
		t.Fatal("no randomness, yet a code")
	}
}

func TestNormCode(t *testing.T) {
	for in, want := range map[string]string{"bdfg-hjkl": "BDFG-HJKL", " BDFG HJKL ": "BDFG-HJKL", "BDFGHJKL": "BDFG-HJKL", "BDF": "BDF"} {
		if got := NormCode(in); got != want {
			t.Errorf("NormCode(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConfirmRules(t *testing.T) {
	c := &clock{t: time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)}
	var linked []string
	r := New(Options{Now: c.now, Owner: func(b string) (string, bool) { return "carol", b == "seeded" },
		OnLinked: func(p Pending, user string) { linked = append(linked, p.Station+" "+p.Code+" "+user) }})
	if _, err := r.Request("st-1", "seeded"); !errors.Is(err, ErrLinked) {
		t.Fatalf("request for a seeded badge: %v", err)
	}
	if _, err := r.Request("st-1", ""); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("request without a badge: %v", err)
	}
	a, _ := r.Request("st-1", "b1")
	b, _ := r.Request("st-2", "b1")
	if p, err := r.Confirm(a.Code, "alice"); err != nil || p.Badge != "b1" {
		t.Fatalf("confirm: %+v %v", p, err)
	}
	if u, ok, _ := r.Owner("b1"); !ok || u != "alice" {
		t.Fatalf("owner = %q %v", u, ok)
	}
	if len(linked) != 1 || linked[0] != "st-1 "+a.Code+" alice" {
		t.Fatalf("OnLinked saw %q", linked)
	}
	if _, err := r.Confirm(a.Code, "alice"); !errors.Is(err, ErrUsed) {
		t.Fatalf("second confirm: %v", err)
	}
	// Alice again with the other code: already hers, so confirmed; Bob would be refused.
	if _, err := r.Look(b.Code, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Confirm(b.Code, "bob"); !errors.Is(err, ErrLinked) {
		t.Fatalf("bob confirms alice's badge: %v", err)
	}
	if _, err := r.Confirm(b.Code, "alice"); err != nil {
		t.Fatalf("alice confirms her own badge again: %v", err)
	}
	x, _ := r.Request("st-1", "b2")
	c.t = x.Expires
	if _, err := r.Confirm(x.Code, "alice"); !errors.Is(err, ErrExpired) {
		t.Fatalf("confirm at expiry: %v", err)
	}
	// Long after, the code is forgotten.
	c.t = c.t.Add(2 * time.Hour)
	r.Request("st-1", "b3") // sweeps
	if _, err := r.Look(x.Code, "alice"); !errors.Is(err, ErrUnknownCode) {
		t.Fatalf("look long after: %v", err)
	}
}

// One station cannot take every code: past maxPerStation waiting codes it is refused, others
// are not, and codes that expired make room again.
func TestCodesPerStationBounded(t *testing.T) {
	c := &clock{t: time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)}
	r := New(Options{Now: c.now})
	for i := 0; i < maxPerStation; i++ {
		if _, err := r.Request("st-noisy", "b"); err != nil {
			t.Fatalf("code %d: %v", i+1, err)
		}
	}
	if _, err := r.Request("st-noisy", "b"); !errors.Is(err, ErrFull) {
		t.Fatalf("one code too many: %v, want ErrFull", err)
	}
	if _, err := r.Request("st-quiet", "b"); err != nil {
		t.Fatalf("another station: %v", err)
	}
	c.t = c.t.Add(DefaultTTL)
	if _, err := r.Request("st-noisy", "b"); err != nil {
		t.Fatalf("after the codes expired: %v", err)
	}
}
