// Package devcloud assembles the development cloud: the OAuth 2.0 authorization server, the
// embedded MQTT broker and the job service, on real sockets. cmd/devcloud and the end-to-end
// tests both start it through Start.
package devcloud

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"labelstation/devcloud/auth"
	"labelstation/devcloud/broker"
	"labelstation/devcloud/fleet"
	"labelstation/devcloud/jobs"
	"labelstation/devcloud/records"
	"labelstation/devcloud/seed"
)

// Options configures a development cloud.
type Options struct {
	// HTTP is the open listener for the web side (OAuth, approval page, job API).
	HTTP net.Listener
	// MQTT is the open listener for the embedded broker; nil with Broker set uses an external one.
	MQTT net.Listener
	// Broker is an external broker URL (tcp://host:port) used instead of the embedded one; the
	// job service then logs in with BrokerUser/BrokerPassword.
	Broker                 string
	BrokerUser, BrokerPass string
	// ServiceClientID is the job service's MQTT client id (default "devcloud-jobs").
	ServiceClientID string
	// ShareGroup makes the job service one replica of a shared subscription group (see
	// jobs.Options.ShareGroup); give each replica its own ServiceClientID.
	ShareGroup string
	// Store keeps the jobs (jobs.Open) and, when it keeps records (every store jobs.Open
	// returns does), all the rest of the cloud's state: keys, enrolled stations and their
	// grants, the fleet, group memberships. Nil means in memory. The caller closes it.
	Store                    jobs.Store
	Seed                     *seed.Seed
	AccessTTL, RefreshTTL    time.Duration
	DeviceCodeTTL, PollEvery time.Duration
	// External, if set, lets stations enrolled with another authorization server (Keycloak,
	// Auth0, ...) into the embedded broker: their JWT access tokens are checked by that issuer's
	// key set. devcloud's own tokens keep working.
	External *broker.JWKSOptions
	// FleetAdmins are the users whose tokens (their own or an app's acting for them) may use
	// the fleet API.
	FleetAdmins []string
	// Submit sets the job API's limits (labels and bytes per job, background validation).
	Submit jobs.SubmitOptions
	// JobAPI sets retention, rate limits and callbacks of the job API.
	JobAPI jobs.APIOptions
	// BadgeLinkTTL is how long a code for linking an unknown badge lives; zero means 5 minutes.
	BadgeLinkTTL time.Duration
	Now          func() time.Time
	Logger       *slog.Logger
	// TLS, if set, serves the web side as https:// and the embedded broker as mqtts:// with
	// this server config; ClientTLS is what the job service trusts to reach that broker.
	TLS, ClientTLS *tls.Config
	// MosquittoACL, if set, keeps this Mosquitto acl_file in step with group membership (an
	// external Mosquitto cannot ask the registry): written at start and after every change.
	MosquittoACL *fleet.ACLOptions
}

// Cloud is a running development cloud.
type Cloud struct {
	Auth      *auth.Server
	Broker    *broker.Broker // nil when running against an external broker
	Jobs      *jobs.Service
	Fleet     *fleet.Registry
	Seed      *seed.Seed
	URL       string // http://host:port
	BrokerURL string // tcp://host:port
	httpSrv   *http.Server
	brokerOpt broker.Options
	now       func() time.Time
	// MessageKeyID is the kid of the key the job service signs messages with now.
	MessageKeyID string
	// Apps holds the registered applications' callback secrets and retention (app settings).
	Apps *jobs.AppDirectory

	// records keeps the cloud's state beside the jobs (state.go).
	records records.Store
	log     *slog.Logger
	acl     *mosquittoACL // nil unless Options.MosquittoACL

	closeOnce sync.Once
	closeErr  error

	mu       sync.Mutex
	groups   map[string][]string // set by SetGroups, by station id; stored
	refusals []broker.Refusal    // the latest maxRefusals
}

// maxRefusals bounds the broker refusals kept for the fleet manager: a station hammering the
// broker must not grow the cloud's memory.
const maxRefusals = 1000

func (c *Cloud) recordRefusal(r broker.Refusal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.refusals) == maxRefusals {
		c.refusals = append(c.refusals[:0], c.refusals[1:]...)
	}
	c.refusals = append(c.refusals, r)
}

// Refusals returns what the embedded broker refused stations (refused wills, takeovers,
// publishes and subscriptions), oldest first: the fleet manager's security events.
func (c *Cloud) Refusals() []broker.Refusal {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.refusals)
}

