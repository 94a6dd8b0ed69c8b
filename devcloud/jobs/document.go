package jobs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"labelstation/label"
)

// fetchTimeout bounds fetching a document_url.
const fetchTimeout = 30 * time.Second

// sniffDocument guesses a document's format from its first bytes.
func sniffDocument(b []byte) label.Format {
	t := bytes.TrimLeft(b, " \t\r\n")
	switch {
	case bytes.HasPrefix(b, []byte("%PDF-")):
		return label.DocPDF
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return label.DocPNG
	case bytes.HasPrefix(t, []byte("^")), bytes.HasPrefix(t, []byte("~")):
		return label.DocZPL
	}
	return label.DocTSPL
}

// fetchDocument gets a document_url with the submission's byte limit and a timeout.
func fetchDocument(ctx context.Context, raw string, limit int64) ([]byte, string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, "", fmt.Errorf("document_url: %q is not an http(s) URL", raw)
	}
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, "", fmt.Errorf("document_url: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("document_url: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("document_url: %s answered %s", u.Redacted(), resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, "", fmt.Errorf("document_url: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, "", fmt.Errorf("%w: document_url: more than %d bytes (limit %d bytes per submission)", label.ErrTooLarge, limit, limit)
	}
	return b, resp.Header.Get("Content-Type"), nil
}

// checkDocument validates a document as far as the cloud can without knowing the station:
// ZPL and TSPL must be complete and harmless, PNG must decode, and a PDF must render (at
// 72 dpi: the station renders again at its printer's resolution). It returns the labels.
func (st *submitState) checkDocument(ctx context.Context, f label.Format, doc []byte, wMM, hMM float64) (int, error) {
	var labels [][]byte
	var err error
	switch f {
	case label.DocZPL:
		labels, err = label.SplitZPLDocument(doc)
	case label.DocTSPL:
		labels, err = label.SplitTSPLDocument(doc)
	default:
		labels, err = label.RenderDocument(ctx, f, doc, label.DocOptions{WidthMM: wMM, HeightMM: hMM}, label.Target{Lang: label.LangPNG, DPI: 100})
	}
	if err != nil {
		return 0, err
	}
	if len(labels) > st.opt.MaxLabels {
		return 0, fmt.Errorf("%w: %d labels (limit %d labels per job)", errTooManyLabels, len(labels), st.opt.MaxLabels)
	}
	return len(labels), nil
}

// submitDocument takes a ready-made label document. PDF and PNG need a layout (format) for the
// label size they are fitted to; ZPL and TSPL print as they are, on a printer of their language.
func (s *Service) submitDocument(w http.ResponseWriter, r *http.Request, user string, sub submission) {
	st := &s.submitCfg
	doc := sub.Doc
	if sub.DocURL != "" {
		if len(doc) > 0 {
			s.fail(w, r, http.StatusBadRequest, "invalid_request", "document: give a document or a document_url, not both")
			return
		}
		b, ct, err := fetchDocument(r.Context(), sub.DocURL, st.opt.MaxBytes)
		if errors.Is(err, label.ErrTooLarge) {
			s.fail(w, r, http.StatusRequestEntityTooLarge, "too_large", "%v", err)
			return
		}
		if err != nil {
			s.fail(w, r, http.StatusBadRequest, "invalid_request", "%v", err)
			return
		}
		doc = b
		if sub.DocFormat == "" {
			if f, _ := label.ParseDocFormat(ct); f != "" {
				sub.DocFormat = string(f)
			}
		}
	}
	f := sniffDocument(doc)
	if sub.DocFormat != "" {
		var err error
		if f, err = label.ParseDocFormat(sub.DocFormat); err != nil || f == "" {
			s.fail(w, r, http.StatusBadRequest, "invalid_request", "document_format: %q (want zpl, tspl, pdf or png)", sub.DocFormat)
			return
		}
	}
	var wMM, hMM float64
	if sub.Layout != "" {
		lay, ok := s.seed.Layouts[sub.Layout]
		if !ok {
			s.fail(w, r, http.StatusBadRequest, "invalid_request", "format: unknown layout %q", sub.Layout)
			return
		}
		wMM, hMM = lay.Parsed.WidthMM, lay.Parsed.HeightMM
	} else if f == label.DocPDF || f == label.DocPNG {
		s.fail(w, r, http.StatusBadRequest, "invalid_request", "format: required for a %s document (the layout whose label size it is fitted to)", f)
		return
	}
	now := s.now()
	j := Job{
		ID: newID("job_"), Title: sub.Title, Layout: sub.Layout, User: user,
		DataFormat: string(f), Created: now, Updated: now,
	}
	s.stamp(&j, sub)
	prepare := func() (int, []byte, []string, error) {
		n, err := st.checkDocument(context.Background(), f, doc, wMM, hMM)
		return n, doc, nil, err
	}
	if int64(len(doc)) > st.opt.SyncBytes {
		j.State = StateValidating
		s.store.Add(j)
		go s.validateLater(j.ID, sub.NotifyURL, prepare)
		s.reply(w, r, http.StatusAccepted, j)
		return
	}
	n, _, _, err := prepare()
	switch {
	case errors.Is(err, errTooManyLabels):
		s.fail(w, r, http.StatusUnprocessableEntity, "too_many_labels", "document: %v", err)
		return
	case errors.Is(err, label.ErrNoRenderer):
		s.fail(w, r, http.StatusUnprocessableEntity, "no_renderer", "document: %v", err)
		return
	case err != nil:
		s.fail(w, r, http.StatusBadRequest, "invalid_request", "document: %v", strings.TrimPrefix(err.Error(), "label: "))
		return
	}
	j.State, j.Labels, j.Data = StateHeld, n, doc
	s.store.Add(j)
	s.log.Info("jobs: held", "job", j.ID, "user", user, "document", f, "labels", n)
	s.reply(w, r, http.StatusCreated, j)
}
