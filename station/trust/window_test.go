package trust

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"labelstation/protocol"
)

// A job message's id is not written while the job's first label is on its way: the file is
// untouched by its Commit, written by the delayed save (Flush here), and then refuses the
// replay after a restart as before. A command is still written before Commit returns.
func TestJobIDWrittenLater(t *testing.T) {
	clk := &clock{t: t0}
	dir := t.TempDir()
	file := filepath.Join(dir, WindowFile)
	k := newSigner(t, "k1", clk.Now)
	keys := StaticKeys{k.pub}
	job := protocol.StationTopic("st-b", protocol.LeafJob)
	cmd := protocol.StationTopic("st-b", protocol.LeafCmd)
	v := newVerifier(t, dir, keys, clk.Now)
	v.opt.Window.delay = time.Hour // only Flush writes in this test
	b := k.seal(t, job, `{"v":2,"id":"j1"}`)
	if err := accept(v, job, b); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("window file after a job's Commit: %v, want not written yet", err)
	}
	if err := accept(v, job, b); !errors.Is(err, protocol.ErrReplay) {
		t.Fatalf("replay before the write: %v, want ErrReplay (the id is in memory)", err)
	}
	if err := v.opt.Window.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := accept(newVerifier(t, dir, keys, clk.Now), job, b); !errors.Is(err, protocol.ErrReplay) {
		t.Fatalf("replay after restart: %v, want ErrReplay", err)
	}

	// A command is on disk when Commit returns, and carries any job id still in memory.
	b2 := k.seal(t, job, `{"v":2,"id":"j2"}`)
	if err := accept(v, job, b2); err != nil {
		t.Fatal(err)
	}
	if err := accept(v, cmd, k.seal(t, cmd, `{"v":2,"id":"c1","name":"reboot"}`)); err != nil {
		t.Fatal(err)
	}
	if err := accept(newVerifier(t, dir, keys, clk.Now), job, b2); !errors.Is(err, protocol.ErrReplay) {
		t.Fatalf("job id written with the command, replayed after restart: %v, want ErrReplay", err)
	}
}

// The delayed save runs by itself.
func TestJobIDSavedAfterDelay(t *testing.T) {
	clk := &clock{t: t0}
	dir := t.TempDir()
	k := newSigner(t, "k1", clk.Now)
	job := protocol.StationTopic("st-b", protocol.LeafJob)
	b := k.seal(t, job, `{"v":2,"id":"j1"}`)
	v := newVerifier(t, dir, StaticKeys{k.pub}, clk.Now)
	v.opt.Window.delay = time.Millisecond
	if err := accept(v, job, b); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		w, err := OpenWindow(filepath.Join(dir, WindowFile))
		if err != nil {
			t.Fatal(err)
		}
		if w.Len() == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the job id never reached the file")
		}
		time.Sleep(5 * time.Millisecond) // polling the file, not synchronising
	}
}
