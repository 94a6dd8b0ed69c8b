package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"

	"labelstation/internal/fleettest"
)

// A fleet manager's session against a real cloud and a real station: list, group membership
// through config of the group, a refused patch, a command, and the exit codes.
func TestFleetVerbs(t *testing.T) {
	c := fleettest.StartCloud(t)
	tok, err := c.UserToken(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	id, paper, _ := fleettest.RunStation(t, c, t.TempDir(), "CTL-1")
	flags := []string{"--cloud", c.URL, "--token", tok, "--timeout", "60s"}
	run1 := func(cmd string, args ...string) (string, error) {
		var out bytes.Buffer
		all := append(append([]string{}, flags...), args...)
		if cmd == "config" { // the verb comes first: config VERB [flags] ...
			all = append(append([]string{args[0]}, flags...), args[1:]...)
		}
		err := run(cmd, all, &out)
		return out.String(), err
	}
	// The station is listed once its first config is in.
	if out, err := run1("config", "patch", id, `{"release": {"mode": "confirm"}}`); err != nil || !strings.Contains(out, "accepted") {
		t.Fatalf("config patch: %v\n%s", err, out)
	}
	// Group membership, then the group's config: every member answers.
	if out, err := run1("group", id, "lab"); err != nil || !strings.Contains(out, "accepted") {
		t.Fatalf("group: %v\n%s", err, out)
	}
	if out, err := run1("config", "set", "group:lab", `{"v": 1, "printer": {"dpi": 300}}`); err != nil || !strings.Contains(out, id) || !strings.Contains(out, "accepted") {
		t.Fatalf("group config: %v\n%s", err, out)
	}
	out, err := run1("ls")
	if err != nil || !strings.Contains(out, id) || !strings.Contains(out, "yes") || !strings.Contains(out, "lab") {
		t.Fatalf("ls: %v\n%s", err, out)
	}
	out, err = run1("config", "patch", id, `{"display": {"rotate": 45}}`)
	if !errors.Is(err, errRejected) || exitCode(err) != exitRejected || !strings.Contains(out, "display.rotate") {
		t.Fatalf("bad patch: %v\n%s", err, out)
	}
	out, err = run1("config", "get", "--json", id)
	var d struct{ Config json.RawMessage }
	var compact bytes.Buffer
	if err == nil && json.Unmarshal([]byte(out), &d) == nil {
		json.Compact(&compact, d.Config)
	}
	if got := compact.String(); !strings.Contains(got, `"rotate":45`) || !strings.Contains(got, `"mode":"confirm"`) || !strings.Contains(got, `"hash_key"`) {
		t.Fatalf("config get: %v\n%s", err, out)
	}
	out, err = run1("cmd", id, "test_print")
	if err != nil || !strings.Contains(out, "done") || paper.Labels() != 1 {
		t.Fatalf("cmd test_print: %v, %d labels\n%s", err, paper.Labels(), out)
	}
	out, err = run1("cmd", id, "log_level", "level=loud")
	if exitCode(err) != exitRejected || !strings.Contains(out, "failed") {
		t.Fatalf("cmd log_level loud: %v\n%s", err, out)
	}
	out, err = run1("show", id)
	if err != nil || !strings.Contains(out, "refused") || !strings.Contains(out, id) {
		t.Fatalf("show: %v\n%s", err, out)
	}

	// Nobody listening: unreachable.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	err = run("ls", []string{"--cloud", "http://" + addr, "--token", tok}, &bytes.Buffer{})
	if exitCode(err) != exitUnreachable {
		t.Fatalf("unreachable cloud: %v", err)
	}
	// A group without members answers at once; a station that never answers times out.
	err = run("config", append(append([]string{"set"}, flags[:4]...), "--timeout", "1s", "nobody-here", `{"v": 1}`), &bytes.Buffer{})
	if exitCode(err) != exitTimedOut {
		t.Fatalf("no answer: %v", err)
	}
}
