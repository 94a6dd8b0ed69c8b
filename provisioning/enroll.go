package provisioning

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"golang.org/x/oauth2"
)

// Code is what the enrollment screen shows (RFC 8628 §3.3).
type Code struct {
	UserCode                string
	VerificationURI         string
	VerificationURIComplete string // "" when the server gives none: show VerificationURI
	Expires                 time.Time
	Interval                time.Duration
}

// EventKind names a step of enrollment.
type EventKind int

const (
	EventCode     EventKind = iota + 1 // a new code is on screen
	EventRetrying                      // a transient failure; retrying after Delay
	EventExpired                       // the code expired; a new one follows at once
	EventDenied                        // the admin denied; a new code follows after Delay or RetryNow
	EventEnrolled                      // tokens obtained and stored
	// EventSetupProblem: the server refuses the station's client settings, or
	// its tokens do not name the station; Err is a *SetupError. Enroll asks
	// again after Delay (Config.ConfigRetry).
	EventSetupProblem
)

func (k EventKind) String() string {
	switch k {
	case EventCode:
		return "code"
	case EventRetrying:
		return "retrying"
	case EventExpired:
		return "expired"
	case EventDenied:
		return "denied"
	case EventEnrolled:
		return "enrolled"
	case EventSetupProblem:
		return "setup_problem"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event reports progress of Enroll to the screen.
type Event struct {
	Kind      EventKind
	Code      Code          // EventCode
	Err       error         // EventRetrying: what failed; EventSetupProblem: a *SetupError
	Delay     time.Duration // EventRetrying, EventDenied, EventSetupProblem: wait before the next attempt
	StationID string        // EventEnrolled ("" with a SetupProblem after it: no station claim)
}

var (
	errCodeExpired = errors.New("code expired")
	errDenied      = errors.New("access denied")
)

// Backoff for transient failures: capped exponential with full jitter.
const (
	backoffMin = time.Second
	backoffMax = 60 * time.Second
)

func (p *Provisioner) backoff(attempt int) time.Duration {
	d := backoffMax
	if attempt < 6 {
		d = min(backoffMax, backoffMin<<attempt)
	}
	return d/2 + p.cfg.Jitter(d/2)
}

// setupProblem reports a configuration error and waits Config.ConfigRetry.
func (p *Provisioner) setupProblem(ctx context.Context, se *SetupError) error {
	p.log.Error("provisioning: setup problem; ask the authorization server's admin", "step", se.Step, "code", se.Code, "desc", se.Desc, "retry_in", p.cfg.ConfigRetry)
	p.emit(Event{Kind: EventSetupProblem, Err: se, Delay: p.cfg.ConfigRetry})
	return p.sleep(ctx, p.cfg.ConfigRetry)
}

func (p *Provisioner) emit(e Event) {
	if p.cfg.OnEvent != nil {
		p.cfg.OnEvent(e)
	}
}

// sleep waits d by the injected clock, or until ctx is done.
func (p *Provisioner) sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-p.after(d):
		return nil
	}
}

// RetryNow ends the wait after a denial at once (the "try again" button).
func (p *Provisioner) RetryNow() {
	select {
	case p.retry <- struct{}{}:
	default:
	}
}