// RotateMessageKey publishes a new message-signing key, signs with it from now on and, with
// retire, takes the old one out of the JWKS.
func (c *Cloud) RotateMessageKey(retire bool) error {
	old := c.MessageKeyID
	s, err := c.newMessageKey(c.now, true)
	if err != nil {
		return err
	}
	c.Jobs.SetSealer(s)
	if retire {
		c.Auth.RetireKey(old)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux ≥ 3.17
	}
	return hex.EncodeToString(b)
}

// Start brings up every part and returns when the job service is connected to the broker.
func Start(ctx context.Context, opt Options) (*Cloud, error) {
	if opt.HTTP == nil || opt.Seed == nil {
		return nil, errors.New("devcloud: HTTP listener and Seed are required")
	}
	if opt.MQTT == nil && opt.Broker == "" {
		return nil, errors.New("devcloud: an MQTT listener or an external Broker URL is required")
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opt.Store == nil {
		opt.Store = jobs.NewMemStore()
	}
	c := &Cloud{Seed: opt.Seed, URL: "http://" + opt.HTTP.Addr().String(), records: recordsOf(opt.Store), log: log}
	if err := c.loadGroups(); err != nil {
		return nil, err
	}
	if opt.TLS != nil {
		c.URL = "https://" + opt.HTTP.Addr().String()
		opt.HTTP = tls.NewListener(opt.HTTP, opt.TLS)
		if opt.MQTT != nil {
			opt.MQTT = tls.NewListener(opt.MQTT, opt.TLS)
		}
	}

	var users []auth.User
	for i, u := range opt.Seed.Users {
		au := auth.User{ID: u.ID, Name: u.Name, PasswordHash: []byte(u.PasswordHash)}
		if u.PasswordHash == "" {
			if u.Password == "" {
				opt.Seed.Users[i].Password = randomHex(16)
			}
			h, err := auth.HashGeneratedPassword(opt.Seed.Users[i].Password)
			if err != nil {
				return nil, fmt.Errorf("devcloud: users[%d]: %w", i, err)
			}
			au.PasswordHash = h
		}
		users = append(users, au)
	}
	var apps []auth.App
	c.Apps = jobs.NewAppDirectory()
	for i, a := range opt.Seed.Apps {
		if a.Secret == "" {
			opt.Seed.Apps[i].Secret = randomHex(16)
			a = opt.Seed.Apps[i]
		}
		apps = append(apps, auth.App{ClientID: a.ClientID, Secret: a.Secret, UserID: a.User})
		keep, err := a.RetentionDuration()
		if err != nil {
			return nil, fmt.Errorf("devcloud: apps[%d].retention: %w", i, err)
		}
		c.Apps.Put(jobs.App{ID: a.ClientID, Secret: a.Secret, Retention: keep})
	}
	appStore, _ := opt.Store.(auth.AppStore) // bolt and postgres keep applications and grants
	as, err := auth.New(auth.Options{
		Issuer: c.URL, Users: users, Apps: apps, AppStore: appStore,
		AccessTTL: opt.AccessTTL, RefreshTTL: opt.RefreshTTL, DeviceCodeTTL: opt.DeviceCodeTTL, PollInterval: opt.PollEvery,
		Now: opt.Now, Logger: log.With("component", "auth"), Records: durable(opt.Store, c.records),
	})
	if err != nil {
		return nil, fmt.Errorf("devcloud: auth.New: %w", err)
	}
	c.Auth = as

	var external *broker.JWKS
	if opt.External != nil {
		if external, err = broker.NewJWKS(*opt.External); err != nil {
			return nil, fmt.Errorf("devcloud: external issuer: %w", err)
		}
	}
	svcUser, svcPass := opt.BrokerUser, opt.BrokerPass
	if opt.MQTT != nil {
		svcUser, svcPass = "devcloud", randomHex(16)
		c.brokerOpt = broker.Options{
			Listener: opt.MQTT, ServiceUser: svcUser, ServicePassword: svcPass, Logger: log.With("component", "broker"),
			VerifyClaims: func(ctx context.Context, tok string) (broker.Claims, error) {
				p, err := as.Verify(ctx, tok)
				if err != nil && external != nil {
					c, xerr := external.VerifyClaims(ctx, tok)
					if xerr == nil {
						return c, nil
					}
					return broker.Claims{}, errors.Join(err, xerr)
				}
				if err != nil {
					return broker.Claims{}, err
				}
				if p.Kind != auth.KindStation {
					return broker.Claims{}, fmt.Errorf("devcloud: token of a %s, not a station", p.Kind)
				}
				return broker.Claims{StationID: p.StationID, ID: p.TokenID, IssuedAt: p.IssuedAt, Generation: p.Generation,
					Enrollment: p.Enrollment, EnrollmentSeq: p.EnrollmentSeq}, nil
			},
			Groups:    c.GroupsOf,
			OnRefusal: c.recordRefusal,
		}
		b, err := broker.Start(c.brokerOpt)
		if err != nil {
			return nil, fmt.Errorf("devcloud: broker.Start: %w", err)
		}
		c.Broker = b
		c.BrokerURL = "tcp://" + b.Addr()
		if opt.TLS != nil {
			c.BrokerURL = "mqtts://" + b.Addr()
		}
	} else {
		c.BrokerURL = opt.Broker
	}

	sealer, err := c.newMessageKey(opt.Now, false)
	if err != nil {
		c.Close()
		return nil, err
	}
	c.now = opt.Now
	var reg *fleet.Registry
	badgeKey, err := badgeKey(c.records)
	if err != nil {
		c.Close()
		return nil, err
	}
	js, err := jobs.New(jobs.Options{
		Seed: opt.Seed, Broker: c.BrokerURL, Username: svcUser, Password: svcPass, BadgeKey: badgeKey, Sealer: sealer,
		ClientID: opt.ServiceClientID, Submit: opt.Submit, Store: opt.Store, Records: c.records, ShareGroup: opt.ShareGroup, TLS: opt.ClientTLS,
		OnFleetMessage: func(topic string, payload []byte) {
			if reg != nil {
				reg.Handle(topic, payload)
			}
		},
		Now: opt.Now, Logger: log.With("component", "jobs"), API: opt.JobAPI, Apps: appsOf{c.Apps, c.Auth},
		BadgeLinkURL: as.BadgeLinkURL(), BadgeLinkTTL: opt.BadgeLinkTTL,
		VerifyCaller: func(ctx context.Context, tok string) (jobs.Caller, error) {
			p, err := as.Verify(ctx, tok)
			if err != nil {
				return jobs.Caller{}, err
			}
			if p.Kind != "user" {
				return jobs.Caller{}, fmt.Errorf("a %s token cannot submit jobs", p.Kind)
			}
			return jobs.Caller{User: p.UserID, App: p.ClientID}, nil
		},
	})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("devcloud: jobs.New: %w", err)
	}
	c.Jobs = js
	as.EnableBadgeLinks(js.BadgeLinks())
	if reg, err = fleet.New(fleet.Options{
		Publish: js.Publish, DefaultConfig: js.DefaultFleetConfig(), Now: opt.Now, Logger: log.With("component", "fleet"),
		InitialGroup: func(station string) string {
			if g := c.GroupsOf(station); len(g) > 0 {
				if c.acl != nil {
					c.acl.joinLater(station, g[0])
				}
				return g[0]
			}
			return ""
		},
		Records: durable(opt.Store, c.records),
		OnGroupSet: func(station, group string) {
			if group == "" {
				c.SetGroups(station)
			} else {
				c.SetGroups(station, group)
			}
			c.waitACL(station, group)
		},
	}); err != nil {
		c.Close()
		return nil, fmt.Errorf("devcloud: fleet.New: %w", err)
	}
	c.Fleet = reg
	if opt.MosquittoACL != nil {
		if c.acl, err = c.startACL(*opt.MosquittoACL); err != nil {
			c.Close()
			return nil, err
		}
	}
	admins := opt.FleetAdmins
	api, err := fleet.NewAPI(reg, fleet.APIOptions{Authorize: func(r *http.Request, tok string) (string, error) {
		p, err := as.Verify(r.Context(), tok)
		if err != nil {
			return "", err
		}
		if p.Kind != "user" || p.Delegated || !slices.Contains(admins, p.UserID) {
			return "", fmt.Errorf("%s %q is not a fleet manager", p.Kind, p.UserID)
		}
		return p.UserID, nil
	}})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("devcloud: fleet API: %w", err)
	}

	mux := http.NewServeMux()
	mux.Handle("/v1/fleet/", api.Handler())
	mux.Handle("/v1/", js.Handler())
	register := as.RegistrationHandler(auth.AllowUsers(admins))
	mux.Handle(auth.RegisterPath, register)
	mux.Handle(auth.RegisterPath+"/", register)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.Handle("/", as.Handler())
	c.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go c.httpSrv.Serve(opt.HTTP)

	if err := js.Start(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("devcloud: jobs.Start: %w", err)
	}
	// The embedded broker starts without retained messages: stations and group members that
	// subscribe later find their config again only if it is published again.
	if err := reg.Republish(); err != nil {
		log.Warn("devcloud: desired config not republished", "err", err)
	}
	return c, nil
}

