package jobs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"labelstation/label"
)

// Defaults of SubmitOptions.
const (
	MaxSubmitBytes   = 16 << 20
	DefaultMaxLabels = 100_000
	DefaultSyncBytes = 1 << 20
)

// SubmitOptions are the job API's limits. The zero value gives the defaults.
type SubmitOptions struct {
	// MaxBytes bounds a request; a larger one gets 413. Default MaxSubmitBytes.
	MaxBytes int64
	// MaxLabels bounds the labels of one job, copies included; more is 422 (or a rejected
	// job when validated after the request). Default DefaultMaxLabels.
	MaxLabels int
	// SyncBytes is the largest data validated within the request (201 Created, or 400 with
	// the reason). Larger data is accepted as 202 in state validating and checked in the
	// background: the job then becomes held, or rejected with the reason.
	// Default DefaultSyncBytes.
	SyncBytes int64
	// Targets are the printer languages and resolutions a job must print in; every record is
	// checked for each. Default label.AllTargets (the cloud does not know which station
	// will release the job).
	Targets []label.Target
	// FontDir holds the fonts the fleet's stations have beyond the built-in ones; text with
	// a character no font has is refused.
	FontDir string
	// Validators bounds concurrent background validations. Default 1.
	Validators int
}

type submitState struct {
	opt   SubmitOptions
	fonts *label.FontSet
	sem   chan struct{}
}

func (st *submitState) init(o SubmitOptions) error {
	if o.MaxBytes <= 0 {
		o.MaxBytes = MaxSubmitBytes
	}
	if o.MaxLabels <= 0 {
		o.MaxLabels = DefaultMaxLabels
	}
	if o.SyncBytes <= 0 {
		o.SyncBytes = DefaultSyncBytes
	}
	if len(o.Targets) == 0 {
		o.Targets = label.AllTargets
	}
	if o.Validators <= 0 {
		o.Validators = 1
	}
	fonts, err := label.LoadFontDir(o.FontDir)
	if err != nil {
		return fmt.Errorf("jobs: %w", err)
	}
	o.Targets = slices.Clone(o.Targets)
	for i := range o.Targets {
		o.Targets[i].Fonts = fonts
	}
	st.opt, st.fonts, st.sem = o, fonts, make(chan struct{}, o.Validators)
	return nil
}

// apiError is the error body of every failed call, in the shape common to public REST APIs:
// a stable code to branch on, a message for people, and an id to find the request in logs.
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

// jsonpName restricts the JSONP callback to a plain JavaScript name, so it cannot inject script.
var jsonpName = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$.]{0,63}$`)

func (s *Service) reply(w http.ResponseWriter, r *http.Request, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"code":"internal","message":"encoding the response failed"}`)
	}
	// The name comes from a form already parsed, else the query: parsing a body here could
	// read an unbounded upload just to answer an error.
	cb := r.URL.Query().Get("callback")
	if r.Form != nil {
		cb = r.Form.Get("callback")
	}
	if cb != "" && jsonpName.MatchString(cb) {
		w.Header().Set("Content-Type", "application/javascript")
		w.WriteHeader(status)
		fmt.Fprintf(w, "%s(%s);\n", cb, body)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

func (s *Service) fail(w http.ResponseWriter, r *http.Request, status int, code, format string, args ...any) {
	e := apiError{Code: code, Message: fmt.Sprintf(format, args...), ID: newID("req_")}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	s.log.Info("jobs: request failed", "req", e.ID, "status", status, "code", code, "message", e.Message)
	s.reply(w, r, status, e)
}

// caller authenticates the request: an OAuth bearer token in the Authorization header (RFC 6750
// §2.1) or the oauth_token parameter, as the Submit Print Job API allows.
func (s *Service) caller(r *http.Request) (Caller, error) {
	tok := ""
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, rest, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || rest == "" {
			return Caller{}, errors.New("the Authorization header is not a Bearer token")
		}
		tok = strings.TrimSpace(rest)
	} else {
		tok = r.FormValue("oauth_token")
	}
	if tok == "" {
		return Caller{}, errors.New("no access token: send Authorization: Bearer <token> or oauth_token")
	}
	if s.opt.VerifyCaller != nil {
		c, err := s.opt.VerifyCaller(r.Context(), tok)
		if err != nil {
			return Caller{}, fmt.Errorf("the access token is not valid: %v", err)
		}
		return c, nil
	}
	uid, err := s.verifyUser(r.Context(), tok)
	if err != nil {
		return Caller{}, fmt.Errorf("the access token is not valid: %v", err)
	}
	return Caller{User: uid}, nil
}