// Enroll runs the device flow until tokens are obtained and stored. onCode is
// called with every new code (after expiry or denial a fresh one follows).
// Transient failures are retried with backoff; a configuration error (the
// server refuses the client, its scopes or the grant type) is reported as
// EventSetupProblem and retried after Config.ConfigRetry. Enroll returns only
// on success, on ctx cancellation, or when the tokens cannot be stored.
// Tokens that do not name the station are stored all the same — the grant is
// good, and a refresh after the admin added the claim picks the id up — and
// reported as EventSetupProblem after EventEnrolled.
func (p *Provisioner) Enroll(ctx context.Context, onCode func(Code)) error {
	for attempt := 0; ; {
		da, err := p.requestCode(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if classify(err, false) == classConfig {
				attempt = 0
				if err := p.setupProblem(ctx, setupError("device authorization", err)); err != nil {
					return err
				}
				continue
			}
			d := p.backoff(attempt)
			attempt++
			p.log.Warn("provisioning: device authorization failed; retrying", "err", err, "in", d)
			p.emit(Event{Kind: EventRetrying, Err: err, Delay: d})
			if err := p.sleep(ctx, d); err != nil {
				return err
			}
			continue
		}
		attempt = 0
		c := Code{
			UserCode: da.UserCode, VerificationURI: da.VerificationURI,
			VerificationURIComplete: da.VerificationURIComplete,
			Expires:                 da.Expiry, Interval: time.Duration(da.Interval) * time.Second,
		}
		p.log.Info("provisioning: showing pairing code", "user_code", c.UserCode, "uri", c.VerificationURI, "expires", c.Expires)
		p.emit(Event{Kind: EventCode, Code: c})
		if onCode != nil {
			onCode(c)
		}
		g, err := p.poll(ctx, da)
		switch {
		case err == nil:
			p.mu.Lock()
			err = p.saveLocked(g)
			p.mu.Unlock()
			if err != nil {
				return fmt.Errorf("provisioning: save tokens: %w", err)
			}
			p.log.Info("provisioning: enrolled", "station_id", g.stationID)
			p.emit(Event{Kind: EventEnrolled, StationID: g.stationID})
			var se *SetupError
			switch {
			case g.stationID != "":
			case errors.As(g.identErr, &se):
				p.log.Error("provisioning: the tokens do not name the station; ask the server's admin", "claim", p.cfg.StationClaim, "code", se.Code, "desc", se.Desc)
				p.emit(Event{Kind: EventSetupProblem, Err: se, Delay: p.cfg.ConfigRetry})
			default:
				// The userinfo endpoint failed for now; the next refresh asks again.
				p.log.Warn("provisioning: station id not looked up yet", "err", g.identErr)
			}
			return nil
		case errors.Is(err, errCodeExpired):
			p.log.Info("provisioning: code expired; requesting a new one")
			p.emit(Event{Kind: EventExpired})
		case errors.Is(err, errDenied):
			p.log.Warn("provisioning: enrollment denied", "retry_in", p.cfg.DeniedDelay)
			// A button press from before the denial does not count.
			select {
			case <-p.retry:
			default:
			}
			p.emit(Event{Kind: EventDenied, Delay: p.cfg.DeniedDelay})
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-p.retry:
			case <-p.after(p.cfg.DeniedDelay):
			}
		default:
			var se *SetupError
			if !errors.As(err, &se) {
				return err
			}
			if err := p.setupProblem(ctx, se); err != nil {
				return err
			}
		}
	}
}

// poll is the RFC 8628 §3.4 token request loop: first poll after one
// interval, slow_down adds 5 s for good (§3.5), transient failures back off
// (never faster than the interval) until the code expires.
func (p *Provisioner) poll(ctx context.Context, da *oauth2.DeviceAuthResponse) (*grant, error) {
	interval := time.Duration(da.Interval) * time.Second
	wait := interval
	form := url.Values{"grant_type": {grantDeviceCode}, "device_code": {da.DeviceCode}}
	for failures := 0; ; {
		if left := da.Expiry.Sub(p.now()); left <= wait {
			// Polling after expiry is pointless: wait it out, then a fresh code.
			if err := p.sleep(ctx, max(left, 0)); err != nil {
				return nil, err
			}
			return nil, errCodeExpired
		}
		if err := p.sleep(ctx, wait); err != nil {
			return nil, err
		}
		g, err := p.exchange(ctx, form)
		if err == nil {
			return g, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		wait = interval
		switch code := oauthCode(err); {
		case code == errPending:
			failures = 0
		case code == errSlowDown:
			failures = 0
			interval += 5 * time.Second
			wait = interval
			p.log.Info("provisioning: server asked to slow down", "interval", interval)
		case code == errAccessDenied || code == "authorization_declined": // Entra ID's word for it
			return nil, errDenied
		case code == "bad_verification_code": // Entra ID: the code is unknown; a new one follows
			return nil, errCodeExpired
		case code == errExpiredToken:
			return nil, errCodeExpired
		case classify(err, false) == classTransient:
			wait = max(interval, p.backoff(failures))
			failures++
			p.log.Warn("provisioning: poll failed; retrying", "err", err, "in", wait)
			p.emit(Event{Kind: EventRetrying, Err: err, Delay: wait})
		case classify(err, false) == classConfig:
			return nil, setupError("token", err)
		default:
			// The server no longer knows the code (restart, invalid_grant):
			// a fresh code beats a stuck screen.
			p.log.Warn("provisioning: poll rejected; requesting a new code", "err", err)
			return nil, errCodeExpired
		}
	}
}

// mkdirState creates the state directory, private to the station's user.
func mkdirState(dir string) error {
	return os.MkdirAll(dir, 0o700)
}
