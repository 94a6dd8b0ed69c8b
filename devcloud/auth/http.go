package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"
)

// maxSerialLen bounds the serial_number parameter; board serials are 16 hex
// digits (Raspberry Pi) or a 32-digit machine-id.
const maxSerialLen = 64

// writeOAuthError writes an RFC 6749 §5.2 error body.
func writeOAuthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// handleDeviceRequest is the RFC 8628 §3.1 endpoint: it checks the extra
// serial_number parameter and the scopes, then hands over to the op with the
// serial in the context for StoreDeviceAuthorization.
func (s *Server) handleDeviceRequest(w http.ResponseWriter, r *http.Request) {
	if s.faults.take(&s.faults.unavailable) {
		writeOAuthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "fault injected")
		return
	}
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "cannot parse form")
		return
	}
	serial := r.PostForm.Get(SerialParam)
	if len(serial) > maxSerialLen || strings.IndexFunc(serial, func(c rune) bool {
		return c > unicode.MaxASCII || !unicode.IsPrint(c) || c == ' '
	}) >= 0 {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", SerialParam+": want up to 64 printable ASCII characters")
		return
	}
	if r.PostForm.Get("client_id") == StationClientID {
		for _, sc := range strings.Fields(r.PostForm.Get("scope")) {
			if sc != ScopePrinting && sc != ScopeOfflineAccess && sc != ScopeOpenID {
				writeOAuthError(w, http.StatusBadRequest, "invalid_scope", "scope "+sc+" is not available to stations")
				return
			}
		}
	}
	s.op.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), serialKey{}, serial)))
}

// bufferedResponse captures the op's answer so the token endpoint can add
// station_id, fix expires_in, or drop it (fault injection).
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header         { return b.header }
func (b *bufferedResponse) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *bufferedResponse) WriteHeader(status int)      { b.status = status }

// handleToken is the RFC 6749 §3.2 token endpoint around the op's.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if s.faults.take(&s.faults.unavailable) {
		writeOAuthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "fault injected")
		return
	}
	// Parsed here so the op's shallow request copies share the same form.
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "cannot parse form")
		return
	}
	known := func() bool {
		ok, err := s.store.knowsDeviceCode(r.PostForm.Get("device_code"))
		if err != nil {
			s.log.Error("auth: device code", "err", err)
			return true // let the op's own lookup answer, as for a live code
		}
		return ok
	}
	if r.PostForm.Get("grant_type") == grantDeviceCode && !known() {
		// RFC 8628 §3.5 via RFC 6749 §5.2: an unknown or used code is
		// invalid_grant (the op would say access_denied).
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "unknown, expired or used device_code")
		return
	}
	if dc := r.PostForm.Get("device_code"); r.PostForm.Get("grant_type") == grantDeviceCode {
		r = r.WithContext(context.WithValue(r.Context(), deviceCodeKey{}, dc))
	}
	b := &bufferedResponse{header: http.Header{}, status: http.StatusOK}
	s.op.ServeHTTP(b, r)
	body := b.body.Bytes()
	if b.status == http.StatusBadRequest && r.PostForm.Get("grant_type") == grantDeviceCode &&
		bytes.Contains(body, []byte(`"access_denied"`)) && !known() {
		// Used up by a poll that raced this one, perhaps at another devcloud: the op only
		// knows to deny, RFC 8628 §3.5 says invalid_grant as for any used code.
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "unknown, expired or used device_code")
		return
	}
	if b.status == http.StatusOK {
		if r.PostForm.Get("grant_type") == "refresh_token" && s.faults.take(&s.faults.dropRefresh) {
			s.log.Warn("auth: fault: dropping refresh response after rotation")
			// net/http closes the connection without a response.
			panic(http.ErrAbortHandler)
		}
		if fixed, err := s.decorateTokenResponse(body); err == nil {
			body = fixed
		} else {
			s.log.Error("auth: token response", "err", err)
			writeOAuthError(w, http.StatusInternalServerError, "server_error", "token response")
			return
		}
	}
	for k, v := range b.header {
		w.Header()[k] = v
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Del("Content-Length")
	w.WriteHeader(b.status)
	w.Write(body)
}

// decorateTokenResponse adds `station_id` to a station's token response
// (x/oauth2 exposes it as Token.Extra("station_id")) and states expires_in as
// the configured lifetime: the op derives it from the wall clock, which
// disagrees with an injected one.
func (s *Server) decorateTokenResponse(body []byte) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	at, _ := m["access_token"].(string)
	if at == "" {
		return body, nil
	}
	c, err := s.parseClaims(at)
	if err != nil {
		return nil, err
	}
	if c.Kind == KindStation {
		m["station_id"] = c.StationID
	}
	m["expires_in"] = int64(s.accessTTL.Seconds())
	return json.Marshal(m)
}

func statusFor(err error) int {
	switch {
	case errors.Is(err, ErrUnknownUserCode), errors.Is(err, ErrUnknownUser):
		return http.StatusNotFound
	case errors.Is(err, ErrCodeExpired), errors.Is(err, ErrAlreadyDecided):
		return http.StatusConflict
	}
	return http.StatusBadRequest
}

// decisionRequest is the body of POST /device/approve and /device/deny.
type decisionRequest struct {
	UserCode string `json:"user_code"`
	User     string `json:"user"` // optional; must be the signed-in user
}

// decide is the scripted approval: HTTP Basic credentials of a user (RFC 7617) and a JSON body.
// A JSON content type cannot be sent by a cross-site form without a CORS preflight, so a
// browser that remembers the credentials cannot be made to approve from another site.
func (s *Server) decide(w http.ResponseWriter, r *http.Request, approve bool) {
	w.Header().Set("Content-Type", "application/json")
	fail := func(status int, err error) {
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
	}
	name, pass, ok := r.BasicAuth()
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="devcloud", charset="UTF-8"`)
		fail(http.StatusUnauthorized, fmt.Errorf("%w: send the approving user's name and password (HTTP Basic)", ErrNoSession))
		return
	}
	u, err := s.SignIn(name, pass)
	if errors.Is(err, ErrTooManyFailures) {
		fail(http.StatusTooManyRequests, err)
		return
	}
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Basic realm="devcloud", charset="UTF-8"`)
		fail(http.StatusUnauthorized, err)
		return
	}
	if mt, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); strings.TrimSpace(mt) != "application/json" {
		fail(http.StatusUnsupportedMediaType, errors.New("auth: body: want Content-Type application/json"))
		return
	}
	var req decisionRequest
	var stationID string
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	err = dec.Decode(&req)
	switch {
	case err != nil:
		err = errors.New("auth: body: " + err.Error())
	case req.UserCode == "":
		err = errors.New("auth: body: user_code: empty")
	case req.User != "" && req.User != u.ID:
		fail(http.StatusForbidden, fmt.Errorf("auth: body: user: %q, but signed in as %q", req.User, u.ID))
		return
	case approve:
		if stationID, err = s.approve(req.UserCode, u.ID); err != nil {
			err = fmt.Errorf("auth: approve: %w", err)
		}
	default:
		err = s.Deny(req.UserCode)
	}
	if err != nil {
		fail(statusFor(err), err)
		return
	}
	resp := map[string]string{"status": "denied"}
	if approve {
		resp = map[string]string{"status": "approved", "station_id": stationID}
	}
	json.NewEncoder(w).Encode(resp)
}

func (s *Server) handleApprove(w http.ResponseWriter, r *http.Request) { s.decide(w, r, true) }
func (s *Server) handleDeny(w http.ResponseWriter, r *http.Request)    { s.decide(w, r, false) }
