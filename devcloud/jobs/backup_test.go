package jobs

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// fillForBackup stores a held job and a record, what a backup must carry.
func fillForBackup(t *testing.T, s Store) {
	t.Helper()
	now := time.Now()
	mustAdd(t, s, Job{ID: "held-1", User: "alice", Labels: 2, Data: []byte("a\n1\n"), State: StateHeld, Created: now, Updated: now})
	if err := recordsOf(t, s).PutRecord("auth.station", "st-1", []byte(`"SER-1"`)); err != nil {
		t.Fatal(err)
	}
}

func checkRestored(t *testing.T, s Store) {
	t.Helper()
	j, err := s.Get("held-1")
	if err != nil || j.State != StateHeld || string(j.Data) != "a\n1\n" {
		t.Fatalf("restored job: %+v %v", j, err)
	}
	if v, err := recordsOf(t, s).GetRecord("auth.station", "st-1"); err != nil || string(v) != `"SER-1"` {
		t.Fatalf("restored record: %s %v", v, err)
	}
}

// The backup procedures of docs/deploy.md: a copy of the bolt file taken while devcloud is
// stopped, and pg_dump / pg_restore into an empty database, open with everything in them.
func TestBackupAndRestore(t *testing.T) {
	t.Run("bolt", func(t *testing.T) {
		dir := t.TempDir()
		s, err := OpenBolt(filepath.Join(dir, "devcloud.db"))
		if err != nil {
			t.Fatal(err)
		}
		fillForBackup(t, s)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		copyFile(t, filepath.Join(dir, "devcloud.db"), filepath.Join(dir, "backup.db"))
		restored, err := OpenBolt(filepath.Join(dir, "backup.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer restored.Close()
		checkRestored(t, restored)
	})
	t.Run("postgres", func(t *testing.T) {
		for _, tool := range []string{"pg_dump", "pg_restore"} {
			if _, err := exec.LookPath(tool); err != nil {
				t.Skipf("%s not installed (apt-get install postgresql-client)", tool)
			}
		}
		src, dst := testPostgres(t), testPostgres(t)
		s, err := OpenPostgres(context.Background(), src)
		if err != nil {
			t.Fatal(err)
		}
		fillForBackup(t, s)
		s.Close()
		dump := filepath.Join(t.TempDir(), "devcloud.dump")
		if out, err := exec.Command("pg_dump", "--format=custom", "--file="+dump, "--dbname="+src).CombinedOutput(); err != nil {
			t.Fatalf("pg_dump: %v\n%s", err, out)
		}
		if out, err := exec.Command("pg_restore", "--no-owner", "--dbname="+dst, dump).CombinedOutput(); err != nil {
			t.Fatalf("pg_restore: %v\n%s", err, out)
		}
		restored, err := OpenPostgres(context.Background(), dst)
		if err != nil {
			t.Fatal(err)
		}
		defer restored.Close()
		checkRestored(t, restored)
	})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
