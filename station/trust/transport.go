package trust

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// cleartext are the URL schemes that carry tokens and jobs unencrypted.
var cleartext = map[string]bool{"http": true, "mqtt": true, "tcp": true, "ws": true}

// Loopback reports whether host (a URL host, with or without port) is this machine: "localhost"
// or a loopback address. Other names are not resolved: what a name resolves to is up to whoever
// controls DNS, which is exactly what cleartext cannot be trusted with.
func Loopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ErrCleartext is returned by CheckTransport for a cleartext URL to another machine.
var ErrCleartext = errors.New("cleartext to a non-loopback host; use https:// or mqtts://, or set cloud.allow_insecure")

// CheckTransport refuses a cleartext URL (http, mqtt, tcp) to anything but loopback unless
// allowInsecure is set.
func CheckTransport(raw string, allowInsecure bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if cleartext[u.Scheme] && !allowInsecure && !Loopback(u.Host) {
		return fmt.Errorf("%s: %w", raw, ErrCleartext)
	}
	return nil
}

// TLSConfig trusts the system's roots and, if caFile is set, the private CA in it (PEM). The same
// config serves HTTPS (issuer, keys) and MQTT over TLS.
func TLSConfig(caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("trust: cloud.ca_file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("trust: cloud.ca_file %s: no PEM certificate in it", caFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// HTTPClient is an HTTP client with tlsCfg and a timeout (a stalled server must not hang
// enrollment or a key fetch).
func HTTPClient(tlsCfg *tls.Config, timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	return &http.Client{Timeout: timeout, Transport: tr}
}
