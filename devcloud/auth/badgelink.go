package auth

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"labelstation/devcloud/badgelink"
)

// The badge page: an employee whose badge a station did not know scans the QR code the station
// shows, signs in, and confirms "Link badge …1a2b to Alice?". Only the last hex digits of the
// badge's keyed hash are shown; the card number never reaches the cloud.

// BadgeLinker is what the badge page needs of the registry of codes (badgelink.Registry).
type BadgeLinker interface {
	Look(code, user string) (badgelink.Pending, error)
	Confirm(code, user string) (badgelink.Pending, error)
}

var _ BadgeLinker = (*badgelink.Registry)(nil)

// Paths of the badge page. Under /device, so the approval page's session cookie signs in here
// too.
const (
	pathBadge      = "/device/badge"
	pathBadgeLogin = "/device/badge/login"
)

// EnableBadgeLinks serves the badge page on the server's handler, confirming through l.
func (s *Server) EnableBadgeLinks(l BadgeLinker) {
	h := &badgePage{s: s, l: l}
	s.mux.HandleFunc(pathBadge, h.serve)
	s.mux.HandleFunc("POST "+pathBadgeLogin, h.login)
}

// BadgeLinkURL is the page a station's QR code leads to (with ?code=).
func (s *Server) BadgeLinkURL() string { return s.issuer + pathBadge }

type badgePage struct {
	s *Server
	l BadgeLinker
}

var badgeTmpl = template.Must(template.New("badge").Parse(pageHead + `.big{font-size:1.375rem;font-weight:600}
.tail{font-family:ui-monospace,monospace;font-weight:700;letter-spacing:.06em}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
input[type=text],input[type=password]{width:100%;font-size:1.125rem;padding:.625rem;border:1px solid #999;border-radius:8px;min-height:48px}
.buttons{display:flex;flex-direction:column;gap:.75rem;margin-top:1.25rem}
button{font-size:1.25rem;font-weight:600;min-height:56px;padding:.75rem 1rem;border-radius:10px;border:2px solid #333;background:#fff;color:#1b1b1b;cursor:pointer;width:100%}
button.ok{background:#1a7f37;border-color:#1a7f37;color:#fff}
button.link{font-size:1rem;min-height:44px;border:none;text-decoration:underline;background:none;width:auto;padding:0 .25rem}
.who{display:flex;justify-content:space-between;align-items:center;color:#555;font-size:.95rem;margin-bottom:.5rem}
@media (min-width:40rem){.buttons{flex-direction:row}.buttons button{flex:1}}
</style></head>
<body><main>
{{if .User}}<form class="who" method="post" action="/device/logout"><span>Signed in as <b>{{.User.Name}}</b></span><input type="hidden" name="csrf_token" value="{{.CSRF}}"><button class="link" type="submit">Sign out</button></form>{{end}}
<h1>{{.Title}}</h1>
{{if .Message}}<p class="msg{{if .Error}} error{{end}}" role="{{if .Error}}alert{{else}}status{{end}}" id="message">{{.Message}}</p>{{end}}
{{if eq .View "login"}}
<form method="post" action="/device/badge/login">
<input type="hidden" name="csrf_token" value="{{.CSRF}}">
<input type="hidden" name="code" value="{{.Code}}">
<p>Sign in to link the badge you just tapped to your account.</p>
<label for="user">User</label>
<input type="text" id="user" name="user" autocomplete="username" autocapitalize="none" required autofocus>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<div class="buttons"><button class="ok" type="submit" id="signin">Sign in</button></div>
</form>
{{else if eq .View "confirm"}}
<p class="big">Link badge <span class="tail">…{{.Tail}}</span> to {{.User.Name}}?</p>
<p>Only if you tapped your own badge at the station just now. Your held print jobs will then print for this badge.</p>
<form method="post" action="/device/badge">
<input type="hidden" name="csrf_token" value="{{.CSRF}}">
<input type="hidden" name="code" value="{{.Code}}">
<div class="buttons">
<button class="ok" id="link" name="action" value="link" type="submit">Link badge</button>
<button id="cancel" name="action" value="cancel" type="submit">Cancel</button>
</div>
</form>
{{else if eq .View "enter"}}
<form method="get" action="/device/badge">
<label for="code">Code shown on the station</label>
<input type="text" id="code" name="code" value="{{.Code}}" autocomplete="off" autocapitalize="characters" required autofocus>
<div class="buttons"><button class="ok" type="submit">Continue</button></div>
</form>
{{end}}
</main></body></html>`))

type badgeData struct {
	Title, View, Message, CSRF, Code, Tail string
	Error                                  bool
	User                                   *User
}

