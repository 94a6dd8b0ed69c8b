package provisioning

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"labelstation/devcloud/auth"
)

// events records what Enroll reported.
type events struct {
	mu sync.Mutex
	ev []Event
}

func (r *events) add(e Event) {
	r.mu.Lock()
	r.ev = append(r.ev, e)
	r.mu.Unlock()
}

func (r *events) kinds() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s []string
	for _, e := range r.ev {
		s = append(s, e.Kind.String())
	}
	return strings.Join(s, ",")
}

func enrollCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSlowDownHonoured(t *testing.T) {
	e := newEnv(t, auth.Options{})
	p := e.provisioner("s", nil)
	var code Code
	err := p.Enroll(enrollCtx(t), func(c Code) {
		code = c
		e.srv.SlowDownNext(2)
		e.approve(c.UserCode)
	})
	if err != nil {
		t.Fatal(err)
	}
	polls := e.srv.Polls(code.UserCode)
	var got []string
	for _, pl := range polls {
		if pl.Outcome == "slow_down" && !pl.Forced {
			t.Errorf("poll at %v was too fast", pl.At)
		}
		got = append(got, pl.Outcome)
	}
	if strings.Join(got, ",") != "slow_down,slow_down,approved" {
		t.Fatalf("polls %v", got)
	}
	issued := code.Expires.Add(-10 * time.Minute)
	// First poll after one interval; each slow_down adds 5 s for good.
	want := []time.Duration{5 * time.Second, 10 * time.Second, 15 * time.Second}
	prev := issued
	for i, pl := range polls {
		if gap := pl.At.Sub(prev); gap != want[i] {
			t.Errorf("poll %d came %v after the previous, want %v", i, gap, want[i])
		}
		prev = pl.At
	}
}

