package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"labelstation/drivers/printer"
)

func image2(w, h int) image.Point { return image.Pt(w, h) }

// endpoints are the authorization server's endpoints from its metadata (RFC 8414 §3;
// RFC 8628 §4 adds device_authorization_endpoint).
type endpoints struct {
	DeviceAuthorization string `json:"device_authorization_endpoint"`
	Token               string `json:"token_endpoint"`
	Userinfo            string `json:"userinfo_endpoint,omitempty"`
	Introspection       string `json:"introspection_endpoint,omitempty"`
}

// discover reads the issuer's metadata, retrying until ctx ends, and keeps the last answer in the
// state directory so an enrolled station boots while the issuer is unreachable.
func discover(ctx context.Context, hc *http.Client, issuer, state string, log *slog.Logger) (endpoints, error) {
	cache := filepath.Join(state, "oauth-endpoints.json")
	fetch := func() (endpoints, error) {
		var ep endpoints
		for _, p := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(issuer, "/")+p, nil)
			if err != nil {
				return ep, err
			}
			resp, err := hc.Do(req)
			if err != nil {
				return ep, err
			}
			err = json.NewDecoder(resp.Body).Decode(&ep)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && err == nil && ep.DeviceAuthorization != "" && ep.Token != "" {
				return ep, nil
			}
		}
		return ep, fmt.Errorf("%s publishes no device_authorization_endpoint and token_endpoint", issuer)
	}
	delay := 500 * time.Millisecond
	for {
		ep, err := fetch()
		if err == nil {
			if b, err := json.Marshal(ep); err == nil {
				os.WriteFile(cache, b, 0o600)
			}
			return ep, nil
		}
		if b, cerr := os.ReadFile(cache); cerr == nil && json.Unmarshal(b, &ep) == nil && ep.Token != "" {
			log.Warn("stationd: issuer unreachable; using its endpoints from the last boot", "issuer", issuer, "err", err)
			return ep, nil
		}
		log.Warn("stationd: issuer metadata not available yet", "issuer", issuer, "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return ep, fmt.Errorf("discover %s: %w", issuer, errors.Join(err, ctx.Err()))
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
	}
}

// newRedialPrinter is the station's printer: one connection to printer.url, replaced whenever
// it fails (the first tap after a printer reboot finds the dead connection and redials within
// the same status query), with capped backoff while the printer is away.
func newRedialPrinter(url, lang string) *printer.Redialer { return printer.NewRedialer(url, lang) }
