package devcloud

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"labelstation/protocol"
)

// The attack suite against Mosquitto 2 configured as docs/deploy-broker.md says, with the files
// of deploy/mosquitto: the test starts its own Mosquitto on a free port.

// mosquittoTarget starts Mosquitto with deploy/mosquitto's configuration, stations st-a and
// st-b (B in group warehouse, as the cloud would write it) and the service account.
func mosquittoTarget(t *testing.T) target {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		t.Skip("mosquitto not installed: apt-get install -y mosquitto (the test starts its own instance)")
	}
	passwd, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		t.Skip("mosquitto_passwd not installed: apt-get install -y mosquitto")
	}
	dir := t.TempDir()
	secret := func() string {
		b := make([]byte, 16)
		rand.Read(b)
		return hex.EncodeToString(b)
	}
	tg := target{a: cred{"st-a", secret()}, b: cred{"st-b", secret()}, svc: cred{"devcloud", secret()}, group: "warehouse"}
	tg.again = func(c cred) cred { return c }
	pwFile := filepath.Join(dir, "lrs.passwd")
	for i, c := range []cred{tg.a, tg.b, tg.svc} {
		args := []string{"-b", pwFile, c.user, c.pass}
		if i == 0 {
			args = append([]string{"-c"}, args...)
		}
		if out, err := exec.Command(passwd, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v: %s", err, out)
		}
	}
	acl, err := os.ReadFile(filepath.Join("..", "deploy", "mosquitto", "lrs.acl"))
	if err != nil {
		t.Fatal(err)
	}
	// The group section the cloud writes from its registry.
	acl = append(acl, fmt.Sprintf("\nuser %[1]s\ntopic read %[2]s\ntopic read %[3]s\n", tg.b.user,
		protocol.GroupTopic(tg.group, protocol.LeafConfigDesired), protocol.GroupTopic(tg.group, protocol.LeafCmd))...)
	aclFile := filepath.Join(dir, "lrs.acl")
	if err := os.WriteFile(aclFile, acl, 0o600); err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(filepath.Join("..", "deploy", "mosquitto", "mosquitto.conf"))
	if err != nil {
		t.Fatal(err)
	}

	for attempt := 0; ; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		_, port, _ := net.SplitHostPort(addr)
		c := string(conf)
		for _, r := range []struct{ re, with string }{
			{`(?m)^password_file .*$`, "password_file " + pwFile},
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
		confFile := filepath.Join(dir, "mosquitto.conf")
		if err := os.WriteFile(confFile, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd := exec.Command(bin, "-c", confFile)
		cmd.Stderr, cmd.Stdout = &stderr, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		up := false
		deadline := time.Now().Add(waitFor)
		for !up && time.Now().Before(deadline) {
			select {
			case err := <-exited:
				if attempt < 3 && strings.Contains(stderr.String(), "in use") {
					goto retry
				}
				t.Fatalf("mosquitto exited: %v\n%s", err, stderr.String())
			case <-time.After(50 * time.Millisecond): // polling a port that is not yet open
			}
			if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				conn.Close()
				up = true
			}
		}
		if !up {
			cmd.Process.Kill()
			t.Fatalf("mosquitto did not listen on %s:\n%s", addr, stderr.String())
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-exited
			if t.Failed() {
				t.Logf("mosquitto log:\n%s", stderr.String())
			}
		})
		tg.addr = addr
		return tg
	retry:
	}
}

// TestMosquittoAttackWillInjection: Mosquitto 2.0 accepts the CONNECT with a forbidden will
// but checks the ACL when the will is due and drops it; nothing reaches B.
func TestMosquittoAttackWillInjection(t *testing.T) {
	accepted, tried := attackWillInjection(t, mosquittoTarget(t))
	t.Logf("Mosquitto accepted %d of %d CONNECTs with a forbidden will; none of the wills was published", accepted, tried)
}

func TestMosquittoAttackRetainedConfigInjection(t *testing.T) {
	attackRetainedInjection(t, mosquittoTarget(t))
}

func TestMosquittoAttackGroupEavesdrop(t *testing.T) {
	// Mosquitto 2.0 grants the SUBACK and checks the ACL at every delivery: A gets nothing.
	attackGroupEavesdrop(t, mosquittoTarget(t))
}

// TestMosquittoClientIDIsUserName: with use_username_as_clientid, B cannot take A's client id;
// A stays connected. (A thief holding A's own password does replace A: Mosquitto cannot refuse
// that, see docs/deploy-broker.md.)
func TestMosquittoClientIDIsUserName(t *testing.T) {
	tg := mosquittoTarget(t)
	real := mustConnect(t, tg.addr, tg.a.user, tg.a.user, tg.a.pass)
	real.subscribe(t, protocol.StationFilter(tg.a.user))
	thief := mustConnect(t, tg.addr, tg.a.user, tg.b.user, tg.b.pass)
	thief.subscribe(t, protocol.StationFilter(tg.a.user))
	svc := mustConnect(t, tg.addr, "fleet", tg.svc.user, tg.svc.pass)
	svc.publish(t, st(tg.a.user, protocol.LeafJob), false, "for A")
	real.until(t, st(tg.a.user, protocol.LeafJob), "for A")
	select {
	case err := <-real.lost:
		t.Fatalf("A lost its connection to B claiming its client id: %v", err)
	default:
	}
	svc.publish(t, st(tg.b.user, protocol.LeafJob), false, "for B")
	thief.subscribe(t, protocol.StationFilter(tg.b.user))
	svc.publish(t, st(tg.b.user, protocol.LeafJob), false, "for B")
	if got := thief.until(t, st(tg.b.user, protocol.LeafJob), "for B"); len(got) != 0 {
		t.Fatalf("B, claiming A's client id, read A's topics: %s", describe(got))
	}
}
