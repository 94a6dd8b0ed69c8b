// Package statusapi is the station's local health report: stationd serves it over a unix
// socket and `stationctl status` reads it, so an admin on a support call sees state,
// enrollment, broker, printer, journal, versions and the last errors with one command.
package statusapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"labelstation/internal/buildinfo"
)

// DefaultSocket is where the packaged service serves the report (systemd RuntimeDirectory=).
const DefaultSocket = "/run/stationd/status.sock"

// Path is the URL path of the report on the socket.
const Path = "/v1/status"

// Status is the report.
type Status struct {
	State      string         `json:"state"`
	Message    string         `json:"message,omitempty"`
	Station    Station        `json:"station"`
	Broker     Broker         `json:"broker"`
	Printer    Printer        `json:"printer"`
	Journal    Journal        `json:"journal"`
	Version    buildinfo.Info `json:"version"`
	Config     Config         `json:"config"`
	Started    time.Time      `json:"started"`
	LastErrors []LogEntry     `json:"last_errors"`
}

// Station is the enrollment.
type Station struct {
	ID          string `json:"id,omitempty"`
	Name        string `json:"name,omitempty"`
	Serial      string `json:"serial"`
	Enrolled    bool   `json:"enrolled"`
	PairingCode string `json:"pairing_code,omitempty"`
	PairingURI  string `json:"pairing_uri,omitempty"`
}

// Broker is the cloud link.
type Broker struct {
	URL    string `json:"url"`
	Online bool   `json:"online"`
}

// Printer is the printer's last answer.
type Printer struct {
	URL    string   `json:"url"`
	Lang   string   `json:"lang"`
	OK     bool     `json:"ok"`
	Faults []string `json:"faults,omitempty"`
	Error  string   `json:"error,omitempty"`
}

// Journal is the print journal on disk.
type Journal struct {
	Path       string `json:"path"`
	Bytes      int64  `json:"bytes"`
	Pending    int    `json:"pending"`
	Unreported int    `json:"unreported"`
	Error      string `json:"error,omitempty"`
}

// Config names the files in use.
type Config struct {
	File     string `json:"file"`
	StateDir string `json:"state_dir"`
	LogLevel string `json:"log_level"`
}

// LogEntry is one kept warning or error.
type LogEntry struct {
	Time  time.Time         `json:"time"`
	Level string            `json:"level"`
	Msg   string            `json:"msg"`
	Attrs map[string]string `json:"attrs,omitempty"`
}

// Get reads the report from the socket at path.
func Get(ctx context.Context, path string) (Status, error) {
	var st Status
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://stationd"+Path, nil)
	if err != nil {
		return st, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return st, fmt.Errorf("statusapi: is stationd running? %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return st, fmt.Errorf("statusapi: %s: %s", resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("statusapi: %w", err)
	}
	return st, nil
}