// ServiceLogin is the job service's broker account: full access to every station's topics.
// Tests use it to play a compromised broker.
func (c *Cloud) ServiceLogin() (user, password string) {
	return c.brokerOpt.ServiceUser, c.brokerOpt.ServicePassword
}

// GroupsOf returns the fleet groups of a station: those SetGroups gave it, or else the seed's
// groups that list its hardware serial. The broker lets a station read only these groups' topics.
func (c *Cloud) GroupsOf(station string) []string {
	c.mu.Lock()
	g, set := c.groups[station]
	c.mu.Unlock()
	if set {
		return g
	}
	serial, ok := c.Auth.SerialOf(station)
	if !ok || serial == "" {
		return nil
	}
	var out []string
	for _, grp := range c.Seed.Groups {
		if slices.Contains(grp.Serials, serial) {
			out = append(out, grp.Name)
		}
	}
	return out
}

// SetGroups replaces the fleet groups of a station (none: no group). It takes effect at the
// station's next subscription and at the next message delivered to a group it left.
func (c *Cloud) SetGroups(station string, groups ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.groups == nil {
		c.groups = map[string][]string{}
	}
	c.groups[station] = slices.Clone(groups)
	if err := records.PutJSON(c.records, kindGroups, station, c.groups[station]); err != nil {
		// The broker follows the membership in memory; only a restart before the next change
		// would forget it.
		c.log.Error("devcloud: group membership not stored", "station", station, "err", err)
	}
}

