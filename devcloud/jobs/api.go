package jobs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"labelstation/internal/supervise"
)

// Defaults of APIOptions.
const (
	DefaultRetention      = 8 * time.Hour
	DefaultRateLimit      = 600
	DefaultRateWindow     = time.Minute
	DefaultCallbackMaxAge = 24 * time.Hour
	DefaultSweepEvery     = time.Minute
)

// APIOptions set the job API's retention, rate limits and callbacks. The zero value gives the
// defaults.
type APIOptions struct {
	// Retention is how long a held job waits for its owner's badge before it expires; an
	// application's own App.Retention overrides it. Default DefaultRetention.
	Retention time.Duration
	// RateLimit requests per RateWindow are allowed per access token (per client address for
	// a request without one); more is 429. Defaults DefaultRateLimit per DefaultRateWindow.
	RateLimit  int
	RateWindow time.Duration
	// CallbackMaxAge is how long a callback is retried before it is given up.
	// Default DefaultCallbackMaxAge.
	CallbackMaxAge time.Duration
	// CallbackBackoff spaces the attempts of one callback (zero value: 250 ms doubling to 30 s).
	CallbackBackoff supervise.Backoff
	// CallbackPoll is how often queued callbacks are looked for besides when this process
	// queued one (another replica may have). Default 1 s.
	CallbackPoll time.Duration
	// CallbackClient sends the callbacks; default a client with a 10 s timeout.
	CallbackClient *http.Client
	// SweepEvery is how often held jobs past their expiry are marked expired. Default
	// DefaultSweepEvery.
	SweepEvery time.Duration
}

func (o *APIOptions) defaults() error {
	if o.Retention < 0 || o.RateLimit < 0 || o.RateWindow < 0 || o.CallbackMaxAge < 0 || o.SweepEvery < 0 || o.CallbackPoll < 0 {
		return errors.New("jobs: APIOptions: durations and limits must not be negative")
	}
	if o.Retention == 0 {
		o.Retention = DefaultRetention
	}
	if o.RateLimit == 0 {
		o.RateLimit = DefaultRateLimit
	}
	if o.RateWindow == 0 {
		o.RateWindow = DefaultRateWindow
	}
	if o.CallbackMaxAge == 0 {
		o.CallbackMaxAge = DefaultCallbackMaxAge
	}
	if o.CallbackPoll == 0 {
		o.CallbackPoll = time.Second
	}
	if o.CallbackClient == nil {
		o.CallbackClient = &http.Client{Timeout: 10 * time.Second}
	}
	if o.SweepEvery == 0 {
		o.SweepEvery = DefaultSweepEvery
	}
	return nil
}

// Caller is who sent a job API request: the user the job belongs to, and the application
// (OAuth client id) acting for them, "" when the token names none.
type Caller struct {
	User string
	App  string
}

// App is what the job service needs of a registered application.
type App struct {
	ID string
	// Secret signs the application's callbacks (HMAC-SHA256, see SignCallback).
	Secret string
	// Retention overrides APIOptions.Retention for the application's jobs; 0: the default.
	Retention time.Duration
}

// Apps finds registered applications.
type Apps interface {
	// App returns the application with client id, or false.
	App(id string) (App, bool)
}

// AppDirectory is an in-memory Apps that settings may change while the service runs.
type AppDirectory struct {
	mu   sync.Mutex
	apps map[string]App
}

var _ Apps = (*AppDirectory)(nil)

// NewAppDirectory returns a directory of apps.
func NewAppDirectory(apps ...App) *AppDirectory {
	d := &AppDirectory{apps: map[string]App{}}
	for _, a := range apps {
		d.apps[a.ID] = a
	}
	return d
}

// App implements Apps.
func (d *AppDirectory) App(id string) (App, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	a, ok := d.apps[id]
	return a, ok
}

// Put adds or replaces an application.
func (d *AppDirectory) Put(a App) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.apps[a.ID] = a
}

// SetRetention changes how long an application's new jobs are held (0: the service default).
func (d *AppDirectory) SetRetention(id string, r time.Duration) error {
	if r < 0 {
		return fmt.Errorf("jobs: app %q: retention %v is negative", id, r)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	a, ok := d.apps[id]
	if !ok {
		return fmt.Errorf("jobs: app %q: not registered", id)
	}
	a.Retention = r
	d.apps[id] = a
	return nil
}

// apiState is the service's retention, rate limit and callback machinery.
type apiState struct {
	opt     APIOptions
	limiter *rateLimiter
	kick    chan struct{} // a callback was queued
	once    sync.Once
	stop    context.CancelFunc
	done    sync.WaitGroup
}

func (s *Service) initAPI(o APIOptions) error {
	if err := o.defaults(); err != nil {
		return err
	}
	s.api.opt = o
	s.api.limiter = newRateLimiter(o.RateLimit, o.RateWindow, s.now)
	s.api.kick = make(chan struct{}, 1)
	return nil
}

// retention is how long caller's application keeps a job held.
func (s *Service) retention(app string) time.Duration {
	if s.opt.Apps != nil && app != "" {
		if a, ok := s.opt.Apps.App(app); ok && a.Retention > 0 {
			return a.Retention
		}
	}
	return s.api.opt.Retention
}

// callbackQueued wakes the callback sender.
func (s *Service) callbackQueued() {
	select {
	case s.api.kick <- struct{}{}:
	default:
	}
}

// StartBackground runs the expiry sweeper and the callback sender until Close. Start calls
// it; a service used without a broker (tests of the HTTP API) calls it itself.
func (s *Service) StartBackground() {
	s.api.once.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		s.api.stop = cancel
		b := supervise.Backoff{Min: time.Second, Max: time.Minute}
		s.api.done.Add(2)
		go func() {
			defer s.api.done.Done()
			supervise.Loop(ctx, s.log, "jobs: expiry sweeper", b, s.sweepLoop)
		}()
		go func() {
			defer s.api.done.Done()
			supervise.Loop(ctx, s.log, "jobs: callback sender", b, s.callbackLoop)
		}()
	})
}

// stopBackground ends what StartBackground started and waits for it.
func (s *Service) stopBackground() {
	s.api.once.Do(func() {}) // a later StartBackground starts nothing
	if s.api.stop != nil {
		s.api.stop()
		s.api.done.Wait()
	}
}

// SweepExpired marks every held job past its expiry as expired (their callbacks are queued)
// and returns them.
func (s *Service) SweepExpired() ([]Job, error) {
	out, err := s.store.Expire(s.now())
	if err != nil {
		return nil, err
	}
	for _, j := range out {
		s.log.Info("jobs: expired", "job", j.ID, "user", j.User, "expires", j.Expires)
	}
	if len(out) > 0 {
		s.callbackQueued()
	}
	return out, nil
}

func (s *Service) sweepLoop(ctx context.Context) error {
	t := time.NewTicker(s.api.opt.SweepEvery)
	defer t.Stop()
	for {
		if _, err := s.SweepExpired(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
