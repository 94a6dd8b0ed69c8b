package auth

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// The pages where a user lets an application act for them, and later takes that back. They
// live under /device, the path of the sign-in session's cookie, and use the same sign-in,
// session and CSRF token as the station approval page.
const (
	pathApps        = "/device/apps"
	pathAppsConsent = "/device/apps/consent"
	pathAppsLogin   = "/device/apps/login"
	pathAppsRevoke  = "/device/apps/revoke"
	pathAuthorize   = "/oauth/authorize"
)

func (s *Server) mountApps() {
	s.mux.HandleFunc("GET "+pathApps, s.handleAppsPage)
	s.mux.HandleFunc("POST "+pathAppsRevoke, s.handleAppsRevoke)
	s.mux.HandleFunc(pathAppsConsent, s.handleConsent)
	s.mux.HandleFunc("POST "+pathAppsLogin, s.handleAppsLogin)
}

// AuthorizeURL is the RFC 6749 §3.1 authorization endpoint.
func (s *Server) AuthorizeURL() string { return s.issuer + pathAuthorize }

// RevokeURL is the RFC 7009 revocation endpoint.
func (s *Server) RevokeURL() string { return s.issuer + "/oauth/revoke" }

var appsTmpl = template.Must(template.New("apps").Parse(pageHead + `.app{display:flex;gap:.75rem;align-items:center;margin-bottom:.75rem}
.app img{width:48px;height:48px;border-radius:10px;object-fit:cover;background:#eee}
.app b{font-size:1.2rem}
ul{margin:.25rem 0 1rem;padding-left:1.2rem}li{margin:.25rem 0}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
input[type=text],input[type=password]{width:100%;font-size:1.125rem;padding:.625rem;border:1px solid #999;border-radius:8px;min-height:48px}
.buttons{display:flex;flex-direction:column;gap:.75rem;margin-top:1.25rem}
button{font-size:1.25rem;font-weight:600;min-height:56px;padding:.75rem 1rem;border-radius:10px;border:2px solid #333;background:#fff;color:#1b1b1b;cursor:pointer;width:100%}
button.approve{background:#1a7f37;border-color:#1a7f37;color:#fff}
button.deny{border-color:#b42318;color:#b42318}
.who{color:#555;font-size:.95rem;margin-bottom:.5rem}
.small{color:#555;font-size:.9rem}
@media (min-width:40rem){.buttons{flex-direction:row}.buttons button{flex:1}}
</style></head>
<body><main>
{{if .User}}<p class="who">Signed in as <b>{{.User.Name}}</b></p>{{end}}
<h1>{{.Title}}</h1>
{{if .Message}}<p class="msg{{if .Error}} error{{end}}" role="{{if .Error}}alert{{else}}status{{end}}">{{.Message}}</p>{{end}}
{{if eq .View "login"}}
<form method="post" action="/device/apps/login">
<input type="hidden" name="csrf_token" value="{{.CSRF}}">
<input type="hidden" name="id" value="{{.ID}}">
{{if .App.Name}}<p>Sign in to decide what <b>{{.App.Name}}</b> may do for you.</p>{{else}}<p>Sign in to see the applications that may act for you.</p>{{end}}
<label for="user">User</label>
<input type="text" id="user" name="user" autocomplete="username" autocapitalize="none" required autofocus>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<div class="buttons"><button class="approve" type="submit">Sign in</button></div>
</form>
{{else if eq .View "consent"}}
<div class="app">{{if .App.IconURL}}<img src="{{.App.IconURL}}" alt="">{{end}}<div><b id="app-name">{{.App.Name}}</b><br><span class="small">client id <code>{{.App.ClientID}}</code></span></div></div>
{{if .App.Description}}<p id="app-description">{{.App.Description}}</p>{{end}}
<p>If you allow it, {{.App.Name}} may:</p>
<ul id="scopes">
<li>Send label print jobs in your name. They wait for you: a station prints them when you tap your badge.</li>
<li>Keep doing so without asking again, until you revoke it on <a href="/device/apps">your apps</a>.</li>
</ul>
<p class="small">Either way you go back to <b>{{.RedirectHost}}</b>.</p>
<form method="post" action="/device/apps/consent">
<input type="hidden" name="csrf_token" value="{{.CSRF}}">
<input type="hidden" name="id" value="{{.ID}}">
<div class="buttons">
<button class="approve" id="approve" name="action" value="approve" type="submit">Allow</button>
<button class="deny" id="deny" name="action" value="deny" type="submit">Deny</button>
</div>
</form>
{{else if eq .View "apps"}}
{{range .Authorized}}
<div class="app">{{if .App.IconURL}}<img src="{{.App.IconURL}}" alt="">{{end}}<div><b>{{.App.Name}}</b><br><span class="small">allowed since {{.Since.Format "2006-01-02 15:04 MST"}}</span></div></div>
<form method="post" action="/device/apps/revoke">
<input type="hidden" name="csrf_token" value="{{$.CSRF}}">
<input type="hidden" name="client_id" value="{{.App.ClientID}}">
<div class="buttons"><button class="deny" id="revoke-{{.App.ClientID}}" type="submit">Revoke {{.App.Name}}</button></div>
</form>
{{else}}<p>No application may act for you.</p>{{end}}
{{end}}
</main></body></html>`))

