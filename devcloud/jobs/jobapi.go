package jobs

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// route is one endpoint of the job API; the mux and the OpenAPI test both read routes().
type route struct {
	method, pattern string
	handle          http.HandlerFunc
}

func (s *Service) routes() []route {
	return []route{
		{http.MethodPost, "/v1/jobs", s.submit},
		{http.MethodGet, "/v1/jobs", s.list},
		{http.MethodGet, "/v1/jobs/{id}", s.get},
		{http.MethodDelete, "/v1/jobs/{id}", s.cancelJob},
		{http.MethodPost, "/v1/jobs/{id}/cancel", s.cancelJob},
		{http.MethodGet, "/v1/openapi.json", s.openAPI},
	}
}

// Handler serves the job API (routes), every answer rate limited and every error in the
// {code, message, id} shape, unknown paths and methods included.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	allow := map[string][]string{}
	for _, rt := range s.routes() {
		mux.HandleFunc(rt.method+" "+rt.pattern, rt.handle)
		allow[rt.pattern] = append(allow[rt.pattern], rt.method)
	}
	for pattern, methods := range allow {
		list := strings.Join(methods, ", ")
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", list)
			s.fail(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "%s %s: allowed methods are %s", r.Method, r.URL.Path, list)
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, http.StatusNotFound, "not_found", "%s: no such endpoint (the API is described at /v1/openapi.json)", r.URL.Path)
	})
	return s.rateLimit(mux)
}

// stamp gives a new job its owner's application, callback and expiry.
func (s *Service) stamp(j *Job, sub submission) {
	j.App, j.Callback = sub.Caller.App, sub.Callback
	j.Expires = j.Created.Add(s.retention(sub.Caller.App))
}

// formCallback reads a form's callback parameter: a plain JavaScript name asks for a JSONP
// answer (reply), anything else is the webhook URL.
func formCallback(v string) string {
	if jsonpName.MatchString(v) {
		return ""
	}
	return v
}

// checkCallback refuses a webhook URL that is not absolute http(s), or one whose calls could
// not be signed.
func (s *Service) checkCallback(sub submission) error {
	if sub.Callback == "" {
		return nil
	}
	u, err := url.Parse(sub.Callback)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL (a JSONP function name is taken only in a form or the query)", sub.Callback)
	}
	if len(sub.Callback) > 2000 {
		return errors.New("longer than 2000 bytes")
	}
	if sub.Caller.App == "" {
		return errors.New("the access token names no application, whose secret would sign the calls")
	}
	if s.opt.Apps == nil {
		return fmt.Errorf("application %q is not registered for callbacks", sub.Caller.App)
	}
	if _, ok := s.opt.Apps.App(sub.Caller.App); !ok {
		return fmt.Errorf("application %q is not registered for callbacks", sub.Caller.App)
	}
	return nil
}

// Paging of GET /v1/jobs.
const (
	defaultPage = 50
	maxPage     = 200
)

// jobPage is the answer of GET /v1/jobs.
type jobPage struct {
	Jobs []Job `json:"jobs"`
	// NextCursor, when set, fetches the next page (cursor=…); absent on the last page.
	NextCursor string `json:"next_cursor,omitempty"`
}

var allStates = []string{StateValidating, StateHeld, StateReleased, StateClaimed, StatePrinting,
	StatePrinted, StateFailed, StateRejected, StateCancelled, StateExpired}

// cursor marks the last job of a page: its creation time and id, the list's order.
func encodeCursor(j Job) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(j.Created.UnixNano(), 10) + ":" + j.ID))
}

func decodeCursor(c string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		ns, id, ok := strings.Cut(string(b), ":")
		if n, perr := strconv.ParseInt(ns, 10, 64); ok && perr == nil && id != "" {
			return time.Unix(0, n), id, nil
		}
	}
	return time.Time{}, "", fmt.Errorf("%q is not a cursor this API returned", c)
}