// submission is the Submit Print Job request: title, format (layout id), data.
type submission struct {
	Title      string
	Layout     string
	Data       []byte
	DataFormat string
	// Charset of Data from the upload part's Content-Type; data_format may name one too.
	Charset string
	// A ready-made document (ZPL, TSPL, PDF, PNG) instead of records: uploaded, or fetched
	// from DocURL.
	Doc       []byte
	DocFormat string
	DocURL    string
	// NotifyURL is told (POST of the job as JSON) when a job accepted as 202 is held or rejected.
	NotifyURL string
	// Callback is the webhook URL told of the job's end; in a form, a plain JavaScript name
	// there asks for a JSONP answer instead.
	Callback string
	// Caller submitted the job.
	Caller Caller
}

func (s *Service) parseSubmission(r *http.Request) (submission, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var sub submission
	switch ct {
	case "application/json":
		var body struct {
			Title      string          `json:"title"`
			Format     string          `json:"format"`
			Data       json.RawMessage `json:"data"`
			DataFormat string          `json:"data_format"`
			Document   []byte          `json:"document"` // base64
			DocFormat  string          `json:"document_format"`
			DocURL     string          `json:"document_url"`
			NotifyURL  string          `json:"notify_url"`
			Callback   string          `json:"callback"`
		}
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			return sub, fmt.Errorf("body: %w", err)
		}
		sub.Title, sub.Layout, sub.DataFormat = body.Title, body.Format, body.DataFormat
		sub.Doc, sub.DocFormat, sub.DocURL, sub.NotifyURL = body.Document, body.DocFormat, body.DocURL, body.NotifyURL
		sub.Callback = body.Callback
		var str string
		switch {
		case len(body.Data) == 0 || string(body.Data) == "null":
		case json.Unmarshal(body.Data, &str) == nil:
			// A JSON string is Unicode already: a charset in data_format does not apply.
			sub.Data = []byte(str)
			if f, _, err := label.ParseDataFormat(sub.DataFormat); err == nil {
				sub.DataFormat = string(f)
			}
		default: // records given as JSON directly
			sub.Data = body.Data
			if sub.DataFormat == "" {
				sub.DataFormat = "json"
			}
		}
	case "multipart/form-data":
		if err := r.ParseMultipartForm(32 << 20); err != nil {
			return sub, fmt.Errorf("body: %w", err)
		}
		sub.Title, sub.Layout, sub.DataFormat = r.FormValue("title"), r.FormValue("format"), r.FormValue("data_format")
		if f, hdr, err := r.FormFile("data"); err == nil {
			defer f.Close()
			b, err := io.ReadAll(f)
			if err != nil {
				return sub, fmt.Errorf("data: %w", err)
			}
			sub.Data = b
			if _, params, err := mime.ParseMediaType(hdr.Header.Get("Content-Type")); err == nil {
				sub.Charset = params["charset"]
			}
			if sub.DataFormat == "" {
				sub.DataFormat = strings.TrimPrefix(strings.ToLower(filepath.Ext(hdr.Filename)), ".")
			}
		} else {
			sub.Data = []byte(r.FormValue("data"))
		}
		sub.DocFormat, sub.DocURL, sub.NotifyURL = r.FormValue("document_format"), r.FormValue("document_url"), r.FormValue("notify_url")
		sub.Callback = formCallback(r.FormValue("callback"))
		if f, hdr, err := r.FormFile("document"); err == nil {
			defer f.Close()
			b, err := io.ReadAll(f)
			if err != nil {
				return sub, fmt.Errorf("document: %w", err)
			}
			sub.Doc = b
			if sub.DocFormat == "" {
				sub.DocFormat = hdr.Header.Get("Content-Type")
			}
		} else {
			sub.Doc = []byte(r.FormValue("document"))
		}
	default: // application/x-www-form-urlencoded or query parameters
		if err := r.ParseForm(); err != nil {
			return sub, fmt.Errorf("body: %w", err)
		}
		sub.Title, sub.Layout, sub.DataFormat = r.FormValue("title"), r.FormValue("format"), r.FormValue("data_format")
		sub.Data = []byte(r.FormValue("data"))
		sub.Doc, sub.DocFormat, sub.DocURL = []byte(r.FormValue("document")), r.FormValue("document_format"), r.FormValue("document_url")
		sub.NotifyURL = r.FormValue("notify_url")
		sub.Callback = formCallback(r.FormValue("callback"))
	}
	return sub, nil
}

