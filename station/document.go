package station

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"labelstation/label"
	"labelstation/station/config"
	"labelstation/station/journal"
)

// printDocument prints a ready-made document job (ZPL, TSPL, PDF, PNG) through the same
// confirmation protocol as printJob (printRun). Every label is rendered before the first is
// sent, so a document the printer cannot take (ZPL for a TSPL printer, a PDF without pdftoppm
// installed) fails with a clear status and prints nothing.
func (s *Station) printDocument(ctx context.Context, e journal.Entry) (err error) {
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
	if f == label.DocZPL && cfg.ZPLPrefix != "" {
		for i := range labels {
			labels[i] = prefixZPL(labels[i], cfg.ZPLPrefix)
		}
	}
	// The cloud counted the labels; a document that renders more prints none of them.
	if err := e.Job.CheckLabel(len(labels)); err != nil {
		return fmt.Errorf("document: %w", err)
	}
	total := len(labels)
	r, done, err := s.startRun(ctx, e, total)
	defer func() { r.keepConfirmed(err) }()
	if err != nil {
		return err
	}
	for i, data := range labels {
		if i+1 <= done {
			continue // confirmed before a restart
		}
		if err := r.add(ctx, data); err != nil {
			return err
		}
	}
	if err := r.flush(ctx); err != nil {
		return err
	}
	if r.counter == nil && r.faulted {
		if err := s.waitReady(ctx); err != nil {
			return err
		}
	}
	return r.settle()
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

// prefixZPL puts the station's setup commands (printer.zpl_prefix, checked by the config)
// right after the label's ^XA, so they apply to this label and any setting the document makes
// itself still wins. The label is a block SplitZPLDocument returned, so it has a ^XA; downloads
// before it hold no ^.
func prefixZPL(lbl []byte, prefix string) []byte {
	i := bytes.Index(bytes.ToUpper(lbl), []byte("^XA"))
	if i < 0 {
		return lbl
	}
	out := make([]byte, 0, len(lbl)+len(prefix))
	out = append(out, lbl[:i+3]...)
	out = append(out, prefix...)
	return append(out, lbl[i+3:]...)
}

// fontCache holds the fonts of printer.font_dir, read once per directory: a CJK font is
// megabytes to parse, too slow to repeat for every job.
type fontCache struct {
	mu  sync.Mutex
	dir string
	fs  *label.FontSet
}

func (c *fontCache) get(dir string) (*label.FontSet, error) {
	if dir == "" {
		return nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fs != nil && c.dir == dir {
		return c.fs, nil
	}
	fs, err := label.LoadFontDir(dir)
	if err != nil {
		return nil, err // not cached: a directory fixed later is read by the next job
	}
	c.dir, c.fs = dir, fs
	return fs, nil
}

// target is how labels are rendered for this station's printer, with the fonts of
// printer.font_dir. A font directory that cannot be read leaves the built-in fonts, so jobs
// they cover still print; the error is logged and returned for the message of a job that
// needed more.
func (s *Station) target(cfg config.Printer) (label.Target, error) {
	t := label.Target{Lang: label.Lang(cfg.Lang), DPI: cfg.DPI, Raster: cfg.Raster}
	fs, err := s.fonts.get(cfg.FontDir)
	if err != nil {
		s.log.Error("station: printer.font_dir", "err", err)
		return t, fmt.Errorf("printer.font_dir: %w", err)
	}
	t.Fonts = fs
	return t, nil
}
