package station

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"labelstation/label"
	"labelstation/station/journal"
)

// printDocument prints a ready-made document job (ZPL, TSPL, PDF, PNG). Every label is rendered
// before the first is sent, so a document the printer cannot take (ZPL for a TSPL printer, a
// PDF without pdftoppm installed) fails with a clear status and prints nothing.
func (s *Station) printDocument(ctx context.Context, e journal.Entry) error {
	cfg := s.config().Printer
	f, _ := label.ParseDocFormat(e.Job.Format)
	var opt label.DocOptions
	if raw := bytes.TrimSpace(e.Job.Layout); len(raw) > 0 && string(raw) != "null" {
		lay, err := label.ParseLayout(raw)
		if err != nil {
			return fmt.Errorf("layout: %w", err)
		}
		opt.WidthMM, opt.HeightMM = lay.WidthMM, lay.HeightMM
	}
	target := label.Target{Lang: label.Lang(cfg.Lang), DPI: cfg.DPI, Raster: cfg.Raster}
	labels, err := label.RenderDocument(ctx, f, e.Job.Data, opt, target)
	if err != nil {
		return fmt.Errorf("document: %w", err)
	}
	s.post(PrintProgress{Title: e.Job.Title, Done: e.Printed, Total: len(labels)})
	for i, data := range labels {
		n := i + 1
		if n <= e.Printed {
			continue // accepted before a restart
		}
		if err := s.waitReady(ctx); err != nil {
			return err
		}
		if err := s.send(ctx, data); err != nil {
			return err
		}
		if _, err := s.opt.Journal.Progress(e.Job.ID, n); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		s.post(PrintProgress{Title: e.Job.Title, Done: n, Total: len(labels)})
	}
	return nil
}

// checkJob renders every label of a record job in a dry run before the first is sent, so a
// record this station cannot print (a character its fonts lack, a code too big at its
// resolution) fails the job with a clear status having printed nothing.
func checkJob(lay *label.Layout, f label.Format, data []byte, target label.Target) error {
	rr, err := label.NewRecordReader(f, bytes.NewReader(data), label.ReadOptions{})
	if err != nil {
		return err
	}
	if c, ok := rr.(io.Closer); ok {
		defer c.Close()
	}
	for n := 1; ; n++ {
		rec, err := rr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := label.Validate(lay, rec, []label.Target{target}); err != nil {
			return fmt.Errorf("record %d: %w", n, err)
		}
	}
}