// sniff guesses the data format when the submitter did not say.
func sniff(b []byte) string {
	t := bytes.TrimLeft(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")), " \t\r\n")
	switch {
	case bytes.HasPrefix(b, []byte("PK\x03\x04")):
		return "xlsx"
	case bytes.HasPrefix(t, []byte("{")), bytes.HasPrefix(t, []byte("[")):
		return "json"
	case bytes.HasPrefix(t, []byte("<")):
		return "xml"
	}
	return "csv"
}

// errTooManyLabels is wrapped when a job exceeds SubmitOptions.MaxLabels.
var errTooManyLabels = errors.New("too many labels")

// validateJob reads and checks every record once for every target, so malformed data, a record
// the layout cannot print (a missing field, letters in an EAN-13, a character no font has, a
// code too big for the label at some resolution) or a job over the label limit is refused with
// the record number, never discovered at the printer. It returns the label count.
// maxWarnings bounds the warnings kept on a job: the first few say what to fix.
const maxWarnings = 20

func (st *submitState) validateJob(l *label.Layout, f label.Format, data []byte, charset string) (int, []string, error) {
	rr, err := label.NewRecordReader(f, bytes.NewReader(data), label.ReadOptions{Charset: charset, MaxBytes: st.opt.MaxBytes, MaxRows: st.opt.MaxLabels + 1})
	if err != nil {
		return 0, nil, err
	}
	var warnings []string
	seen := map[string]bool{}
	if c, ok := rr.(io.Closer); ok {
		defer c.Close()
	}
	n, records := 0, 0
	for {
		rec, err := rr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, nil, err
		}
		records++
		c, err := l.Copies(rec)
		if err != nil {
			return 0, nil, fmt.Errorf("record %d: %w", records, err)
		}
		if n += c; n > st.opt.MaxLabels {
			return 0, nil, fmt.Errorf("%w: record %d brings the job past %d labels (limit %d labels per job)", errTooManyLabels, records, st.opt.MaxLabels, st.opt.MaxLabels)
		}
		ws, err := label.Validate(l, rec, st.opt.Targets)
		if err != nil {
			return 0, nil, fmt.Errorf("record %d: %w", records, err)
		}
		for _, w := range ws {
			if len(warnings) < maxWarnings && !seen[w] {
				seen[w] = true
				warnings = append(warnings, fmt.Sprintf("record %d: %s", records, w))
			}
		}
	}
	if n == 0 {
		return 0, nil, errors.New("no records")
	}
	return n, warnings, nil
}

// prepare validates a job's data and turns it into UTF-8 for the stations.
func (st *submitState) prepare(l *label.Layout, f label.Format, data []byte, charset string) (int, []byte, []string, error) {
	n, warnings, err := st.validateJob(l, f, data, charset)
	if err != nil {
		return 0, nil, nil, err
	}
	out, err := label.NormalizeUTF8(f, data, charset)
	return n, out, warnings, err
}

