// Command devcloud is the cloud side for development, demos and tests: an RFC 8628
// authorization server, an embedded MQTT broker and the Submit Print Job API, on real sockets.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"labelstation/devcloud"
	"labelstation/devcloud/broker"
	"labelstation/devcloud/fleet"
	"labelstation/devcloud/jobs"
	"labelstation/devcloud/seed"
)

type flags struct {
	HTTP, MQTT, Broker, BrokerUser, BrokerPass, Seed string
	Store, ShareGroup, ClientID                      string
	AccessTTL, RefreshTTL, CodeTTL, Poll             time.Duration
	Verbose                                          bool
	// A second issuer whose stations the embedded broker lets in.
	ExternalIssuer, ExternalKeys, Audience, StationClaim string
	// Users who may use the fleet API, comma-separated.
	FleetAdmins string
	Submit      jobs.SubmitOptions
	JobAPI      jobs.APIOptions
	// The Mosquitto ACL file devcloud keeps, its template and how Mosquitto reloads it.
	MosquittoACL, MosquittoACLTemplate, MosquittoPID, MosquittoReload string
}

func main() {
	var f flags
	flag.StringVar(&f.HTTP, "http", "127.0.0.1:8780", "listen address of the web side (OAuth, approval page, job API)")
	flag.StringVar(&f.MQTT, "mqtt", "127.0.0.1:18830", "listen address of the embedded MQTT broker (not 1883, so a local Mosquitto may keep it)")
	flag.StringVar(&f.Broker, "broker", "", "use this external broker (mqtt://host:port) instead of the embedded one")
	flag.StringVar(&f.BrokerUser, "broker-user", "", "username of the job service at the external broker")
	flag.StringVar(&f.BrokerPass, "broker-pass", "", "password of the job service at the external broker (or $DEVCLOUD_BROKER_PASS)")
	flag.StringVar(&f.Seed, "seed", "examples/devcloud-seed.json", "seed file: users, badges, API clients, layouts")
	flag.StringVar(&f.Store, "store", "memory", "where devcloud keeps its state (jobs, enrolled stations and their grants, keys, fleet, groups): memory, bolt:PATH (one file, survives restarts) or postgres://user@host:port/db?pool_max_conns=N (fleets, several devclouds; docs/deploy.md)")
	flag.StringVar(&f.ShareGroup, "share-group", "", "with --broker: take stations' requests as one replica of this shared subscription group (docs/deploy.md)")
	flag.StringVar(&f.ClientID, "client-id", "", "MQTT client id of the job service (default devcloud-jobs); each replica needs its own")
	flag.DurationVar(&f.AccessTTL, "access-ttl", time.Hour, "access token lifetime")
	flag.DurationVar(&f.RefreshTTL, "refresh-ttl", 30*24*time.Hour, "refresh token lifetime")
	flag.DurationVar(&f.CodeTTL, "code-ttl", 10*time.Minute, "device code lifetime (RFC 8628 expires_in)")
	flag.DurationVar(&f.Poll, "poll", 5*time.Second, "device flow polling interval (RFC 8628 interval)")
	flag.StringVar(&f.ExternalIssuer, "external-issuer", "", "also let stations enrolled with this OAuth issuer into the embedded broker, by its JWT access tokens (docs/broker-auth.md)")
	flag.StringVar(&f.ExternalKeys, "external-keys", "", "with --external-issuer: its JWK Set URL (default: jwks_uri from its metadata)")
	flag.StringVar(&f.Audience, "audience", "", "with --external-issuer: the aud value its station tokens must carry")
	flag.StringVar(&f.StationClaim, "station-claim", "sub", "with --external-issuer: the token claim naming the station (its MQTT username)")
	flag.BoolVar(&f.Verbose, "v", false, "log debug detail")
	flag.StringVar(&f.FleetAdmins, "fleet-admins", "alice", "users (comma-separated) whose tokens may use the fleet API (docs/fleet.md)")
	flag.IntVar(&f.Submit.MaxLabels, "max-labels", jobs.DefaultMaxLabels, "labels per job, copies included (more is 422)")
	flag.Int64Var(&f.Submit.MaxBytes, "max-job-bytes", jobs.MaxSubmitBytes, "bytes per submission (more is 413)")
	flag.Int64Var(&f.Submit.SyncBytes, "sync-bytes", jobs.DefaultSyncBytes, "larger data is accepted as 202 and validated in the background")
	flag.DurationVar(&f.JobAPI.Retention, "job-retention", jobs.DefaultRetention, "how long a held job waits for its owner's badge before it expires (an app's own retention overrides it)")
	flag.IntVar(&f.JobAPI.RateLimit, "rate-limit", jobs.DefaultRateLimit, "job API requests per --rate-window and access token (more is 429)")
	flag.DurationVar(&f.JobAPI.RateWindow, "rate-window", jobs.DefaultRateWindow, "the window of --rate-limit")
	flag.StringVar(&f.Submit.FontDir, "font-dir", "", "fonts the stations have beyond the built-in ones (.ttf/.otf/.ttc), for the submission check")
	flag.StringVar(&f.MosquittoACL, "mosquitto-acl", "", "with --broker (Mosquitto): keep this acl_file in step with group membership; devcloud owns it (docs/deploy-broker.md)")
	flag.StringVar(&f.MosquittoACLTemplate, "mosquitto-acl-template", "", "with --mosquitto-acl: the static rules to write before the group sections (default: the built-in deploy/mosquitto/lrs.acl)")
	flag.StringVar(&f.MosquittoPID, "mosquitto-pid", "", "with --mosquitto-acl: Mosquitto's pid_file; devcloud sends SIGHUP to that process after each write")
	flag.StringVar(&f.MosquittoReload, "mosquitto-reload", "", "with --mosquitto-acl: run this shell command after each write instead (e.g. 'systemctl reload mosquitto')")
	flag.Parse()
	if err := run(f, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "devcloud:", err)
		os.Exit(1)
	}
}

