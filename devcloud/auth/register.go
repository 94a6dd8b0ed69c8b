package auth

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// RegisterPath is where operators register applications: POST an RFC 7591 style client
// metadata document, get the client id and secret; GET lists the applications; GET and DELETE
// of RegisterPath/{client_id} read and remove one (RFC 7592).
const RegisterPath = "/oauth/register"

// registrationResponse is the RFC 7591 §3.2.1 answer, with devcloud's description field.
type registrationResponse struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret,omitempty"`
	ClientIDIssuedAt        int64    `json:"client_id_issued_at"`
	ClientSecretExpiresAt   int64    `json:"client_secret_expires_at"`
	Name                    string   `json:"client_name"`
	Description             string   `json:"description,omitempty"`
	IconURL                 string   `json:"logo_uri,omitempty"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
}

func registration(a RegisteredApp, secret string) registrationResponse {
	return registrationResponse{
		ClientID: a.ClientID, ClientSecret: secret, ClientIDIssuedAt: a.Created.Unix(),
		Name: a.Name, Description: a.Description, IconURL: a.IconURL, RedirectURIs: a.RedirectURIs,
		GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
		TokenEndpointAuthMethod: "client_secret_post",
	}
}

// RegistrationHandler serves RegisterPath for the callers allow admits: a bearer access token
// (RFC 6750) whose Principal allow accepts, e.g. one of a fleet administrator.
func (s *Server) RegistrationHandler(allow func(Principal) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		fail := func(status int, code, desc string) { writeOAuthError(w, status, code, desc) }
		scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || tok == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="devcloud"`)
			fail(http.StatusUnauthorized, "invalid_token", "send an administrator's access token: Authorization: Bearer <token>")
			return
		}
		p, err := s.Verify(r.Context(), tok)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="devcloud", error="invalid_token"`)
			fail(http.StatusUnauthorized, "invalid_token", err.Error())
			return
		}
		if err := allow(p); err != nil {
			fail(http.StatusForbidden, "insufficient_scope", err.Error())
			return
		}
		if id, one := strings.CutPrefix(r.URL.Path, RegisterPath+"/"); one {
			switch r.Method {
			case http.MethodGet:
				a, err := s.appStore.GetApp(id)
				if err != nil {
					fail(http.StatusNotFound, "invalid_client_id", err.Error())
					return
				}
				w.Header().Set("Content-Type", "application/json")
				json.NewEncoder(w).Encode(registration(a, ""))
			case http.MethodDelete:
				if err := s.DeleteApp(id); errors.Is(err, ErrUnknownApp) {
					fail(http.StatusNotFound, "invalid_client_id", err.Error())
				} else if err != nil {
					fail(http.StatusInternalServerError, "server_error", err.Error())
				} else {
					s.log.Info("auth: application deleted over HTTP", "client_id", id, "by", p.UserID)
					w.WriteHeader(http.StatusNoContent)
				}
			default:
				w.Header().Set("Allow", "GET, DELETE")
				fail(http.StatusMethodNotAllowed, "invalid_request", "use GET or DELETE")
			}
			return
		}
		switch r.Method {
		case http.MethodGet:
			apps, err := s.RegisteredApps()
			if err != nil {
				fail(http.StatusInternalServerError, "server_error", err.Error())
				return
			}
			out := []registrationResponse{}
			for _, a := range apps {
				out = append(out, registration(a, ""))
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(out)
		case http.MethodPost:
			if mt, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); strings.TrimSpace(mt) != "application/json" {
				fail(http.StatusUnsupportedMediaType, "invalid_client_metadata", "body: want Content-Type application/json")
				return
			}
			var req AppRegistration
			dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil {
				fail(http.StatusBadRequest, "invalid_client_metadata", "body: "+err.Error())
				return
			}
			a, secret, err := s.RegisterApp(req)
			if err != nil {
				code := "invalid_client_metadata"
				if strings.Contains(err.Error(), "redirect_uris") {
					code = "invalid_redirect_uri"
				}
				fail(http.StatusBadRequest, code, strings.TrimPrefix(err.Error(), "auth: register app: "))
				return
			}
			s.log.Info("auth: application registered over HTTP", "client_id", a.ClientID, "by", p.UserID)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			json.NewEncoder(w).Encode(registration(a, secret))
		default:
			w.Header().Set("Allow", "GET, POST")
			fail(http.StatusMethodNotAllowed, "invalid_request", "use GET or POST")
		}
	})
}

// errNotAdmin is what an allow function returns for a caller who may not register applications.
var errNotAdmin = errors.New("auth: only fleet administrators may register applications")

// AllowUsers returns an allow function for RegistrationHandler admitting the users listed, by
// their own tokens: a token a user's consent gave a registered application (Delegated) may
// only submit jobs.
func AllowUsers(users []string) func(Principal) error {
	return func(p Principal) error {
		if p.Delegated {
			return errors.New("auth: an application's token may not register applications")
		}
		for _, u := range users {
			if p.Kind == KindUser && p.UserID == u {
				return nil
			}
		}
		return errNotAdmin
	}
}