type appsPage struct {
	Title, View, Message string
	Error                bool
	User                 *User
	CSRF, ID             string
	App                  RegisteredApp
	RedirectHost         string
	Authorized           []AuthorizedApp
	// formTarget is the application's origin: browsers apply the CSP form-action to the
	// redirects that follow a form, so the consent form may end there.
	formTarget string
}

func (s *Server) renderApps(w http.ResponseWriter, status int, d appsPage) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY") // no clickjacking of the Allow button
	w.Header().Set("Content-Security-Policy", "default-src 'none'; img-src https: http:; style-src 'unsafe-inline'; form-action 'self'"+d.formTarget+"; frame-ancestors 'none'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	if err := appsTmpl.Execute(w, d); err != nil {
		s.log.Error("auth: apps page", "err", err)
	}
}

// consentMessage says in words why a consent request cannot be decided.
func consentMessage(err error) string {
	switch {
	case errors.Is(err, ErrCodeExpired):
		return "This request has expired (they last 10 minutes). Go back to the application and start again."
	case errors.Is(err, ErrAlreadyDecided):
		return "This request has been decided already. Go back to the application."
	}
	return "No application is waiting for this request. Go back to the application and start again."
}

// consentPage fills the page for a consent request: sign-in, the question, or why not.
func (s *Server) consentPage(sess *session, id string) (appsPage, *authRequest, int) {
	d := appsPage{Title: "Allow an application", CSRF: sess.csrf, ID: id}
	if sess.user != "" {
		u := s.users[sess.user]
		d.User = &u
	}
	req, err := s.store.pendingAuthRequest(id)
	if err != nil {
		d.View, d.Message, d.Error = "error", consentMessage(err), true
		return d, nil, statusFor(err)
	}
	app, err := s.appStore.GetApp(req.clientID)
	if err != nil {
		d.View, d.Message, d.Error = "error", "The application is no longer registered.", true
		return d, nil, http.StatusNotFound
	}
	d.App = app
	if u, err := url.Parse(req.redirectURI); err == nil {
		d.RedirectHost = u.Host
		d.formTarget = " " + u.Scheme + "://" + u.Host
	}
	d.View = "consent"
	if sess.user == "" {
		d.View = "login"
	}
	return d, req, http.StatusOK
}