func (h *badgePage) render(w http.ResponseWriter, status int, d badgeData) {
	if d.Title == "" {
		d.Title = "Link your badge"
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.Header().Set("Referrer-Policy", "no-referrer") // the code is in the URL
	w.WriteHeader(status)
	if err := badgeTmpl.Execute(w, d); err != nil {
		h.s.log.Error("auth: badge page", "err", err)
	}
}

// badgeMessage says in words why a code cannot be used, with the HTTP status.
func badgeMessage(err error) (string, int) {
	switch {
	case errors.Is(err, badgelink.ErrUnknownCode):
		return "No badge is waiting for this code. Check the code on the station's screen, or tap your badge again for a new one.", http.StatusNotFound
	case errors.Is(err, badgelink.ErrExpired):
		return "This code has expired. Tap your badge at the station again for a new one.", http.StatusGone
	case errors.Is(err, badgelink.ErrUsed):
		return "This code has been used already. Tap your badge at the station: if it is linked, your jobs print.", http.StatusGone
	case errors.Is(err, badgelink.ErrLinked):
		return "This badge is already linked to someone else, so it was not linked to you. Ask IT if it is yours.", http.StatusConflict
	case errors.Is(err, badgelink.ErrTooManyWrong):
		return "Too many wrong codes. Wait 15 minutes, then try again.", http.StatusTooManyRequests
	}
	return "Something went wrong: " + err.Error(), http.StatusInternalServerError
}

// confirmPage is the signed-in view for code: the question, or why not.
func (h *badgePage) confirmPage(sess *session, code string) (badgeData, int) {
	u := h.s.users[sess.user]
	d := badgeData{User: &u, CSRF: sess.csrf, Code: code, View: "enter"}
	if code == "" {
		return d, http.StatusOK
	}
	p, err := h.l.Look(code, sess.user)
	if err != nil {
		h.s.log.Info("auth: badge code refused", "user", sess.user, "err", err)
		msg, st := badgeMessage(err)
		d.Message, d.Error = msg, true
		if errors.Is(err, badgelink.ErrTooManyWrong) {
			d.View = "none"
		}
		return d, st
	}
	d.View, d.Code, d.Tail = "confirm", p.Code, p.Tail()
	return d, http.StatusOK
}

func (h *badgePage) serve(w http.ResponseWriter, r *http.Request) {
	_, sess := h.s.currentSession(r)
	signedIn := sess != nil && sess.user != ""
	switch r.Method {
	case http.MethodGet:
		code := strings.TrimSpace(r.URL.Query().Get("code"))
		if !signedIn {
			if sess == nil {
				sess = h.s.startSession(w, r, "")
			}
			h.render(w, http.StatusOK, badgeData{View: "login", CSRF: sess.csrf, Code: code})
			return
		}
		d, st := h.confirmPage(sess, code)
		h.render(w, st, d)
	case http.MethodPost:
		code := strings.TrimSpace(r.PostFormValue("code"))
		if !signedIn {
			if sess == nil {
				sess = h.s.startSession(w, r, "")
			}
			h.render(w, http.StatusUnauthorized, badgeData{View: "login", CSRF: sess.csrf, Code: code,
				Message: "Please sign in first. Nothing was linked.", Error: true})
			return
		}
		if err := h.s.checkForm(r, sess); err != nil {
			h.s.log.Warn("auth: badge link refused", "user", sess.user, "remote", r.RemoteAddr, "err", err)
			d, _ := h.confirmPage(sess, code)
			d.Message, d.Error = "This page was out of date, so nothing was linked. Check the badge and choose again.", true
			h.render(w, http.StatusForbidden, d)
			return
		}
		u := h.s.users[sess.user]
		switch r.PostFormValue("action") {
		case "link":
		case "cancel":
			h.render(w, http.StatusOK, badgeData{View: "done", User: &u, CSRF: sess.csrf, Title: "Not linked",
				Message: "Nothing was linked. The code stops working in a few minutes."})
			return
		default:
			d, _ := h.confirmPage(sess, code)
			d.Message, d.Error = "Choose Link badge or Cancel.", true
			h.render(w, http.StatusBadRequest, d)
			return
		}
		p, err := h.l.Confirm(code, sess.user)
		if err != nil {
			msg, st := badgeMessage(err)
			h.s.log.Info("auth: badge link refused", "user", sess.user, "err", err)
			h.render(w, st, badgeData{View: "enter", User: &u, CSRF: sess.csrf, Message: msg, Error: true})
			return
		}
		h.s.log.Info("auth: badge linked", "user", sess.user, "badge", p.Tail(), "station", p.Station)
		h.render(w, http.StatusOK, badgeData{View: "done", User: &u, CSRF: sess.csrf, Title: "Badge linked",
			Message: "Badge …" + p.Tail() + " is now linked to " + u.Name + ". Tap it at the station to print your jobs."})
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// login signs a user in from the badge page and goes back to the code they came for.
func (h *badgePage) login(w http.ResponseWriter, r *http.Request) {
	id, sess := h.s.currentSession(r)
	code := strings.TrimSpace(r.PostFormValue("code"))
	if err := h.s.checkForm(r, sess); err != nil {
		if sess == nil {
			sess = h.s.startSession(w, r, "")
		}
		h.render(w, http.StatusForbidden, badgeData{View: "login", CSRF: sess.csrf, Code: code,
			Message: "The sign-in form was out of date. Please sign in again.", Error: true})
		return
	}
	u, err := h.s.SignIn(strings.TrimSpace(r.PostFormValue("user")), r.PostFormValue("password"))
	if errors.Is(err, ErrTooManyFailures) {
		h.render(w, http.StatusTooManyRequests, badgeData{View: "login", CSRF: sess.csrf, Code: code,
			Message: "Too many wrong passwords for this user. Wait 15 minutes, then try again.", Error: true})
		return
	}
	if err != nil {
		h.render(w, http.StatusUnauthorized, badgeData{View: "login", CSRF: sess.csrf, Code: code,
			Message: "The user name or password is wrong.", Error: true})
		return
	}
	h.s.dropSession(id) // a new id at sign-in: a session id planted earlier is worthless
	h.s.startSession(w, r, u.ID)
	h.s.log.Info("auth: signed in", "user", u.ID, "remote", r.RemoteAddr, "page", "badge")
	to := pathBadge
	if code != "" {
		to += "?" + url.Values{"code": {code}}.Encode()
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}
