package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"
)

// errNoMosquitto says the external-broker benchmark cannot run on this machine.
var errNoMosquitto = errors.New("mosquitto or mosquitto_passwd not installed: apt-get install -y mosquitto (the benchmark starts its own instance)")

// mosquitto is a Mosquitto 2 of the benchmark's own: the deployed configuration and ACL with
// only the paths, the listener (a free loopback port) and the files moved to a temporary
// directory. Logins are checked against a password file, as in production.
type mosquitto struct {
	URL    string
	cmd    *exec.Cmd
	dir    string
	pwFile string
	logins map[string]string
	exited chan error
}

// startMosquitto runs Mosquitto with deployDir's mosquitto.conf and lrs.acl and the given
// logins (user name → password).
func startMosquitto(deployDir string, logins map[string]string) (*mosquitto, error) {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		return nil, errNoMosquitto
	}
	if _, err := exec.LookPath("mosquitto_passwd"); err != nil {
		return nil, errNoMosquitto
	}
	dir, err := os.MkdirTemp("", "bench-mosquitto-")
	if err != nil {
		return nil, err
	}
	m := &mosquitto{dir: dir, pwFile: filepath.Join(dir, "lrs.passwd"), logins: map[string]string{}, exited: make(chan error, 1)}
	fail := func(err error) (*mosquitto, error) {
		m.Close()
		return nil, err
	}
	if err := m.AddLogins(logins); err != nil {
		return fail(err)
	}
	acl, err := os.ReadFile(filepath.Join(deployDir, "lrs.acl"))
	if err != nil {
		return fail(fmt.Errorf("the deployed ACL: %w", err))
	}
	aclFile := filepath.Join(dir, "lrs.acl")
	if err := os.WriteFile(aclFile, acl, 0o600); err != nil {
		return fail(err)
	}
	conf, err := os.ReadFile(filepath.Join(deployDir, "mosquitto.conf"))
	if err != nil {
		return fail(fmt.Errorf("the deployed configuration: %w", err))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	c := string(conf)
	for _, r := range []struct{ re, with string }{
		{`(?m)^password_file .*$`, "password_file " + m.pwFile},
		{`(?m)^acl_file .*$`, "acl_file " + aclFile},
		{`(?m)^persistence_location .*$`, "persistence_location " + dir + "/"},
		{`(?m)^listener 1883$`, "listener " + port + " 127.0.0.1"},
	} {
		re := regexp.MustCompile(r.re)
		if !re.MatchString(c) {
			return fail(fmt.Errorf("%s has no line %s", filepath.Join(deployDir, "mosquitto.conf"), r.re))
		}
		c = re.ReplaceAllString(c, r.with)
	}
	if u, err := user.Current(); err == nil && u.Uid == "0" {
		c += "\nuser root\n" // as root Mosquitto would switch to user mosquitto, who cannot read these files
	}
	c += "\nlog_dest stderr\n"
	confFile := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confFile, []byte(c), 0o600); err != nil {
		return fail(err)
	}
	logf, err := os.Create(filepath.Join(dir, "mosquitto.log"))
	if err != nil {
		return fail(err)
	}
	defer logf.Close()
	m.cmd = exec.Command(bin, "-c", confFile)
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	if err := m.cmd.Start(); err != nil {
		return fail(err)
	}
	go func() { m.exited <- m.cmd.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			break
		}
		select {
		case err := <-m.exited:
			m.exited <- err
			return fail(fmt.Errorf("mosquitto exited: %v\n%s", err, m.logTail()))
		case <-time.After(50 * time.Millisecond): // polling a port that is not open yet
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("mosquitto did not listen on %s:\n%s", addr, m.logTail()))
		}
	}
	m.URL = "tcp://" + addr
	return m, nil
}

// AddLogins writes the password file with these logins added (mosquitto_passwd hashes it) and,
// once Mosquitto runs, has it reload the file and waits until it says so.
func (m *mosquitto) AddLogins(logins map[string]string) error {
	for u, p := range logins {
		if strings.ContainsAny(u, ":\n") || strings.Contains(p, "\n") {
			return fmt.Errorf("login %q cannot go into a Mosquitto password file", u)
		}
		m.logins[u] = p
	}
	users := make([]string, 0, len(m.logins))
	for u := range m.logins {
		users = append(users, u)
	}
	sort.Strings(users)
	var b strings.Builder
	for _, u := range users {
		fmt.Fprintf(&b, "%s:%s\n", u, m.logins[u])
	}
	if err := os.WriteFile(m.pwFile, []byte(b.String()), 0o600); err != nil {
		return err
	}
	if out, err := exec.Command("mosquitto_passwd", "-U", m.pwFile).CombinedOutput(); err != nil {
		return fmt.Errorf("mosquitto_passwd -U: %v: %s", err, out)
	}
	if m.cmd == nil {
		return nil
	}
	before := strings.Count(m.log(), "Reloading config")
	if err := m.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		return fmt.Errorf("reloading mosquitto: %w", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for strings.Count(m.log(), "Reloading config") == before {
		if time.Now().After(deadline) {
			return fmt.Errorf("mosquitto did not reload its password file:\n%s", m.logTail())
		}
		time.Sleep(20 * time.Millisecond) // polling the log Mosquitto writes
	}
	return nil
}

// RSS is Mosquitto's resident memory in KiB.
func (m *mosquitto) RSS() int64 {
	rss, _ := procStatus(fmt.Sprintf("/proc/%d/status", m.cmd.Process.Pid))
	return rss
}

// log is Mosquitto's log so far.
func (m *mosquitto) log() string {
	b, _ := os.ReadFile(filepath.Join(m.dir, "mosquitto.log"))
	return string(b)
}

// logTail is the end of Mosquitto's log, for an error message.
func (m *mosquitto) logTail() string {
	s := m.log()
	if len(s) > 4<<10 {
		s = s[len(s)-4<<10:]
	}
	return s
}

// Close stops Mosquitto and removes its files.
func (m *mosquitto) Close() error {
	if m.cmd != nil && m.cmd.Process != nil {
		m.cmd.Process.Kill()
		<-m.exited
	}
	return os.RemoveAll(m.dir)
}