// handleConsent shows an application's request (GET) and takes the user's answer (POST):
// Allow sends the browser to the op's callback, which redirects with code and state; Deny
// redirects with error=access_denied and state (RFC 6749 §4.1.2.1).
func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request) {
	_, sess := s.currentSession(r)
	if sess == nil {
		sess = s.startSession(w, r, "")
	}
	switch r.Method {
	case http.MethodGet:
		d, _, st := s.consentPage(sess, r.URL.Query().Get("id"))
		s.renderApps(w, st, d)
	case http.MethodPost:
		id := r.PostFormValue("id")
		d, req, st := s.consentPage(sess, id)
		if req == nil || sess.user == "" {
			if st == http.StatusOK {
				st, d.Message, d.Error = http.StatusUnauthorized, "Please sign in first. Nothing was allowed or denied.", true
			}
			s.renderApps(w, st, d)
			return
		}
		if err := s.checkForm(r, sess); err != nil {
			s.log.Warn("auth: consent refused", "user", sess.user, "remote", r.RemoteAddr, "err", err)
			d.Message, d.Error = "This page was out of date, so nothing was allowed or denied. Check the details and choose again.", true
			s.renderApps(w, http.StatusForbidden, d)
			return
		}
		switch r.PostFormValue("action") {
		case "approve":
			if err := s.store.consent(id, sess.user); err != nil {
				d.View, d.Message, d.Error = "error", consentMessage(err), true
				s.renderApps(w, http.StatusConflict, d)
				return
			}
			s.log.Info("auth: application allowed", "client_id", req.clientID, "user", sess.user)
			http.Redirect(w, r, s.issuer+pathAuthorize+"/callback?id="+url.QueryEscape(id), http.StatusFound)
		case "deny":
			s.store.DeleteAuthRequest(r.Context(), id)
			s.log.Info("auth: application denied", "client_id", req.clientID, "user", sess.user)
			op.AuthRequestError(w, r, req, oidc.ErrAccessDenied().WithDescription("the user denied the request"), s.op)
		default:
			d.Message, d.Error = "Choose Allow or Deny.", true
			s.renderApps(w, http.StatusBadRequest, d)
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// handleAppsLogin signs a user in from the consent page and goes back to it.
func (s *Server) handleAppsLogin(w http.ResponseWriter, r *http.Request) {
	oldID, sess := s.currentSession(r)
	id := r.PostFormValue("id")
	if err := s.checkForm(r, sess); err != nil {
		if sess == nil {
			sess = s.startSession(w, r, "")
		}
		d := s.loginPage(sess, id)
		d.Message, d.Error = "The sign-in form was out of date. Please sign in again.", true
		s.renderApps(w, http.StatusForbidden, d)
		return
	}
	u, err := s.SignIn(strings.TrimSpace(r.PostFormValue("user")), r.PostFormValue("password"))
	if err != nil {
		d := s.loginPage(sess, id)
		d.View, d.Error = "login", true
		d.Message = "The user name or password is wrong."
		st := http.StatusUnauthorized
		if errors.Is(err, ErrTooManyFailures) {
			d.Message, st = "Too many wrong passwords for this user. Wait 15 minutes, then try again.", http.StatusTooManyRequests
		}
		s.renderApps(w, st, d)
		return
	}
	s.dropSession(oldID) // a new id at sign-in: a session id planted earlier is worthless
	s.startSession(w, r, u.ID)
	s.log.Info("auth: signed in", "user", u.ID, "remote", r.RemoteAddr)
	to := pathApps
	if id != "" {
		to = pathAppsConsent + "?id=" + url.QueryEscape(id)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// loginPage is the sign-in form for the consent request id, or for "Your apps" without one.
func (s *Server) loginPage(sess *session, id string) appsPage {
	if id == "" {
		return appsPage{Title: "Your apps", View: "login", CSRF: sess.csrf}
	}
	d, _, _ := s.consentPage(sess, id)
	return d
}

// handleAppsPage lists the applications that may act for the signed-in user.
func (s *Server) handleAppsPage(w http.ResponseWriter, r *http.Request) {
	_, sess := s.currentSession(r)
	if sess == nil || sess.user == "" {
		if sess == nil {
			sess = s.startSession(w, r, "")
		}
		s.renderApps(w, http.StatusOK, appsPage{Title: "Your apps", View: "login", CSRF: sess.csrf})
		return
	}
	s.renderApps(w, http.StatusOK, s.appsList(sess, ""))
}

func (s *Server) appsList(sess *session, msg string) appsPage {
	u := s.users[sess.user]
	d := appsPage{Title: "Your apps", View: "apps", User: &u, CSRF: sess.csrf, Message: msg}
	list, err := s.AuthorizedApps(sess.user)
	if err != nil {
		d.Message, d.Error = "Your apps cannot be listed now: "+err.Error(), true
	}
	d.Authorized = list
	return d
}

// handleAppsRevoke is the user's "revoke app": its tokens stop working at once.
func (s *Server) handleAppsRevoke(w http.ResponseWriter, r *http.Request) {
	_, sess := s.currentSession(r)
	if sess == nil || sess.user == "" {
		http.Redirect(w, r, pathDevice, http.StatusSeeOther)
		return
	}
	if err := s.checkForm(r, sess); err != nil {
		d := s.appsList(sess, "This page was out of date, so nothing was revoked.")
		d.Error = true
		s.renderApps(w, http.StatusForbidden, d)
		return
	}
	clientID := r.PostFormValue("client_id")
	n, err := s.RevokeApp(sess.user, clientID)
	msg := "Revoked: the application can no longer act for you."
	switch {
	case err != nil:
		msg = "Revoking failed: " + err.Error()
	case n == 0:
		msg = "That application had no access to revoke."
	}
	d := s.appsList(sess, msg)
	d.Error = err != nil
	s.renderApps(w, http.StatusOK, d)
}
