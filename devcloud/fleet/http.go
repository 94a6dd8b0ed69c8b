package fleet

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// APIOptions configures the HTTP API.
type APIOptions struct {
	// Authorize checks a bearer token and returns who it speaks for; only fleet managers
	// may pass.
	Authorize func(r *http.Request, token string) (string, error)
	// Rate and Burst bound each caller's requests (token bucket); zero means 20/s and 40.
	Rate, Burst float64
}

// API is the fleet HTTP API.
type API struct {
	reg *Registry
	opt APIOptions

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// NewAPI builds the API over reg.
func NewAPI(reg *Registry, opt APIOptions) (*API, error) {
	if opt.Authorize == nil {
		return nil, errors.New("fleet: Authorize is required")
	}
	if opt.Rate == 0 {
		opt.Rate = 20
	}
	if opt.Burst == 0 {
		opt.Burst = 40
	}
	return &API{reg: reg, opt: opt, buckets: map[string]*bucket{}}, nil
}

// maxBody bounds a config document or command.
const maxBody = 64 << 10

// Handler serves /v1/fleet/...
func (a *API) Handler() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /v1/fleet/stations", a.auth(a.list))
	m.HandleFunc("GET /v1/fleet/stations/{id}", a.auth(a.getStation))
	m.HandleFunc("GET /v1/fleet/stations/{id}/config", a.auth(a.getConfig))
	m.HandleFunc("PUT /v1/fleet/stations/{id}/config", a.auth(a.putConfig))
	m.HandleFunc("PATCH /v1/fleet/stations/{id}/config", a.auth(a.putConfig))
	m.HandleFunc("PUT /v1/fleet/stations/{id}/group", a.auth(a.putGroup))
	m.HandleFunc("POST /v1/fleet/stations/{id}/commands", a.auth(a.command))
	m.HandleFunc("GET /v1/fleet/groups/{name}", a.auth(a.getGroup))
	m.HandleFunc("GET /v1/fleet/groups/{name}/config", a.auth(a.getConfig))
	m.HandleFunc("PUT /v1/fleet/groups/{name}/config", a.auth(a.putConfig))
	m.HandleFunc("PATCH /v1/fleet/groups/{name}/config", a.auth(a.putConfig))
	m.HandleFunc("POST /v1/fleet/groups/{name}/commands", a.auth(a.command))
	m.HandleFunc("GET /v1/fleet/commands/{id}", a.auth(a.getCommand))
	m.HandleFunc("GET /v1/fleet/events", a.auth(a.events))
	return m
}

// apiError is the error body: a code to branch on, a message for people, an id for the logs.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	ID      string `json:"id"`
}

func newID(prefix string) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux ≥ 3.17
	}
	return prefix + hex.EncodeToString(b[:])
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (a *API) fail(w http.ResponseWriter, status int, code, format string, args ...any) {
	e := apiError{Code: code, Message: fmt.Sprintf(format, args...), ID: newID("req_")}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	a.reg.log.Info("fleet: request failed", "req", e.ID, "status", status, "code", code, "message", e.Message)
	reply(w, status, e)
}

// auth checks the bearer token and the caller's rate.
func (a *API) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			a.fail(w, http.StatusUnauthorized, "unauthorized", "send Authorization: Bearer <token> of a fleet manager")
			return
		}
		who, err := a.opt.Authorize(r, strings.TrimSpace(tok))
		if err != nil {
			a.fail(w, http.StatusUnauthorized, "unauthorized", "%v", err)
			return
		}
		if wait := a.take(who); wait > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
			a.fail(w, http.StatusTooManyRequests, "rate_limited", "more than %g requests per second; retry later", a.opt.Rate)
			return
		}
		h(w, r)
	}
}

// take spends one request of who's bucket; the wait until the next one when it is empty.
func (a *API) take(who string) time.Duration {
	now := a.reg.opt.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.buckets[who]
	if b == nil {
		b = &bucket{tokens: a.opt.Burst, last: now}
		a.buckets[who] = b
	}
	b.tokens = min(a.opt.Burst, b.tokens+now.Sub(b.last).Seconds()*a.opt.Rate)
	b.last = now
	if b.tokens < 1 {
		return time.Duration((1 - b.tokens) / a.opt.Rate * float64(time.Second))
	}
	b.tokens--
	return 0
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	reply(w, http.StatusOK, map[string]any{"stations": a.reg.Stations()})
}

func (a *API) getStation(w http.ResponseWriter, r *http.Request) {
	st, ok := a.reg.Get(r.PathValue("id"))
	if !ok {
		a.fail(w, http.StatusNotFound, "not_found", "no station %q", r.PathValue("id"))
		return
	}
	reply(w, http.StatusOK, st)
}

// groupView is a group's desired document and its members' answers.
type groupView struct {
	Name    string    `json:"name"`
	Desired *Doc      `json:"desired,omitempty"`
	Members []Station `json:"members"`
}