func (s *Service) submit(w http.ResponseWriter, r *http.Request) {
	st := &s.submitCfg
	r.Body = http.MaxBytesReader(w, r.Body, st.opt.MaxBytes)
	caller, err := s.caller(r)
	if err != nil {
		s.fail(w, r, http.StatusUnauthorized, "unauthorized", "%v", err)
		return
	}
	user := caller.User
	sub, err := s.parseSubmission(r)
	sub.Caller = caller
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		s.fail(w, r, http.StatusRequestEntityTooLarge, "too_large", "the request is larger than %d bytes (limit %d bytes per submission)", st.opt.MaxBytes, st.opt.MaxBytes)
		return
	case err != nil:
		s.fail(w, r, http.StatusBadRequest, "invalid_request", "%v", err)
		return
	}
	if strings.TrimSpace(sub.Title) == "" {
		s.fail(w, r, http.StatusBadRequest, "invalid_request", "title: required (the job description shown on the station)")
		return
	}
	if len(sub.Title) > 200 {
		s.fail(w, r, http.StatusBadRequest, "invalid_request", "title: longer than 200 bytes")
		return
	}
	if sub.NotifyURL != "" {
		if u, err := url.Parse(sub.NotifyURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			s.fail(w, r, http.StatusBadRequest, "invalid_request", "notify_url: %q is not an http(s) URL", sub.NotifyURL)
			return
		}
	}
	if err := s.checkCallback(sub); err != nil {
		s.fail(w, r, http.StatusBadRequest, "invalid_request", "callback: %v", err)
		return
	}
	if len(sub.Doc) > 0 || sub.DocURL != "" {
		s.submitDocument(w, r, user, sub)
		return
	}
	if sub.Layout == "" {
		s.fail(w, r, http.StatusBadRequest, "invalid_request", "format: required (the layout id)")
		return
	}
	lay, ok := s.seed.Layouts[sub.Layout]
	if !ok {
		s.fail(w, r, http.StatusBadRequest, "invalid_request", "format: unknown layout %q", sub.Layout)
		return
	}
	if len(sub.Data) == 0 {
		s.fail(w, r, http.StatusBadRequest, "invalid_request", "data: required (CSV, JSON, XML or Excel records)")
		return
	}
	if sub.DataFormat == "" {
		sub.DataFormat = sniff(sub.Data)
	}
	f, cs, err := label.ParseDataFormat(sub.DataFormat)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "invalid_request", "data_format: %v", err)
		return
	}
	if sub.Charset != "" {
		if cs != "" && !strings.EqualFold(cs, sub.Charset) {
			s.fail(w, r, http.StatusBadRequest, "invalid_request", "data: the upload says charset=%s, data_format says charset=%s", sub.Charset, cs)
			return
		}
		cs = sub.Charset
	}
	now := s.now()
	j := Job{
		ID: newID("job_"), Title: sub.Title, Layout: sub.Layout, User: user,
		DataFormat: string(f), Created: now, Updated: now,
	}
	s.stamp(&j, sub)
	if int64(len(sub.Data)) > st.opt.SyncBytes {
		// Too large to check within the request: the caller follows the job's state.
		j.State = StateValidating
		if !s.add(w, r, j) {
			return
		}
		s.log.Info("jobs: validating", "job", j.ID, "user", user, "layout", j.Layout, "bytes", len(sub.Data))
		go s.validateLater(j.ID, sub.NotifyURL, func() (int, []byte, []string, error) { return st.prepare(lay.Parsed, f, sub.Data, cs) })
		s.reply(w, r, http.StatusAccepted, j)
		return
	}
	n, data, warnings, err := st.prepare(lay.Parsed, f, sub.Data, cs)
	switch {
	case errors.Is(err, errTooManyLabels):
		s.fail(w, r, http.StatusUnprocessableEntity, "too_many_labels", "data: %v", err)
		return
	case errors.Is(err, label.ErrTooLarge):
		s.fail(w, r, http.StatusRequestEntityTooLarge, "too_large", "data: %v", err)
		return
	case err != nil:
		s.fail(w, r, http.StatusBadRequest, "invalid_request", "data: %v", err)
		return
	}
	j.State, j.Labels, j.Data, j.Warnings = StateHeld, n, data, warnings
	if !s.add(w, r, j) {
		return
	}
	s.log.Info("jobs: held", "job", j.ID, "user", user, "layout", j.Layout, "labels", n)
	s.reply(w, r, http.StatusCreated, j)
}

// validateLater runs one background validation at a time per SubmitOptions.Validators and
// records the outcome on the job; a panic in the label engine rejects the job instead of
// leaving it validating forever.
func (s *Service) validateLater(id, notifyURL string, prepare func() (int, []byte, []string, error)) {
	st := &s.submitCfg
	st.sem <- struct{}{}
	defer func() { <-st.sem }()
	var (
		n        int
		out      []byte
		warnings []string
		err      error
	)
	func() {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("internal error while validating: %v", p)
			}
		}()
		n, out, warnings, err = prepare()
	}()
	reason := ""
	if err != nil {
		reason = "data: " + err.Error()
	}
	j, uerr := untilNotBusy(func() (Job, error) { return s.store.Validated(id, n, out, warnings, reason, s.now()) })
	if uerr != nil && j.State == StateCancelled {
		s.log.Info("jobs: validated a job cancelled meanwhile", "job", id)
		return
	}
	if uerr != nil {
		s.log.Error("jobs: validation result", "job", id, "err", uerr)
		return
	}
	s.log.Info("jobs: validated", "job", id, "state", j.State, "labels", j.Labels, "error", j.Error)
	if notifyURL != "" {
		if err := notify(notifyURL, j); err != nil {
			s.log.Warn("jobs: notify_url", "job", id, "err", err)
		}
	}
}

// notify POSTs the job to the submitter's notify_url once validation has decided its state.
func notify(u string, j Job) error {
	body, err := json.Marshal(j)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %s", u, resp.Status)
	}
	return nil
}

// add stores a new job, or answers 500 and reports false.
func (s *Service) add(w http.ResponseWriter, r *http.Request, j Job) bool {
	if err := s.store.Add(j); err != nil {
		s.storeFailed(w, r, err, "the job could not be stored; submit it again")
		return false
	}
	return true
}
