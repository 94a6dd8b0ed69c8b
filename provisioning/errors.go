package provisioning

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"

	"golang.org/x/oauth2"
)

// class is what the station does about a failed OAuth request: every RFC 6749
// §5.2 and RFC 8628 §3.5 error falls into one of these (docs/provisioning.md
// has the table).
type class int

const (
	// classTransient: the network or the server is failing for now; retry
	// with capped, jittered backoff.
	classTransient class = iota
	// classDeadGrant: the refresh token will never work again; forget it and
	// enroll anew.
	classDeadGrant
	// classConfig: the server refuses the station's client settings; only an
	// admin can fix it. Show it and retry slowly so a fix is picked up.
	classConfig
)

// RFC 6749 §5.2 error codes beyond those the device flow uses.
const (
	errInvalidRequest     = "invalid_request"
	errInvalidClient      = "invalid_client"
	errUnauthorizedClient = "unauthorized_client"
	errUnsupportedGrant   = "unsupported_grant_type"
	errInvalidScope       = "invalid_scope"
)

// classify sorts a failed request. refresh is true for a refresh_token grant,
// where invalid_request and unauthorized_client mean a dead grant (the caller
// has already retried once with fresh metadata); elsewhere they are
// configuration errors.
func classify(err error, refresh bool) class {
	if transient(err) {
		return classTransient
	}
	switch oauthCode(err) {
	case errPending, errSlowDown:
		return classTransient
	case errInvalidGrant:
		return classDeadGrant
	case errInvalidRequest, errUnauthorizedClient:
		if refresh {
			return classDeadGrant
		}
		return classConfig
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		// invalid_client, invalid_scope, unsupported_grant_type, a code the
		// client does not know, or a 4xx with no OAuth body (wrong URL):
		// retrying as is cannot help.
		return classConfig
	}
	var se *SetupError
	if errors.As(err, &se) {
		return classConfig
	}
	// A malformed success body: the server is misbehaving, perhaps mid-deploy.
	return classTransient
}

// transient reports whether err is worth retrying as is: the network
// (refused, reset, timeout), or a server that is overloaded or failing.
func transient(err error) bool {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		s := re.Response.StatusCode
		return s >= 500 || s == http.StatusTooManyRequests || re.ErrorCode == "temporarily_unavailable"
	}
	var ne net.Error
	var ue *url.Error
	return errors.As(err, &ne) || errors.As(err, &ue) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// SetupError is a problem only the admin of the authorization server (or of
// the station's config) can fix: the server refused the client or its scopes,
// or its tokens do not name the station. The station shows Code.
type SetupError struct {
	Step string // "device authorization", "token", "refresh", "identity"
	Code string // the OAuth error code, or what is missing ("no sub claim")
	Desc string // the server's error_description, if any
	Err  error  // the underlying error, if any
}

func (e *SetupError) Error() string {
	s := fmt.Sprintf("provisioning: setup problem at %s: %s", e.Step, e.Code)
	if e.Desc != "" {
		s += " (" + e.Desc + ")"
	}
	return s
}

func (e *SetupError) Unwrap() error { return e.Err }

// setupError turns a configuration-class failure of step into a SetupError.
func setupError(step string, err error) *SetupError {
	var se *SetupError
	if errors.As(err, &se) {
		return se
	}
	se = &SetupError{Step: step, Err: err}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		se.Code, se.Desc = re.ErrorCode, re.ErrorDescription
		if se.Code == "" {
			se.Code = fmt.Sprintf("HTTP %d", re.Response.StatusCode)
		}
	} else {
		se.Code = err.Error()
	}
	return se
}
