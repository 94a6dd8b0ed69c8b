package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"
)

func TestLoggerJSONForJournaldKeepsWarnings(t *testing.T) {
	var buf bytes.Buffer
	level := new(slog.LevelVar)
	level.Set(parseLevel("warn"))
	recent := newRecentLog(2)
	log := newLogger(&buf, true, level, recent).With("part", "printer")
	log.Info("not shown at warn")
	log.Warn("first", "n", 1)
	log.Error("second", "n", 2)
	log.Error("third", "n", 3)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 JSON lines at level warn, got %q", lines)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[2]), &rec); err != nil {
		t.Fatalf("not JSON: %q: %v", lines[2], err)
	}
	if rec["msg"] != "third" || rec["level"] != "ERROR" || rec["part"] != "printer" || rec["time"] != nil {
		t.Fatalf("record %v: want msg, level and attrs, no time of its own (journald stamps it)", rec)
	}
	got := recent.Entries()
	if len(got) != 2 || got[0].Msg != "second" || got[1].Msg != "third" || got[1].Attrs["part"] != "printer" || got[1].Attrs["n"] != "3" {
		t.Fatalf("recent = %+v; want the last two with their attrs", got)
	}
	level.Set(parseLevel("debug"))
	log.Debug("now shown")
	if !strings.Contains(buf.String(), "now shown") {
		t.Fatal("a level change did not take effect")
	}
}

func TestJournalStreamOnlyForOurStderr(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "stream")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	t.Setenv("JOURNAL_STREAM", "")
	if journalStream(f) {
		t.Fatal("journald without JOURNAL_STREAM")
	}
	t.Setenv("JOURNAL_STREAM", "1:2")
	if journalStream(f) {
		t.Fatal("JOURNAL_STREAM of another file taken as ours")
	}
	fi, _ := f.Stat()
	st := fi.Sys()
	t.Setenv("JOURNAL_STREAM", devIno(st))
	if !journalStream(f) {
		t.Fatal("our own stream not recognised")
	}
}
