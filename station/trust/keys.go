// Package trust is what a station believes about the cloud: the cloud's message-signing keys
// (a JWKS fetched from the issuer and kept on disk), the replay window of sealed messages, and
// the transport rules (TLS, a private CA, no cleartext beyond loopback). station/cloud opens
// every cloud → station message through a Verifier before it decodes it.
package trust

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"labelstation/protocol"
	"labelstation/provisioning"
)

// KeysFile is the last good key set in the state directory.
const KeysFile = "cloud-keys.json"

// ErrKeysUnavailable means no key set could be had: never fetched and none on disk. The message
// is not refused for it; it stays with the broker until the keys can be fetched.
var ErrKeysUnavailable = errors.New("trust: the cloud's keys are not available")

// KeySource finds the public key a sealed message names.
type KeySource interface {
	Key(ctx context.Context, kid string) (*jose.JSONWebKey, error)
}

var _ KeySource = (*Keys)(nil)
var _ KeySource = StaticKeys(nil)

// StaticKeys is a fixed key set (tests, and stations provisioned with a pinned key).
type StaticKeys []jose.JSONWebKey

// Key implements KeySource.
func (s StaticKeys) Key(_ context.Context, kid string) (*jose.JSONWebKey, error) {
	for i := range s {
		if s[i].KeyID == kid {
			return &s[i], nil
		}
	}
	return nil, fmt.Errorf("%w: %q", protocol.ErrUnknownKey, kid)
}

// noKeysRefetch is the fetch interval while the station has no key set at all.
const noKeysRefetch = 5 * time.Second

// KeysOptions configures Keys.
type KeysOptions struct {
	URL  string       // the JWKS: the issuer metadata's jwks_uri, or cloud.keys_url
	HTTP *http.Client // with the private CA, if any; must have a Timeout
	File string       // last good set, e.g. state/cloud-keys.json
	// MinRefetch rate-limits fetches caused by unknown key ids, so a flood of messages signed
	// by a stranger cannot make the station hammer the issuer. Zero means 1 minute.
	MinRefetch time.Duration
	Now        func() time.Time
	Logger     *slog.Logger
}

// Keys is the cloud's key set: fetched from the JWKS URL, kept on disk so a station verifies
// offline and across restarts, fetched again when a message names a key it does not know (the
// cloud rotated its key).
type Keys struct {
	opt KeysOptions
	log *slog.Logger

	mu        sync.Mutex
	set       []jose.JSONWebKey
	have      bool      // set came from a fetch or the file
	lastFetch time.Time // last attempt, successful or not
	fetches   int
}

// OpenKeys loads the last good set from opt.File, if any. It does not fetch.
func OpenKeys(opt KeysOptions) (*Keys, error) {
	if opt.URL == "" || opt.File == "" {
		return nil, errors.New("trust: keys: URL and File are required")
	}
	if opt.HTTP == nil {
		opt.HTTP = &http.Client{Timeout: 15 * time.Second}
	}
	if opt.MinRefetch == 0 {
		opt.MinRefetch = time.Minute
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	k := &Keys{opt: opt, log: opt.Logger}
	if k.log == nil {
		k.log = slog.New(slog.DiscardHandler)
	}
	b, err := os.ReadFile(opt.File)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("trust: keys: %w", err)
	default:
		set, err := parseSet(b)
		if err != nil {
			// A damaged file is not fatal: the next fetch replaces it.
			k.log.Warn("trust: stored key set unreadable; fetching a new one", "file", opt.File, "err", err)
		} else {
			k.set, k.have = set, true
		}
	}
	return k, nil
}

// parseSet keeps the public signing keys of a JWKS that a station accepts for messages.
func parseSet(b []byte) ([]jose.JSONWebKey, error) {
	var jwks jose.JSONWebKeySet
	if err := json.Unmarshal(b, &jwks); err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	var out []jose.JSONWebKey
	for _, k := range jwks.Keys {
		if k.KeyID == "" || !k.Valid() || !k.IsPublic() || (k.Use != "" && k.Use != "sig") {
			continue
		}
		if k.Algorithm != "" && !slices.Contains(protocol.SealAlgorithms, jose.SignatureAlgorithm(k.Algorithm)) {
			continue
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, errors.New("JWKS: no usable signing key (ES256/EdDSA, use sig, with kid)")
	}
	return out, nil
}

// Refresh fetches the key set now and, if it is usable, keeps it (in memory and on disk).
func (k *Keys) Refresh(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.refreshLocked(ctx)
}

func (k *Keys) refreshLocked(ctx context.Context) error {
	k.lastFetch = k.opt.Now()
	k.fetches++
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.opt.URL, nil)
	if err != nil {
		return fmt.Errorf("trust: keys: %w", err)
	}
	resp, err := k.opt.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("trust: keys: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("trust: keys: %s: %w", k.opt.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("trust: keys: %s: %s", k.opt.URL, resp.Status)
	}
	set, err := parseSet(b)
	if err != nil {
		return fmt.Errorf("trust: keys: %s: %w", k.opt.URL, err)
	}
	out, _ := json.Marshal(jose.JSONWebKeySet{Keys: set})
	if err := provisioning.WriteFileAtomic(k.opt.File, out, 0o600); err != nil {
		// Still use the new set; the old file stays the fallback for the next boot.
		k.log.Warn("trust: key set not saved", "file", k.opt.File, "err", err)
	}
	ids := make([]string, len(set))
	for i := range set {
		ids[i] = set[i].KeyID
	}
	k.log.Info("trust: cloud keys fetched", "url", k.opt.URL, "kids", ids)
	k.set, k.have = set, true
	return nil
}

// Key implements KeySource. An unknown kid triggers a fetch (at most one per MinRefetch), so a
// key the cloud rotated in is picked up on its first message.
func (k *Keys) Key(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if key := k.findLocked(kid); key != nil {
		return key, nil
	}
	var ferr error
	// Without any set the station can verify nothing, so it asks more often.
	every := k.opt.MinRefetch
	if !k.have {
		every = min(every, noKeysRefetch)
	}
	if k.lastFetch.IsZero() || k.opt.Now().Sub(k.lastFetch) >= every || k.opt.Now().Before(k.lastFetch) {
		if ferr = k.refreshLocked(ctx); ferr == nil {
			if key := k.findLocked(kid); key != nil {
				return key, nil
			}
		}
	}
	if !k.have {
		return nil, fmt.Errorf("%w: %v", ErrKeysUnavailable, ferr)
	}
	return nil, fmt.Errorf("%w: %q", protocol.ErrUnknownKey, kid)
}

func (k *Keys) findLocked(kid string) *jose.JSONWebKey {
	for i := range k.set {
		if k.set[i].KeyID == kid {
			key := k.set[i]
			return &key
		}
	}
	return nil
}

// Fetches counts fetch attempts (for tests and the status page).
func (k *Keys) Fetches() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.fetches
}