// StopBroker stops the embedded broker, as an outage would; StartBroker brings it back on the
// same address. Stations and the job service reconnect by themselves.
func (c *Cloud) StopBroker() error {
	if c.Broker == nil {
		return errors.New("devcloud: no embedded broker running")
	}
	err := c.Broker.Close()
	c.Broker = nil
	return err
}

// StartBroker restarts the embedded broker after StopBroker. Sessions and retained messages
// start empty, as after a broker restart without persistence.
func (c *Cloud) StartBroker() error {
	if c.Broker != nil {
		return errors.New("devcloud: broker already running")
	}
	ln, err := net.Listen("tcp", c.brokerOpt.Listener.Addr().String())
	if err != nil {
		return fmt.Errorf("devcloud: restart broker: %w", err)
	}
	o := c.brokerOpt
	o.Listener = ln
	b, err := broker.Start(o)
	if err != nil {
		ln.Close()
		return fmt.Errorf("devcloud: restart broker: %w", err)
	}
	c.Broker = b
	return nil
}

// Close stops every part. Closing again does nothing: a test that restarts the cloud closes
// it itself and again at its end.
func (c *Cloud) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.close() })
	return c.closeErr
}

func (c *Cloud) close() error {
	if c.acl != nil {
		c.acl.Close()
	}
	if c.Jobs != nil {
		c.Jobs.Close()
	}
	var errs []error
	if c.httpSrv != nil {
		errs = append(errs, c.httpSrv.Close())
	}
	if c.Broker != nil {
		errs = append(errs, c.Broker.Close())
	}
	return errors.Join(errs...)
}

// appsOf finds an application for the job service: a seeded one (its settings may change at
// run time), else one registered over the API. A registered application's secret is kept only as
// its hex SHA-256, so its callbacks are signed with that hash, which the application can compute.
type appsOf struct {
	seeded     *jobs.AppDirectory
	registered *auth.Server
}

var _ jobs.Apps = appsOf{}

func (a appsOf) App(id string) (jobs.App, bool) {
	if app, ok := a.seeded.App(id); ok {
		return app, true
	}
	r, err := a.registered.RegisteredApp(id)
	if err != nil {
		return jobs.App{}, false
	}
	return jobs.App{ID: r.ClientID, Secret: r.SecretHash}, true
}
