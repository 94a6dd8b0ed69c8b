package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"labelstation/internal/fleettest"
)

// An administrator registers an application and lists it; a bad redirect is refused naming
// the field; a user who is not an administrator is refused.
func TestAppRegisterAndList(t *testing.T) {
	c := fleettest.StartCloud(t)
	tok, err := c.UserToken(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = run("app", []string{"register", "--cloud", c.URL, "--token", tok, "--json", "--name", "Shop", "--description", "Web shop",
		"--icon", "https://shop.example/i.png", "--redirect", "https://shop.example/cb", "--redirect", "http://127.0.0.1/callback"}, &out)
	var a registeredApp
	if err != nil || json.Unmarshal(out.Bytes(), &a) != nil || !strings.HasPrefix(a.ClientID, "app-") || a.ClientSecret == "" || len(a.RedirectURIs) != 2 {
		t.Fatalf("register: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := run("app", []string{"ls", "--cloud", c.URL, "--token", tok}, &out); err != nil || !strings.Contains(out.String(), a.ClientID) || !strings.Contains(out.String(), "Shop") || strings.Contains(out.String(), a.ClientSecret) {
		t.Fatalf("ls: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := run("app", []string{"rm", "--cloud", c.URL, "--token", tok, a.ClientID}, &out); err != nil || !strings.Contains(out.String(), "removed "+a.ClientID) {
		t.Fatalf("rm: %v\n%s", err, out.String())
	}
	if err := run("app", []string{"rm", "--cloud", c.URL, "--token", tok, a.ClientID}, &out); err == nil || !strings.Contains(err.Error(), "invalid_client_id") {
		t.Fatalf("rm twice: %v", err)
	}
	out.Reset()
	if err := run("app", []string{"ls", "--cloud", c.URL, "--token", tok}, &out); err != nil || strings.Contains(out.String(), a.ClientID) {
		t.Fatalf("ls after rm: %v\n%s", err, out.String())
	}
	out.Reset()
	err = run("app", []string{"register", "--cloud", c.URL, "--token", tok, "--name", "Bad", "--redirect", "https://x.example/cb#frag"}, &out)
	if err == nil || !strings.Contains(err.Error(), "redirect_uris[0]") {
		t.Fatalf("bad redirect: %v", err)
	}
	bob, err := c.UserToken(context.Background(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	if err := run("app", []string{"ls", "--cloud", c.URL, "--token", bob}, &out); err == nil || !strings.Contains(err.Error(), "insufficient_scope") {
		t.Fatalf("ls as bob: %v", err)
	}
	if err := run("app", []string{"register", "--cloud", c.URL, "--token", tok}, &out); !errors.Is(err, errUsage) {
		t.Fatalf("register without --name: %v, want a usage error", err)
	}
}
