package fleet_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"labelstation/devcloud/fleet"
	"labelstation/internal/supervise"
)

// The file holds the template, then one section per station with the read rules of its groups,
// in a stable order; names that could widen a rule are refused.
func TestRenderACL(t *testing.T) {
	tmpl := []byte("user devcloud\ntopic readwrite lrs/v1/#")
	b, err := fleet.RenderACL(tmpl, map[string][]string{
		"st-b": {"lab"}, "st-a": {"warehouse", "lab", "lab"}, "st-c": nil,
	})
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	if !strings.HasPrefix(got, "user devcloud\ntopic readwrite lrs/v1/#\n") {
		t.Fatalf("template not first:\n%s", got)
	}
	want := "\nuser st-a\n" +
		"topic read lrs/v1/grp/lab/config/desired\ntopic read lrs/v1/grp/lab/cmd\n" +
		"topic read lrs/v1/grp/warehouse/config/desired\ntopic read lrs/v1/grp/warehouse/cmd\n" +
		"\nuser st-b\n" +
		"topic read lrs/v1/grp/lab/config/desired\ntopic read lrs/v1/grp/lab/cmd\n"
	if !strings.HasSuffix(got, want) {
		t.Fatalf("sections:\n%s\nwant them to end with:\n%s", got, want)
	}
	if strings.Contains(got, "st-c") {
		t.Fatalf("a station without groups got a section:\n%s", got)
	}
	for _, bad := range []map[string][]string{
		{"st-a": {"lab\nuser devcloud"}}, {"st-a": {"#"}}, {"st-a": {"a/b"}}, {"st-a": {"a+"}}, {"st a": {"lab"}},
	} {
		if _, err := fleet.RenderACL(tmpl, bad); err == nil || !strings.Contains(err.Error(), "fleet: mosquitto ACL: station") {
			t.Errorf("%q: err %v, want a refusal naming the station", bad, err)
		}
	}
}

// A burst of changes costs one write; a failed reload is retried until it succeeds, and a
// waiter is released only then.
func TestACLFileDebouncesAndRetries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lrs.acl")
	var mu sync.Mutex
	reloads, failNext := 0, 1 // the first reload, at start, fails
	a, err := fleet.NewACLFile(fleet.ACLOptions{
		Path: path, Template: []byte("# static\n"), Every: 200 * time.Millisecond,
		Backoff: supervise.Backoff{Min: time.Millisecond, Max: 5 * time.Millisecond},
		Reload: func() error {
			mu.Lock()
			defer mu.Unlock()
			if failNext > 0 {
				failNext--
				return errors.New("mosquitto not running")
			}
			reloads++
			return nil
		},
	}, map[string][]string{"st-1": {"lab"}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	read := func() string { b, _ := os.ReadFile(path); return string(b) }
	if got := read(); !strings.Contains(got, "user st-1\ntopic read lrs/v1/grp/lab/config/desired\n") {
		t.Fatalf("start file:\n%s", got)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("file mode: %v %v, want 0644 so Mosquitto reads it after dropping root", fi, err)
	}
	mu.Lock()
	failNext += 2
	mu.Unlock()
	var last <-chan struct{}
	for i := range 20 {
		last = a.Set("st-1", []string{"lab", "yard"}[i%2])
	}
	a.Set("st-2", "yard")
	last = a.Set("st-1")
	select {
	case <-last:
	case <-time.After(10 * time.Second):
		t.Fatal("the change was never written and reloaded")
	}
	got := read()
	if strings.Contains(got, "user st-1") || !strings.Contains(got, "user st-2\ntopic read lrs/v1/grp/yard/config/desired\ntopic read lrs/v1/grp/yard/cmd\n") {
		t.Fatalf("file after the burst:\n%s", got)
	}
	mu.Lock()
	defer mu.Unlock()
	// The start's, retried, and the burst in at most two writes (one may have started
	// mid-burst), after every failed reload was retried.
	if reloads < 1 || reloads > 3 || failNext != 0 {
		t.Fatalf("%d reloads, %d failures left: want the burst written at most twice after three failed reloads", reloads, failNext)
	}
}

// A file that cannot be written is an error at start, naming the package.
func TestACLFileUnwritable(t *testing.T) {
	_, err := fleet.NewACLFile(fleet.ACLOptions{Path: filepath.Join(t.TempDir(), "missing", "lrs.acl")}, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "fleet: mosquitto ACL: ") {
		t.Fatalf("err %v, want a mosquitto ACL error", err)
	}
}
