package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"labelstation/board"
	"labelstation/devcloud"
	"labelstation/devcloud/auth"
	"labelstation/devcloud/seed"
	displaysim "labelstation/display/sim"
)

func startCloud(t *testing.T) *devcloud.Cloud {
	t.Helper()
	sd, err := seed.Load(filepath.Join("..", "..", "examples", "devcloud-seed.json"))
	if err != nil {
		t.Fatal(err)
	}
	h, _ := net.Listen("tcp", "127.0.0.1:0")
	m, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := devcloud.Start(ctx, devcloud.Options{HTTP: h, MQTT: m, Seed: sd})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestTokenSubmitApprove(t *testing.T) {
	c := startCloud(t)
	app := c.Seed.Apps[0]
	var out bytes.Buffer
	if err := run("token", []string{"--cloud", c.URL, "--client", app.ClientID, "--secret", app.Secret}, &out); err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(out.String())
	if err := run("token", []string{"--cloud", c.URL, "--client", app.ClientID, "--secret", "wrong"}, &bytes.Buffer{}); err == nil {
		t.Fatal("a wrong secret got a token")
	}

	data := filepath.Join(t.TempDir(), "records.csv")
	os.WriteFile(data, []byte("name,street,zip,city,tracking\nAda,1 Sq,1,London,TRK1\nGrace,2 Way,2,Arlington,TRK2\n"), 0o600)
	out.Reset()
	if err := run("submit", []string{"--cloud", c.URL, "--token", token, "--title", "From the CLI", "--format", "shipping", data}, &out); err != nil {
		t.Fatal(err)
	}
	var j struct {
		Labels int
		User   string
	}
	if err := json.Unmarshal(out.Bytes(), &j); err != nil || j.Labels != 2 || j.User != app.User {
		t.Fatalf("submit answered %s", out.String())
	}
	err := run("submit", []string{"--cloud", c.URL, "--token", token, "--title", "", "--format", "shipping", data}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "title") {
		t.Fatalf("submit without a title: %v", err)
	}

	// A station asks for a code (RFC 8628 §3.1); the CLI approves it.
	resp, err := http.PostForm(c.Auth.DeviceAuthURL(), url.Values{"client_id": {"station"}, "scope": {"printing offline_access"}, "serial_number": {"CLI-1"}})
	if err != nil {
		t.Fatal(err)
	}
	var da struct {
		UserCode string `json:"user_code"`
	}
	json.NewDecoder(resp.Body).Decode(&da)
	resp.Body.Close()
	if da.UserCode == "" {
		t.Fatal("no user code")
	}
	alice, err := c.Seed.UserByID("alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := run("approve", []string{"--cloud", c.URL, "--user", "alice", "--password", "guess", da.UserCode}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("approve with a wrong password: %v", err)
	}
	if err := run("approve", []string{"--cloud", c.URL, "--user", "alice", da.UserCode}, &bytes.Buffer{}); !errors.Is(err, errUsage) {
		t.Fatalf("approve without a password: %v", err)
	}
	out.Reset()
	if err := run("approve", []string{"--cloud", c.URL, "--user", "alice", "--password", alice.Password, da.UserCode}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "approved") {
		t.Fatalf("approve answered %s", out.String())
	}
	if err := run("approve", []string{"--cloud", c.URL, "--user", "alice", "--password", alice.Password, "NOPE-NOPE"}, &bytes.Buffer{}); err == nil {
		t.Fatal("an unknown code was approved")
	}
}

func TestTap(t *testing.T) {
	p, err := displaysim.New(displaysim.Options{Size: image.Pt(128, 64)})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	srv := httptest.NewServer(p.Handler(func(uid []byte) { got <- uid }, func(board.Press) {}))
	defer srv.Close()
	if err := run("tap", []string{"--station", srv.URL, "04A1B2C3"}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if uid := <-got; !bytes.Equal(uid, []byte{0x04, 0xA1, 0xB2, 0xC3}) {
		t.Fatalf("tapped %x", uid)
	}
	if err := run("tap", []string{"--station", srv.URL, "xyz"}, &bytes.Buffer{}); err == nil {
		t.Fatal("a bad UID was accepted")
	}
}

func TestUsage(t *testing.T) {
	if err := run("frobnicate", nil, &bytes.Buffer{}); !errors.Is(err, errUsage) {
		t.Fatalf("unknown command: %v", err)
	}
	if err := run("tap", nil, &bytes.Buffer{}); !errors.Is(err, errUsage) {
		t.Fatalf("tap without a UID: %v", err)
	}
}

func TestHashPassword(t *testing.T) {
	defer func(r io.Reader) { stdin = r }(stdin)
	stdin = strings.NewReader("a long enough secret\n")
	var out bytes.Buffer
	if err := run("hash-password", nil, &out); err != nil {
		t.Fatal(err)
	}
	h := strings.TrimSpace(out.String())
	srv, err := auth.New(auth.Options{Issuer: "http://127.0.0.1:1", Users: []auth.User{{ID: "alice", PasswordHash: []byte(h)}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.SignIn("alice", "a long enough secret"); err != nil {
		t.Fatalf("the printed hash does not check the password: %v", err)
	}
	stdin = strings.NewReader("short\n")
	if err := run("hash-password", nil, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "12 characters") {
		t.Fatalf("short password: %v", err)
	}
}
