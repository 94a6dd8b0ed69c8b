package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"html/template"
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
	if r.PostForm.Get("grant_type") == grantDeviceCode && !s.store.knowsDeviceCode(r.PostForm.Get("device_code")) {
		// RFC 8628 §3.5 via RFC 6749 §5.2: an unknown or used code is
		// invalid_grant (the op would say access_denied).
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "unknown, expired or used device_code")
		return
	}
	b := &bufferedResponse{header: http.Header{}, status: http.StatusOK}
	s.op.ServeHTTP(b, r)
	body := b.body.Bytes()
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

var pageTmpl = template.Must(template.New("device").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Approve a label station</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:sans-serif;max-width:30em;margin:2em auto}code{font-size:2em}</style></head>
<body><h1>Approve a label station</h1>
{{if .Message}}<p><strong>{{.Message}}</strong></p>{{end}}
{{if .Pending}}
<p>Code shown on the station: <code>{{.UserCode}}</code></p>
<p>Station serial number: <b>{{if .Serial}}{{.Serial}}{{else}}(not sent){{end}}</b></p>
<form method="post" action="/device">
<input type="hidden" name="user_code" value="{{.UserCode}}">
<label>Sign in as <select name="user">{{range .Users}}<option value="{{.ID}}">{{.Name}} ({{.ID}})</option>{{end}}</select></label>
<p><button name="action" value="approve">Approve</button> <button name="action" value="deny">Deny</button></p>
</form>
{{else}}
<form method="get" action="/device"><label>Code shown on the station <input name="user_code" autofocus></label> <button>Continue</button></form>
{{end}}
</body></html>`))

type pageData struct {
	Message  string
	Pending  bool
	UserCode string
	Serial   string
	Users    []User
}

// handleDevicePage is the RFC 8628 §3.3 user interaction: GET shows the code
// and the station's serial, POST approves or denies.
func (s *Server) handleDevicePage(w http.ResponseWriter, r *http.Request) {
	d := pageData{Users: s.userList}
	switch r.Method {
	case http.MethodGet:
		d.UserCode = r.URL.Query().Get("user_code")
		if d.UserCode != "" {
			s.store.mu.Lock()
			da, err := s.pendingLocked(d.UserCode)
			if err == nil {
				d.Pending, d.Serial = true, da.serial
			} else {
				d.Message = err.Error()
			}
			s.store.mu.Unlock()
		}
	case http.MethodPost:
		code, user := r.PostFormValue("user_code"), r.PostFormValue("user")
		var err error
		switch r.PostFormValue("action") {
		case "approve":
			err = s.Approve(code, user)
			d.Message = "Approved. The station will finish enrolling within a few seconds."
		case "deny":
			err = s.Deny(code)
			d.Message = "Denied. The station will show a new code."
		default:
			err = errors.New("auth: action: want approve or deny")
		}
		if err != nil {
			w.WriteHeader(statusFor(err))
			d.Message = err.Error()
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	pageTmpl.Execute(w, d)
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
	User     string `json:"user"`
}

func (s *Server) decide(w http.ResponseWriter, r *http.Request, approve bool) {
	var req decisionRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	err := dec.Decode(&req)
	switch {
	case err != nil:
		err = errors.New("auth: body: " + err.Error())
	case req.UserCode == "":
		err = errors.New("auth: body: user_code: empty")
	case approve:
		err = s.Approve(req.UserCode, req.User)
	default:
		err = s.Deny(req.UserCode)
	}
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(statusFor(err))
		json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	resp := map[string]string{"status": "denied"}
	if approve {
		s.store.mu.Lock()
		dc := s.store.userCodes[normUserCode(req.UserCode)]
		resp = map[string]string{"status": "approved", "station_id": s.store.devices[dc].stationID}
		s.store.mu.Unlock()
	}
	json.NewEncoder(w).Encode(resp)
}

func (s *Server) handleApprove(w http.ResponseWriter, r *http.Request) { s.decide(w, r, true) }
func (s *Server) handleDeny(w http.ResponseWriter, r *http.Request)    { s.decide(w, r, false) }
