package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"syscall"

	"labelstation/internal/statusapi"
)

// journalStream reports whether w is the stream systemd connected to journald: JOURNAL_STREAM
// holds "DEVICE:INODE" of that stream (systemd.exec(5)), and it is only ours if our stderr is
// that same file, not a terminal or pipe a child inherited the variable across.
func journalStream(w io.Writer) bool {
	js := os.Getenv("JOURNAL_STREAM")
	f, ok := w.(*os.File)
	if js == "" || !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	return devIno(fi.Sys()) == js
}

// parseLevel maps the config's log.level to slog's.
func parseLevel(s string) slog.Level {
	var l slog.Level
	if l.UnmarshalText([]byte(s)) != nil {
		return slog.LevelInfo
	}
	return l
}

// newLogger logs JSON lines under journald (one structured record per line, no timestamps of
// our own to clash with the journal's) and text elsewhere. Warnings and errors are also kept for
// `stationctl status`.
func newLogger(w io.Writer, json bool, level slog.Leveler, recent *recentLog) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if json {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(&recordingHandler{Handler: h, recent: recent})
}

// recentLog keeps the last warnings and errors, what an admin asks for first on a support call.
type recentLog struct {
	mu   sync.Mutex
	max  int
	errs []logEntry
}

type logEntry = statusapi.LogEntry

func newRecentLog(max int) *recentLog { return &recentLog{max: max} }

func (r *recentLog) add(e logEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, e)
	if len(r.errs) > r.max {
		r.errs = r.errs[len(r.errs)-r.max:]
	}
}

// Entries returns the kept entries, oldest first.
func (r *recentLog) Entries() []logEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]logEntry(nil), r.errs...)
}

// recordingHandler passes every record on and copies warnings and errors into recent.
type recordingHandler struct {
	slog.Handler
	recent *recentLog
	attrs  []slog.Attr
}

func (h *recordingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn && h.recent != nil {
		e := logEntry{Time: r.Time, Level: r.Level.String(), Msg: r.Message, Attrs: map[string]string{}}
		add := func(a slog.Attr) bool {
			e.Attrs[a.Key] = a.Value.Resolve().String()
			return true
		}
		for _, a := range h.attrs {
			add(a)
		}
		r.Attrs(add)
		h.recent.add(e)
	}
	return h.Handler.Handle(ctx, r)
}

func (h *recordingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &recordingHandler{Handler: h.Handler.WithAttrs(as), recent: h.recent, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *recordingHandler) WithGroup(name string) slog.Handler {
	return &recordingHandler{Handler: h.Handler.WithGroup(name), recent: h.recent, attrs: h.attrs}
}

// devIno formats a file's device and inode as JOURNAL_STREAM does.
func devIno(sys any) string {
	st, ok := sys.(*syscall.Stat_t)
	if !ok {
		return ""
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}
