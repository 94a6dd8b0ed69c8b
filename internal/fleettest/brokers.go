package fleettest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"labelstation/devcloud"
	"labelstation/devcloud/fleet"
	"labelstation/devcloud/seed"
)

// Broker is an MQTT broker a fleet test runs against.
type Broker struct {
	// URL is where stations and the cloud connect; empty for devcloud's embedded broker.
	URL string
	// Grant lets a station read its group's topics, as the cloud's ACL writer would; nil where
	// the broker asks the cloud (embedded) or has no per-user ACL (NATS as set up here).
	Grant func(t *testing.T, station, group string)
	// ACLFile and PIDFile are a Mosquitto's acl_file and a file with its process id.
	ACLFile, PIDFile string
	// CloudACL makes StartCloudOn let devcloud write ACLFile and reload the broker by PIDFile.
	CloudACL bool
}

// StartCloudOn starts devcloud on b: its embedded broker when b.URL is empty, else as a
// client of the external broker, logged in as "devcloud".
func StartCloudOn(t *testing.T, b Broker) *devcloud.Cloud {
	t.Helper()
	if b.URL == "" {
		return StartCloud(t)
	}
	sd, err := seed.Load(seedPath())
	if err != nil {
		t.Fatal(err)
	}
	h, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opt := devcloud.Options{HTTP: h, Broker: b.URL, BrokerUser: "devcloud", BrokerPass: secret(),
		ServiceClientID: "devcloud", Seed: sd, FleetAdmins: []string{"alice"}, PollEvery: time.Second}
	if b.CloudACL {
		opt.MosquittoACL = &fleet.ACLOptions{Path: b.ACLFile, Reload: fleet.ReloadPID(b.PIDFile), Logger: debugLog()}
	}
	c, err := devcloud.Start(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func secret() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// freePort returns a loopback port nobody listens on right now.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// lines collects a process's output and tells waiters when a line containing a text came.
type lines struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	grown chan struct{}
}

func newLines(r io.Reader) *lines {
	l := &lines{grown: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			l.mu.Lock()
			l.buf.WriteString(sc.Text() + "\n")
			close(l.grown)
			l.grown = make(chan struct{})
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// wait returns once text occurs n times, false after d.
func (l *lines) wait(text string, n int, d time.Duration) bool {
	deadline := time.After(d)
	for {
		l.mu.Lock()
		got, ch := strings.Count(l.buf.String(), text), l.grown
		l.mu.Unlock()
		if got >= n {
			return true
		}
		select {
		case <-ch:
		case <-deadline:
			return false
		}
	}
}

// Mosquitto starts a Mosquitto 2 of its own on a free port with deploy/mosquitto's
// configuration, or skips when it is not installed. The ACL file is the deployed one; Grant
// appends a station's group section and reloads it (SIGHUP), as the cloud does. Passwords are
// not checked: stations log in with their OAuth access token, which only a token plugin can
// verify (docs/deploy-broker.md), so the test allows any password and keeps every ACL rule.
func Mosquitto(t *testing.T) Broker {
	t.Helper()
	return mosquitto(t, "")
}

// mosquitto is Mosquitto with extraACL appended to the deployed ACL file.
func mosquitto(t testing.TB, extraACL string) Broker {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		t.Skip("mosquitto not installed: apt-get install -y mosquitto (the test starts its own instance)")
	}
	dir := t.TempDir()
	deploy := filepath.Join(filepath.Dir(seedPath()), "..", "deploy", "mosquitto")
	acl, err := os.ReadFile(filepath.Join(deploy, "lrs.acl"))
	if err != nil {
		t.Fatal(err)
	}
	acl = append(acl, extraACL...)
	aclFile := filepath.Join(dir, "lrs.acl")
	if err := os.WriteFile(aclFile, acl, 0o600); err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(filepath.Join(deploy, "mosquitto.conf"))
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	c := string(conf)
	for _, r := range []struct{ re, with string }{
		{`(?m)^allow_anonymous false$`, "allow_anonymous true"},
		{`(?m)^password_file .*$`, ""},
		{`(?m)^acl_file .*$`, "acl_file " + aclFile},
		{`(?m)^persistence true$`, "persistence false"},
		{`(?m)^persistence_location .*$`, ""},
		{`(?m)^listener 1883$`, "listener " + port + " 127.0.0.1"},
	} {
		re := regexp.MustCompile(r.re)
		if !re.MatchString(c) {
			t.Fatalf("deploy/mosquitto/mosquitto.conf has no line %s", r.re)
		}
		c = re.ReplaceAllString(c, r.with)
	}
	if u, err := user.Current(); err == nil && u.Uid == "0" {
		c += "\nuser root\n" // as root Mosquitto would switch to user mosquitto, who cannot read the test's files
	}
	c += "\nlog_dest stderr\nlog_type all\n"
	confFile := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confFile, []byte(c), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", confFile)
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	log := newLines(out)
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", log.String())
		}
	})
	if !log.wait("running", 1, 15*time.Second) {
		t.Fatalf("mosquitto did not start:\n%s", log.String())
	}
	pidFile := filepath.Join(dir, "mosquitto.pid")
	if err := os.WriteFile(pidFile, []byte(fmt.Sprintln(cmd.Process.Pid)), 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	reloads := 0
	return Broker{URL: "tcp://127.0.0.1:" + port, ACLFile: aclFile, PIDFile: pidFile, Grant: func(t *testing.T, station, group string) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		f, err := os.OpenFile(aclFile, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(f, groupACL(station, group))
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		reloads++
		if !log.wait("Reloading config", reloads, 15*time.Second) {
			t.Fatalf("mosquitto did not reload its ACL:\n%s", log.String())
		}
	}}
}

// NATS starts a nats-server of its own with its MQTT gateway on a free port (JetStream, which
// keeps MQTT sessions and retained messages, in a temporary directory), or skips when it is
// not installed. It runs without accounts: any user name and password log in.
func NATS(t *testing.T) Broker {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Skip("nats-server not installed: apt-get install -y nats-server (the test starts its own instance)")
	}
	dir := t.TempDir()
	port := freePort(t)
	// ack_wait: a QoS 1 message that went to a connection just closing is redelivered after
	// this long (NATS' default is 30 s).
	conf := fmt.Sprintf("server_name: lrs_fleet\nlisten: 127.0.0.1:-1\njetstream { store_dir: %q }\nmqtt { listen: \"127.0.0.1:%s\", ack_wait: \"1s\" }\n",
		filepath.Join(dir, "js"), port)
	confFile := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", confFile)
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	log := newLines(out)
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("nats-server log:\n%s", log.String())
		}
	})
	if !log.wait("Listening for MQTT clients", 1, 15*time.Second) {
		t.Fatalf("nats-server MQTT gateway did not come up:\n%s", log.String())
	}
	return Broker{URL: "tcp://127.0.0.1:" + port}
}

// Proxy forwards TCP to a broker and can cut every connection at once, as a pulled network
// cable would: the broker sees the station vanish without a DISCONNECT and publishes its will.
type Proxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

// NewProxy listens on a free loopback port and forwards to target (tcp://host:port).
func NewProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln}
	t.Cleanup(func() { ln.Close(); p.Cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", strings.TrimPrefix(target, "tcp://"))
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, b)
			p.mu.Unlock()
			go func() { io.Copy(b, c); b.Close() }()
			go func() { io.Copy(c, b); c.Close() }()
		}
	}()
	return p
}

// URL is the proxy's broker URL.
func (p *Proxy) URL() string { return "tcp://" + p.ln.Addr().String() }

// Cut closes every connection made so far; new ones are still forwarded.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
