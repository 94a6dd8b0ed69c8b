package auth

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
)

// pageHead opens every devcloud page (approval, consent, badge link): the title, a phone-sized
// viewport and the shared styles; each page adds its own rules and closes the style element.
const pageHead = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
*{box-sizing:border-box}
body{font-family:system-ui,sans-serif;font-size:1.0625rem;line-height:1.45;color:#1b1b1b;background:#f4f5f7;margin:0;padding:1rem}
main{max-width:34rem;margin:0 auto;background:#fff;border-radius:12px;padding:1.25rem;box-shadow:0 1px 3px #0002}
h1{font-size:1.5rem;margin:.25rem 0 1rem}
.msg{padding:.75rem 1rem;border-radius:8px;margin:0 0 1rem;background:#e8f4ea;border:1px solid #9cc9a4}
.msg.error{background:#fdecea;border-color:#e4a39b}
`

// The approval page: sign in, see what is asked (which station, which app, which scopes),
// approve or deny. Big buttons that stack on a phone: most admins scan the station's QR code.
var pageTmpl = template.Must(template.New("device").Parse(pageHead + `.code{font-family:ui-monospace,monospace;font-size:1.75rem;letter-spacing:.08em;font-weight:700}
dl{margin:0 0 1rem}dt{font-weight:600;color:#555;font-size:.9rem;margin-top:.75rem}dd{margin:.125rem 0 0}
ul.scopes{margin:.25rem 0 0;padding-left:1.2rem}ul.scopes li{margin:.25rem 0}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
input[type=text],input[type=password],select{width:100%;font-size:1.125rem;padding:.625rem;border:1px solid #999;border-radius:8px;min-height:48px}
.buttons{display:flex;flex-direction:column;gap:.75rem;margin-top:1.25rem}
button{font-size:1.25rem;font-weight:600;min-height:56px;padding:.75rem 1rem;border-radius:10px;border:2px solid #333;background:#fff;color:#1b1b1b;cursor:pointer;width:100%}
button.approve{background:#1a7f37;border-color:#1a7f37;color:#fff}
button.deny{border-color:#b42318;color:#b42318}
button.link{font-size:1rem;min-height:44px;border:none;text-decoration:underline;background:none;width:auto;padding:0 .25rem}
.who{display:flex;justify-content:space-between;align-items:center;color:#555;font-size:.95rem;margin-bottom:.5rem}
@media (min-width:40rem){.buttons{flex-direction:row}.buttons button{flex:1}}
</style></head>
<body><main>
{{if .User}}<form class="who" method="post" action="/device/logout"><span>Signed in as <b>{{.User.Name}}</b></span><input type="hidden" name="csrf_token" value="{{.CSRF}}"><button class="link" type="submit">Sign out</button></form>{{end}}
<h1>{{.Title}}</h1>
{{if .Message}}<p class="msg{{if .Error}} error{{end}}" role="{{if .Error}}alert{{else}}status{{end}}">{{.Message}}</p>{{end}}
{{if eq .View "login"}}
<form method="post" action="/device/login">
<input type="hidden" name="csrf_token" value="{{.CSRF}}">
<input type="hidden" name="user_code" value="{{.UserCode}}">
{{if .UserCode}}<p>Sign in to approve the station showing this code:</p><p class="code">{{.UserCode}}</p>{{else}}<p>Sign in to approve a label station.</p>{{end}}
<label for="user">User</label>
<input type="text" id="user" name="user" autocomplete="username" autocapitalize="none" required autofocus>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<div class="buttons"><button class="approve" type="submit">Sign in</button></div>
</form>
{{else if eq .View "decide"}}
<p>A label station asks to join your fleet. Approve it only if this code is on its screen now:</p>
<p class="code">{{.UserCode}}</p>
<dl>
<dt>Station</dt><dd>serial number <b>{{if .Serial}}{{.Serial}}{{else}}(the station did not send one){{end}}</b></dd>
<dt>App</dt><dd>{{.AppName}} <small>(client id <code>{{.ClientID}}</code>)</small></dd>
<dt>It will be allowed to</dt><dd><ul class="scopes">{{range .Scopes}}<li>{{.}}</li>{{end}}</ul></dd>
</dl>
<form method="post" action="/device">
<input type="hidden" name="csrf_token" value="{{.CSRF}}">
<input type="hidden" name="user_code" value="{{.UserCode}}">
<div class="buttons">
<button class="approve" id="approve" name="action" value="approve" type="submit">Approve</button>
<button class="deny" id="deny" name="action" value="deny" type="submit">Deny</button>
</div>
</form>
{{else if eq .View "enter"}}
<form method="get" action="/device">
<label for="user_code">Code shown on the station</label>
<input type="text" id="user_code" name="user_code" value="{{.UserCode}}" autocomplete="off" autocapitalize="characters" required autofocus>
<div class="buttons"><button class="approve" type="submit">Continue</button></div>
</form>
{{end}}
</main></body></html>`))

type pageData struct {
	Title    string
	View     string // login | decide | enter | done
	Message  string
	Error    bool
	User     *User
	CSRF     string
	UserCode string
	Serial   string
	ClientID string
	AppName  string
	Scopes   []string
}

// appNames and scopeText say in words what a device authorization asks for.
var appNames = map[string]string{StationClientID: "Label release station"}

var scopeText = map[string]string{
	ScopePrinting:      "Print the label jobs your colleagues release at it with their badges",
	ScopeOfflineAccess: "Stay enrolled: renew its access without asking you again",
}

// codeMessage turns a user-code error into a sentence for the person at the page.
func codeMessage(code string, err error) string {
	switch {
	case errors.Is(err, ErrUnknownUserCode):
		return "No station is waiting for the code " + code + ". Check the code on the station's screen and type it again; a station shows a new code every few minutes."
	case errors.Is(err, ErrCodeExpired):
		return "The code " + code + " has expired. The station will show a new code; enter that one."
	case errors.Is(err, ErrAlreadyDecided):
		return "The code " + code + " has already been approved or denied. If the station still shows a code, enter the one it shows now."
	case errors.Is(err, ErrUnknownUser):
		return "Your user is not allowed to approve stations."
	}
	return "Something went wrong: " + err.Error()
}

func (s *Server) render(w http.ResponseWriter, status int, d pageData) {
	if d.Title == "" {
		d.Title = "Approve a label station"
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY") // no clickjacking of the Approve button
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	if err := pageTmpl.Execute(w, d); err != nil {
		s.log.Error("auth: approval page", "err", err)
	}
}

// pageFor fills in the view for a signed-in session and a code: what is asked, or why not.
func (s *Server) pageFor(sess *session, code string) (pageData, int) {
	u := s.users[sess.user]
	d := pageData{User: &u, CSRF: sess.csrf, UserCode: code, View: "enter"}
	if code == "" {
		return d, http.StatusOK
	}
	da, err := s.pending(code)
	if err == nil {
		d.View, d.Serial, d.ClientID = "decide", da.Serial, da.ClientID
		d.AppName = appNames[da.ClientID]
		if d.AppName == "" {
			d.AppName = da.ClientID
		}
		for _, sc := range da.Scopes {
			if t, ok := scopeText[sc]; ok {
				d.Scopes = append(d.Scopes, t)
			} else {
				d.Scopes = append(d.Scopes, sc)
			}
		}
	}
	if err != nil {
		d.Message, d.Error = codeMessage(code, err), true
		return d, statusFor(err)
	}
	return d, http.StatusOK
}

// handleDevicePage is the RFC 8628 §3.3 user interaction: GET shows the sign-in form or what
// the station asks for; POST approves or denies, for a signed-in user with the page's CSRF token.
func (s *Server) handleDevicePage(w http.ResponseWriter, r *http.Request) {
	_, sess := s.currentSession(r)
	switch r.Method {
	case http.MethodGet:
		code := strings.TrimSpace(r.URL.Query().Get("user_code"))
		if sess == nil || sess.user == "" {
			if sess == nil {
				sess = s.startSession(w, r, "")
			}
			s.render(w, http.StatusOK, pageData{View: "login", CSRF: sess.csrf, UserCode: code})
			return
		}
		d, st := s.pageFor(sess, code)
		s.render(w, st, d)
	case http.MethodPost:
		code := strings.TrimSpace(r.PostFormValue("user_code"))
		if sess == nil || sess.user == "" {
			if sess == nil {
				sess = s.startSession(w, r, "")
			}
			s.log.Warn("auth: decision without sign-in refused", "remote", r.RemoteAddr)
			s.render(w, http.StatusUnauthorized, pageData{View: "login", CSRF: sess.csrf, UserCode: code,
				Message: "Please sign in first. Nothing was approved or denied.", Error: true})
			return
		}
		if err := s.checkForm(r, sess); err != nil {
			s.log.Warn("auth: decision refused", "user", sess.user, "remote", r.RemoteAddr, "err", err)
			d, _ := s.pageFor(sess, code)
			d.Message, d.Error = "This page was out of date, so nothing was approved or denied. Check the details and choose again.", true
			s.render(w, http.StatusForbidden, d)
			return
		}
		var err error
		var done string
		switch r.PostFormValue("action") {
		case "approve":
			err = s.Approve(code, sess.user)
			done = "Approved. The station will finish enrolling within a few seconds."
		case "deny":
			err = s.Deny(code)
			done = "Denied. The station will show a new code."
		default:
			d, _ := s.pageFor(sess, code)
			d.Message, d.Error = "Choose Approve or Deny.", true
			s.render(w, http.StatusBadRequest, d)
			return
		}
		u := s.users[sess.user]
		if err != nil {
			s.render(w, statusFor(err), pageData{View: "enter", User: &u, CSRF: sess.csrf, Message: codeMessage(code, err), Error: true})
			return
		}
		s.render(w, http.StatusOK, pageData{View: "done", User: &u, CSRF: sess.csrf, Title: "Done", Message: done})
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// handleLogin signs a user in and goes back to the code they came for.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	id, sess := s.currentSession(r)
	code := strings.TrimSpace(r.PostFormValue("user_code"))
	if err := s.checkForm(r, sess); err != nil {
		if sess == nil {
			sess = s.startSession(w, r, "")
		}
		s.render(w, http.StatusForbidden, pageData{View: "login", CSRF: sess.csrf, UserCode: code,
			Message: "The sign-in form was out of date. Please sign in again.", Error: true})
		return
	}
	u, err := s.SignIn(strings.TrimSpace(r.PostFormValue("user")), r.PostFormValue("password"))
	if errors.Is(err, ErrTooManyFailures) {
		s.render(w, http.StatusTooManyRequests, pageData{View: "login", CSRF: sess.csrf, UserCode: code,
			Message: "Too many wrong passwords for this user. Wait 15 minutes, then try again.", Error: true})
		return
	}
	if err != nil {
		s.render(w, http.StatusUnauthorized, pageData{View: "login", CSRF: sess.csrf, UserCode: code,
			Message: "The user name or password is wrong.", Error: true})
		return
	}
	s.dropSession(id) // a new id at sign-in: a session id planted earlier is worthless
	s.startSession(w, r, u.ID)
	s.log.Info("auth: signed in", "user", u.ID, "remote", r.RemoteAddr)
	to := pathDevice
	if code != "" {
		to += "?" + url.Values{"user_code": {code}}.Encode()
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	id, sess := s.currentSession(r)
	if err := s.checkForm(r, sess); err == nil {
		s.endSession(w, r, id)
	}
	http.Redirect(w, r, pathDevice, http.StatusSeeOther)
}