// listen opens addr and names the flag to change when the port is taken.
func listen(addr, flagName string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("%s is already in use; choose another address with --%s", addr, flagName)
		}
		return nil, fmt.Errorf("--%s %s: %w", flagName, addr, err)
	}
	return ln, nil
}

func run(f flags, out io.Writer) error {
	level := slog.LevelInfo
	if f.Verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	// The OAuth library logs through the default logger, at INFO for every expected
	// authorization_pending poll (RFC 8628 §3.5); keep its warnings unless -v.
	libLevel := slog.LevelWarn
	if f.Verbose {
		libLevel = slog.LevelDebug
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: libLevel})))
	sd, err := seed.Load(f.Seed)
	if err != nil {
		return fmt.Errorf("--seed: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	openCtx, cancelOpen := context.WithTimeout(ctx, 30*time.Second)
	store, err := jobs.Open(openCtx, f.Store)
	cancelOpen()
	if err != nil {
		return fmt.Errorf("--store: %w", err)
	}
	defer store.Close()
	httpLn, err := listen(f.HTTP, "http")
	if err != nil {
		return err
	}
	opt := devcloud.Options{
		HTTP: httpLn, Seed: sd, Logger: log, Submit: f.Submit, JobAPI: f.JobAPI, Store: store, ShareGroup: f.ShareGroup, ServiceClientID: f.ClientID,
		AccessTTL: f.AccessTTL, RefreshTTL: f.RefreshTTL, DeviceCodeTTL: f.CodeTTL, PollEvery: f.Poll,
		FleetAdmins: strings.Split(f.FleetAdmins, ","),
	}
	if f.ExternalIssuer != "" {
		if f.Audience == "" {
			log.Warn("devcloud: --external-issuer without --audience: any access token of that issuer opens the broker")
		}
		opt.External = &broker.JWKSOptions{Issuer: f.ExternalIssuer, KeysURL: f.ExternalKeys, Audience: f.Audience, StationClaim: f.StationClaim}
	}
	if f.Broker != "" {
		opt.Broker, opt.BrokerUser, opt.BrokerPass = f.Broker, f.BrokerUser, f.BrokerPass
		if opt.BrokerPass == "" {
			opt.BrokerPass = os.Getenv("DEVCLOUD_BROKER_PASS")
		}
	} else {
		if opt.MQTT, err = listen(f.MQTT, "mqtt"); err != nil {
			httpLn.Close()
			return err
		}
	}
	if opt.MosquittoACL, err = mosquittoACL(f, log); err != nil {
		httpLn.Close()
		if opt.MQTT != nil {
			opt.MQTT.Close()
		}
		return err
	}
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := devcloud.Start(startCtx, opt)
	if err != nil {
		return err
	}
	defer c.Close()
	printWelcome(out, c)
	<-ctx.Done()
	return nil
}

// mosquittoACL reads the --mosquitto-* flags; nil without --mosquitto-acl.
func mosquittoACL(f flags, log *slog.Logger) (*fleet.ACLOptions, error) {
	if f.MosquittoACL == "" {
		if f.MosquittoACLTemplate != "" || f.MosquittoPID != "" || f.MosquittoReload != "" {
			return nil, errors.New("--mosquitto-acl-template, --mosquitto-pid and --mosquitto-reload need --mosquitto-acl")
		}
		return nil, nil
	}
	o := &fleet.ACLOptions{Path: f.MosquittoACL, Logger: log.With("component", "mosquitto-acl")}
	if f.MosquittoACLTemplate != "" {
		b, err := os.ReadFile(f.MosquittoACLTemplate)
		if err != nil {
			return nil, fmt.Errorf("--mosquitto-acl-template: %w", err)
		}
		o.Template = b
	}
	switch {
	case f.MosquittoPID != "" && f.MosquittoReload != "":
		return nil, errors.New("--mosquitto-pid and --mosquitto-reload: give one of them")
	case f.MosquittoPID != "":
		o.Reload = fleet.ReloadPID(f.MosquittoPID)
	case f.MosquittoReload != "":
		o.Reload = fleet.ReloadCommand(f.MosquittoReload)
	default:
		log.Warn("devcloud: --mosquitto-acl without --mosquitto-pid or --mosquitto-reload: Mosquitto reads the file only when reloaded otherwise")
	}
	return o, nil
}

func printWelcome(out io.Writer, c *devcloud.Cloud) {
	fmt.Fprintf(out, "devcloud is up.\n  web:    %s   (pairing page: %s/device, badge page: %s)\n  broker: %s\n", c.URL, c.URL, c.Auth.BadgeLinkURL(), c.BrokerURL)
	fmt.Fprintln(out, "\nSign in to the pairing page as:")
	for _, u := range c.Seed.Users {
		if u.Password != "" {
			fmt.Fprintf(out, "  %s  password %s   (bin/stationctl approve --cloud %s --user %s --password %s CODE)\n", u.ID, u.Password, c.URL, u.ID, u.Password)
		} else {
			fmt.Fprintf(out, "  %s  (password from the seed's password_hash)\n", u.ID)
		}
	}
	for _, a := range c.Seed.Apps {
		fmt.Fprintf(out, "\nSubmit a job as %s (app %s):\n", a.User, a.ClientID)
		fmt.Fprintf(out, "  TOKEN=$(bin/stationctl token --cloud %s --client %s --secret %s)\n", c.URL, a.ClientID, a.Secret)
		fmt.Fprintf(out, "  curl -s -H \"Authorization: Bearer $TOKEN\" -F title='Shipping labels' -F format=shipping -F data=@examples/data/shipping.csv %s/v1/jobs\n", c.URL)
	}
	fmt.Fprintln(out)
	for _, u := range c.Seed.Users {
		for _, b := range u.Badges {
			fmt.Fprintf(out, "Badge of %s: %s   (bin/stationctl tap %s)\n", u.Name, b, b)
		}
	}
}