func (a *API) group(name string) groupView {
	g := groupView{Name: name, Members: []Station{}}
	if d, ok := a.reg.GroupDoc(name); ok {
		g.Desired = &d
	}
	for _, id := range a.reg.Members(name) {
		if st, ok := a.reg.Get(id); ok {
			g.Members = append(g.Members, st)
		}
	}
	return g
}

func (a *API) getGroup(w http.ResponseWriter, r *http.Request) {
	reply(w, http.StatusOK, a.group(r.PathValue("name")))
}

func (a *API) getConfig(w http.ResponseWriter, r *http.Request) {
	if name := r.PathValue("name"); name != "" {
		d, ok := a.reg.GroupDoc(name)
		if !ok {
			a.fail(w, http.StatusNotFound, "not_found", "group %q has no config", name)
			return
		}
		reply(w, http.StatusOK, d)
		return
	}
	st, ok := a.reg.Get(r.PathValue("id"))
	if !ok || st.Desired == nil {
		a.fail(w, http.StatusNotFound, "not_found", "station %q has no config", r.PathValue("id"))
		return
	}
	reply(w, http.StatusOK, st.Desired)
}

// putConfig replaces (PUT) or merge-patches (PATCH, RFC 7396) a desired document. The
// document's fields are checked by the stations, which answer on config/reported.
func (a *API) putConfig(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		a.fail(w, http.StatusRequestEntityTooLarge, "too_large", "body: %v", err)
		return
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil || doc == nil {
		a.fail(w, http.StatusBadRequest, "invalid_request", "body: want a JSON object")
		return
	}
	name, id := r.PathValue("name"), r.PathValue("id")
	if r.Method == http.MethodPatch {
		var cur json.RawMessage
		if name != "" {
			d, _ := a.reg.GroupDoc(name)
			cur = d.Config
		} else {
			cur = a.reg.StationDoc(id).Config
		}
		var target any = map[string]any{}
		if len(cur) > 0 {
			if err := json.Unmarshal(cur, &target); err != nil {
				a.fail(w, http.StatusInternalServerError, "internal", "stored config: %v", err)
				return
			}
		}
		merged, _ := MergePatch(target, any(doc)).(map[string]any)
		doc = merged
	}
	if _, ok := doc["v"]; !ok {
		doc["v"] = 1
	}
	b, _ := json.Marshal(doc)
	var d Doc
	if name != "" {
		d, err = a.reg.SetGroupConfig(name, b)
	} else {
		d, err = a.reg.SetStationConfig(id, b)
	}
	if err != nil {
		a.fail(w, http.StatusBadRequest, "invalid_request", "%v", err)
		return
	}
	reply(w, http.StatusOK, d)
}

func (a *API) putGroup(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Group string `json:"group"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		a.fail(w, http.StatusBadRequest, "invalid_request", "body: %v", err)
		return
	}
	d, err := a.reg.SetGroup(r.PathValue("id"), body.Group)
	if err != nil {
		a.fail(w, http.StatusBadRequest, "invalid_request", "%v", err)
		return
	}
	reply(w, http.StatusOK, d)
}

func (a *API) command(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name string          `json:"name"`
		Args json.RawMessage `json:"args"`
		TTL  int             `json:"ttl_s"` // 0: 5 minutes; -1: no expiry
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		a.fail(w, http.StatusBadRequest, "invalid_request", "body: %v", err)
		return
	}
	ttl := 5 * time.Minute
	switch {
	case body.TTL < 0:
		ttl = 0
	case body.TTL > 0:
		ttl = time.Duration(body.TTL) * time.Second
	}
	target := r.PathValue("id")
	if n := r.PathValue("name"); n != "" {
		target = "group:" + n
	}
	c, err := a.reg.Send(target, newID("cmd_"), body.Name, body.Args, ttl)
	if err != nil {
		a.fail(w, http.StatusBadRequest, "invalid_request", "%v", err)
		return
	}
	reply(w, http.StatusAccepted, c)
}

func (a *API) getCommand(w http.ResponseWriter, r *http.Request) {
	c, ok := a.reg.CommandStatus(r.PathValue("id"))
	if !ok {
		a.fail(w, http.StatusNotFound, "not_found", "no command %q", r.PathValue("id"))
		return
	}
	reply(w, http.StatusOK, c)
}

// events streams the registry's events as server-sent events until the client goes away.
func (a *API) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		a.fail(w, http.StatusInternalServerError, "internal", "streaming unsupported")
		return
	}
	ch, cancel := a.reg.Subscribe()
	defer cancel()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": fleet events\n\n")
	fl.Flush()
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-ping.C:
			fmt.Fprint(w, ": ping\n\n")
		case e := <-ch:
			b, _ := json.Marshal(e)
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.Kind, b)
		}
		fl.Flush()
	}
}

// MergePatch applies an RFC 7396 JSON merge patch to target: objects merge member by member,
// null removes a member, anything else replaces.
func MergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	out := make(map[string]any, len(t))
	for k, v := range t {
		out[k] = v
	}
	for k, v := range p {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = MergePatch(out[k], v)
	}
	return out
}