func TestTransientFailuresSurvived(t *testing.T) {
	e := newEnv(t, auth.Options{})
	var rec events
	p := e.provisioner("s", func(c *Config) { c.OnEvent = rec.add })
	e.srv.FailNext(3) // the device authorization request fails three times
	var code Code
	err := p.Enroll(enrollCtx(t), func(c Code) {
		code = c
		e.srv.FailNext(2) // then two polls fail
		e.approve(c.UserCode)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.kinds(); got != "retrying,retrying,retrying,code,retrying,retrying,enrolled" {
		t.Fatalf("events %s", got)
	}
	// The polls that failed never reached the device-code check; the one
	// that did got the tokens, and no poll came faster than the interval.
	polls := e.srv.Polls(code.UserCode)
	if len(polls) != 1 || polls[0].Outcome != "approved" {
		t.Fatalf("polls %+v", polls)
	}
	if p.StationID() == "" {
		t.Fatal("no station id")
	}
}

func TestExpiredCodeGetsNewCodeAtOnce(t *testing.T) {
	e := newEnv(t, auth.Options{DeviceCodeTTL: 30 * time.Second})
	var rec events
	p := e.provisioner("s", func(c *Config) { c.OnEvent = rec.add })
	var codes []Code
	err := p.Enroll(enrollCtx(t), func(c Code) {
		codes = append(codes, c)
		if len(codes) == 2 {
			e.approve(c.UserCode)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.kinds(); got != "code,expired,code,enrolled" {
		t.Fatalf("events %s", got)
	}
	if codes[0].UserCode == codes[1].UserCode {
		t.Fatal("same code after expiry")
	}
	// The second code was requested the moment the first expired.
	if d := codes[1].Expires.Sub(codes[0].Expires); d != 30*time.Second {
		t.Fatalf("second code issued %v after the first expired", d-30*time.Second)
	}
	for _, pl := range e.srv.Polls(codes[0].UserCode) {
		if pl.At.After(codes[0].Expires) {
			t.Errorf("polled an expired code at %v", pl.At)
		}
	}
}

func TestDeniedThenNewCodeAfterDelay(t *testing.T) {
	e := newEnv(t, auth.Options{})
	var rec events
	p := e.provisioner("s", func(c *Config) {
		c.OnEvent = rec.add
		c.DeniedDelay = 20 * time.Second
	})
	n := 0
	err := p.Enroll(enrollCtx(t), func(c Code) {
		n++
		if n == 1 {
			e.deny(c.UserCode)
		} else {
			e.approve(c.UserCode)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.kinds(); got != "code,denied,code,enrolled" {
		t.Fatalf("events %s", got)
	}
	if rec.ev[1].Delay != 20*time.Second {
		t.Fatalf("denied event delay %v", rec.ev[1].Delay)
	}
	found := false
	for _, w := range e.clock.waits {
		found = found || w == 20*time.Second
	}
	if !found {
		t.Fatalf("never waited the denied delay: %v", e.clock.waits)
	}
}

func TestDeniedThenNewCodeOnButton(t *testing.T) {
	e := newEnv(t, auth.Options{})
	var p *Provisioner
	var rec events
	p = e.provisioner("s", func(c *Config) {
		c.DeniedDelay = time.Hour
		// The delay never passes: only RetryNow can end the denied screen.
		c.After = func(d time.Duration) <-chan time.Time {
			if d == time.Hour {
				return nil
			}
			return e.clock.After(d)
		}
		c.OnEvent = func(ev Event) {
			rec.add(ev)
			if ev.Kind == EventDenied {
				p.RetryNow() // the button
			}
		}
	})
	n := 0
	err := p.Enroll(enrollCtx(t), func(c Code) {
		n++
		if n == 1 {
			e.deny(c.UserCode)
		} else {
			e.approve(c.UserCode)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.kinds(); got != "code,denied,code,enrolled" {
		t.Fatalf("events %s", got)
	}
}

func TestEnrollStopsOnCancel(t *testing.T) {
	e := newEnv(t, auth.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	p := e.provisioner("s", nil)
	err := p.Enroll(ctx, func(Code) { cancel() })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Enroll after cancel: %v", err)
	}
	if p.Enrolled() {
		t.Fatal("enrolled without approval")
	}
}

func TestEnrollConfigErrorIsShownAndRetriedSlowly(t *testing.T) {
	e := newEnv(t, auth.Options{})
	var rec events
	ctx, cancel := context.WithCancel(enrollCtx(t))
	var mu sync.Mutex
	setups := 0
	p := e.provisioner("s", func(c *Config) {
		c.ClientID = "unknown"
		c.OnEvent = func(ev Event) {
			rec.add(ev)
			if ev.Kind != EventSetupProblem {
				return
			}
			var se *SetupError
			if !errors.As(ev.Err, &se) || se.Code != "invalid_client" || ev.Delay != DefaultConfigRetry {
				t.Errorf("setup problem event %+v", ev)
			}
			mu.Lock()
			defer mu.Unlock()
			if setups++; setups == 3 {
				cancel()
			}
		}
	})
	err := p.Enroll(ctx, func(Code) { t.Error("code shown for an unknown client") })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Enroll: %v, want it to keep retrying until cancelled", err)
	}
	if got := rec.kinds(); got != "setup_problem,setup_problem,setup_problem" {
		t.Fatalf("events %s", got)
	}
	e.clock.mu.Lock()
	defer e.clock.mu.Unlock()
	for _, w := range e.clock.waits {
		if w < time.Minute {
			t.Fatalf("waited %v after a configuration error, want ≥ 1m (waits %v)", w, e.clock.waits)
		}
	}
}

func TestLostRefreshResponseReenrollsSameID(t *testing.T) {
	e := newEnv(t, auth.Options{})
	p := e.provisioner("serial-lost", nil)
	e.enroll(p)
	id := p.StationID()
	e.srv.DropNextRefresh(1)
	p.Invalidate()
	if _, err := p.Token(context.Background()); err == nil || errors.Is(err, ErrReenroll) {
		t.Fatalf("Token with the response lost: %v, want a transient error", err)
	}
	// No second request before the backoff has passed.
	if _, err := p.Token(context.Background()); err == nil || errors.Is(err, ErrReenroll) {
		t.Fatalf("Token inside the backoff: %v, want the last transient error", err)
	}
	// The retry presents the rotated-away token: the server revokes the
	// grant and the station learns it must enroll again.
	e.clock.Advance(backoffMax)
	if _, err := p.Token(context.Background()); !errors.Is(err, ErrReenroll) {
		t.Fatalf("Token after the loss: %v, want ErrReenroll", err)
	}
	if p.Enrolled() {
		t.Fatal("still enrolled with a dead grant")
	}
	e.enroll(p)
	if p.StationID() != id {
		t.Fatalf("re-enrolled as %q, want %q", p.StationID(), id)
	}
	if _, err := e.srv.Verify(context.Background(), e.token(p)); err != nil {
		t.Fatal(err)
	}
}

func TestTransientRefreshFailureKeepsValidToken(t *testing.T) {
	e := newEnv(t, auth.Options{})
	p := e.provisioner("s", nil)
	e.enroll(p)
	at := e.token(p)
	e.clock.Advance(57 * time.Minute) // inside the refresh margin, not expired
	e.srv.FailNext(1)
	if got := e.token(p); got != at {
		t.Fatal("a failed early refresh did not fall back to the valid token")
	}
	if got := e.token(p); got != at {
		t.Fatal("refreshed again inside the backoff")
	}
	e.clock.Advance(backoffMax / 2) // backoff(0) is at most 1 s; still before expiry
	if got := e.token(p); got == at {
		t.Fatal("the next call did not refresh")
	}
}

func TestUnsetClockDoesNotLoop(t *testing.T) {
	e := newEnv(t, auth.Options{})
	boot := &fakeClock{t: time.Unix(60, 0).UTC()} // a Pi before NTP
	// Waiting passes time for the server too.
	after := func(d time.Duration) <-chan time.Time { e.clock.Advance(d); return boot.After(d) }
	p := e.provisioner("s", func(c *Config) { c.Now, c.After = boot.Now, after })
	e.enroll(p)
	if tf := e.tokenFile(); tf.Expiry != nil {
		t.Fatalf("expiry %v stored from an unset clock", tf.Expiry)
	}
	at := e.token(p)
	// A restart, still in 1970: the stored token is used, not refreshed.
	p2 := e.provisioner("s", func(c *Config) { c.Now, c.After = boot.Now, after })
	for range 5 {
		if e.token(p2) != at {
			t.Fatal("refreshed with an unknown expiry and no 401")
		}
	}
	// NTP sets the clock: one refresh, then a stable token.
	boot.Advance(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).Sub(boot.Now()))
	seen := map[string]bool{}
	for range 5 {
		seen[e.token(p)] = true
	}
	if len(seen) != 1 || seen[at] {
		t.Fatalf("%d distinct tokens after the clock step, want 1 new one", len(seen))
	}
	if tf := e.tokenFile(); tf.Expiry == nil {
		t.Fatal("no expiry stored once the clock is sane")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{TokenURL: "http://h/t", StateDir: "x"}, "DeviceAuthURL"},
		{Config{DeviceAuthURL: "http://h/d", TokenURL: "h/t", StateDir: "x"}, "TokenURL"},
		{Config{DeviceAuthURL: "http://h/d", TokenURL: "http://h/t"}, "StateDir"},
		{Config{DeviceAuthURL: "http://h/d", TokenURL: "http://h/t", StateDir: "x", HTTPClient: &http.Client{}}, "Timeout"},
	} {
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want mention of %s", tc.cfg, err, tc.want)
		}
	}
}