func (s *Service) list(w http.ResponseWriter, r *http.Request) {
	c, err := s.caller(r)
	if err != nil {
		s.fail(w, r, http.StatusUnauthorized, "unauthorized", "%v", err)
		return
	}
	q := r.URL.Query()
	var states []string
	for _, v := range q["state"] {
		for _, st := range strings.Split(v, ",") {
			if st = strings.TrimSpace(st); !slices.Contains(allStates, st) {
				s.fail(w, r, http.StatusBadRequest, "invalid_request", "state: unknown state %q (one of %s)", st, strings.Join(allStates, ", "))
				return
			}
			states = append(states, st)
		}
	}
	limit := defaultPage
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > maxPage {
			s.fail(w, r, http.StatusBadRequest, "invalid_request", "limit: %q is not a number from 1 to %d", v, maxPage)
			return
		}
	}
	var after time.Time
	var afterID string
	if v := q.Get("cursor"); v != "" {
		if after, afterID, err = decodeCursor(v); err != nil {
			s.fail(w, r, http.StatusBadRequest, "invalid_request", "cursor: %v", err)
			return
		}
	}
	jobs, err := s.store.List(c.User, states...)
	if err != nil {
		s.storeFailed(w, r, err, "the jobs could not be read")
		return
	}
	if afterID != "" {
		i, _ := slices.BinarySearchFunc(jobs, Job{Created: after, ID: afterID}, func(a, b Job) int {
			if c := a.Created.Compare(b.Created); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		})
		if i < len(jobs) && jobs[i].ID == afterID {
			i++
		}
		jobs = jobs[i:]
	}
	page := jobPage{Jobs: []Job{}}
	if len(jobs) > limit {
		page.NextCursor = encodeCursor(jobs[limit-1])
		jobs = jobs[:limit]
	}
	page.Jobs = append(page.Jobs, jobs...)
	s.reply(w, r, http.StatusOK, page)
}

// owned reads job id for c: 404 when it does not exist or is another user's (its existence
// is not revealed), 500 when the store fails; ok is false after an error answer.
func (s *Service) owned(w http.ResponseWriter, r *http.Request, c Caller) (Job, bool) {
	id := r.PathValue("id")
	j, err := s.store.Get(id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		s.storeFailed(w, r, err, "the job could not be read")
		return j, false
	}
	if err != nil || j.User != c.User {
		s.fail(w, r, http.StatusNotFound, "not_found", "job %q: not found", id)
		return j, false
	}
	return j, true
}

func (s *Service) get(w http.ResponseWriter, r *http.Request) {
	c, err := s.caller(r)
	if err != nil {
		s.fail(w, r, http.StatusUnauthorized, "unauthorized", "%v", err)
		return
	}
	if j, ok := s.owned(w, r, c); ok {
		s.reply(w, r, http.StatusOK, j)
	}
}

// cancelJob withdraws a held job. Only the application that submitted it may (another app of
// the same user gets 403); a job a station already has answers 409.
func (s *Service) cancelJob(w http.ResponseWriter, r *http.Request) {
	c, err := s.caller(r)
	if err != nil {
		s.fail(w, r, http.StatusUnauthorized, "unauthorized", "%v", err)
		return
	}
	j, ok := s.owned(w, r, c)
	if !ok {
		return
	}
	if j.App != "" && j.App != c.App {
		s.fail(w, r, http.StatusForbidden, "forbidden", "job %q was submitted by application %q; only it may cancel the job", j.ID, j.App)
		return
	}
	j, err = s.store.Cancel(j.ID, s.now())
	switch {
	case errors.Is(err, ErrNotCancellable):
		s.fail(w, r, http.StatusConflict, "not_cancellable", "%s", strings.TrimPrefix(err.Error(), ErrNotCancellable.Error()+": "))
		return
	case err != nil:
		s.storeFailed(w, r, err, "the job could not be cancelled; try again")
		return
	}
	s.log.Info("jobs: cancelled", "job", j.ID, "user", j.User, "app", c.App)
	s.callbackQueued()
	s.reply(w, r, http.StatusOK, j)
}
