package main

import (
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
)

// The --mosquitto-* flags go together and name what is wrong.
func TestMosquittoACLFlags(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	for _, c := range []struct {
		f    flags
		want string
	}{
		{flags{MosquittoPID: "/run/m.pid"}, "need --mosquitto-acl"},
		{flags{MosquittoACL: "a", MosquittoPID: "p", MosquittoReload: "true"}, "give one of them"},
		{flags{MosquittoACL: "a", MosquittoACLTemplate: filepath.Join(dir, "none")}, "--mosquitto-acl-template: "},
	} {
		if _, err := mosquittoACL(c.f, log); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err %v, want %q", c.f, err, c.want)
		}
	}
	o, err := mosquittoACL(flags{MosquittoACL: filepath.Join(dir, "lrs.acl"), MosquittoReload: "exit 3"}, log)
	if err != nil || o == nil || o.Path != filepath.Join(dir, "lrs.acl") || o.Template != nil {
		t.Fatalf("options %+v, %v", o, err)
	}
	if err := o.Reload(); err == nil || !strings.Contains(err.Error(), `"exit 3"`) {
		t.Fatalf("a failing reload command: %v", err)
	}
	if o, err := mosquittoACL(flags{}, log); o != nil || err != nil {
		t.Fatalf("without flags: %+v %v", o, err)
	}
}
