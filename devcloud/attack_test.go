package devcloud

import (
	"errors"
	"strings"
	"sync"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"labelstation/devcloud/broker"
	"labelstation/protocol"
)

// The attack suite: two enrolled stations A and B on a real broker, A's credentials in the
// attacker's hands. Each attack runs against devcloud's embedded broker and against Mosquitto
// with the configuration of deploy/mosquitto (mosquitto_test.go).

// cred is one MQTT login.
type cred struct{ user, pass string }

// target is a broker under attack.
type target struct {
	addr       string
	a, b, svc  cred
	group      string // B is a member, A is not
	strictWill bool   // the broker refuses a forbidden will at CONNECT (not only drops it later)
	// strictRetain: the broker refuses a station's retain flag on its own non-retained leaves.
	strictRetain bool
	// strictSubscribe: the broker answers SUBACK 0x80 to a group filter of a non-member.
	strictSubscribe bool
	// again returns the login a station uses to come back while its old session may still be
	// live: devcloud wants a newer token for that.
	again func(c cred) cred
}

const marker = "lrs/v1/st/marker/job"

func st(id, leaf string) string { return protocol.StationTopic(id, leaf) }

// attackWillInjection: A connects with a last will aimed at B's job or config topic (or at
// something else it may not publish) and drops the connection. Nothing may reach B. It returns
// how many of the CONNECTs the broker accepted.
func attackWillInjection(t *testing.T, tg target) (accepted, tried int) {
	A, B := tg.a.user, tg.b.user
	obs := mustConnect(t, tg.addr, "observer", tg.svc.user, tg.svc.pass)
	obs.subscribe(t, "lrs/v1/#")
	attacks := []struct {
		name string
		rc   rawConnect
	}{
		{"job onto B", rawConnect{willTopic: st(B, protocol.LeafJob), willPayload: []byte(jobPayload(B)), willQoS: 1}},
		{"retained config onto B", rawConnect{willTopic: st(B, protocol.LeafConfigDesired), willPayload: []byte(configPayload()), willQoS: 1, willRetain: true}},
		{"command onto B's group", rawConnect{willTopic: protocol.GroupTopic(tg.group, protocol.LeafCmd), willPayload: []byte(`{"v":1,"id":"cmd_INJECTED","name":"reboot"}`), willQoS: 1}},
		{"job onto A itself", rawConnect{willTopic: st(A, protocol.LeafJob), willPayload: []byte(jobPayload(A)), willQoS: 1}},
	}
	if tg.strictRetain {
		attacks = append(attacks,
			struct {
				name string
				rc   rawConnect
			}{"retained lookup on A", rawConnect{willTopic: st(A, protocol.LeafLookup), willPayload: []byte(`{"v":1,"INJECTED":true}`), willRetain: true}},
			struct {
				name string
				rc   rawConnect
			}{"presence of A saying it is B", rawConnect{willTopic: st(A, protocol.LeafPresence), willPayload: []byte(`{"v":1,"station":"` + B + `","online":false,"INJECTED":true}`), willRetain: true}},
		)
	}
	for _, at := range attacks {
		rc := at.rc
		rc.clientID, rc.user, rc.pass = A, A, tg.a.pass
		code, conn := rc.dial(t, tg.addr)
		tried++
		if code == 0 {
			accepted++
			if tg.strictWill {
				t.Errorf("will %s: CONNECT accepted, want refused", at.name)
			}
			conn.Close() // drop without DISCONNECT: a will would fire now
		}
	}
	// Control: a will A may publish does fire, so the silence above means something.
	good := rawConnect{clientID: A, user: A, pass: tg.a.pass, willTopic: st(A, protocol.LeafPresence),
		willPayload: []byte(`{"v":1,"station":"` + A + `","online":false}`), willQoS: 1, willRetain: true}
	code, conn := good.dial(t, tg.addr)
	if code != 0 {
		t.Fatalf("A's own presence will: CONNACK %d, want accepted", code)
	}
	conn.Close()
	before := obs.until(t, st(A, protocol.LeafPresence), string(good.willPayload))
	obs.publish(t, marker, false, "m1")
	before = append(before, obs.until(t, marker, "m1")...)
	for _, m := range before {
		if strings.Contains(string(m.Payload()), "INJECTED") {
			t.Errorf("a refused will was published: %s", describe([]paho.Message{m}))
		}
	}
	// Nothing retained either: a fresh subscriber (B after a restart) sees no injected message.
	fresh := mustConnect(t, tg.addr, "observer2", tg.svc.user, tg.svc.pass)
	fresh.subscribe(t, "lrs/v1/#")
	fresh.publish(t, marker, false, "m2")
	for _, m := range fresh.until(t, marker, "m2") {
		if strings.Contains(string(m.Payload()), "INJECTED") {
			t.Errorf("an injected will is retained: %s", describe([]paho.Message{m}))
		}
	}
	return accepted, tried
}

// attackRetainedInjection: A publishes retained config and jobs onto B's and its own cloud →
// station topics, and onto a group. B, subscribed before and after, sees none of it.
func attackRetainedInjection(t *testing.T, tg target) {
	A, B := tg.a.user, tg.b.user
	victim := mustConnect(t, tg.addr, B, B, tg.b.pass)
	victim.subscribe(t, protocol.StationFilter(B))
	attacker := mustConnect(t, tg.addr, A, A, tg.a.pass)
	attacks := []struct {
		topic  string
		retain bool
	}{
		{st(B, protocol.LeafConfigDesired), true},
		{st(B, protocol.LeafJob), true},
		{st(B, protocol.LeafJob), false},
		{st(B, protocol.LeafCmd), true},
		{st(A, protocol.LeafConfigDesired), true},
		{st(A, protocol.LeafJob), true},
		{protocol.GroupTopic(tg.group, protocol.LeafConfigDesired), true},
	}
	if tg.strictRetain {
		attacks = append(attacks, struct {
			topic  string
			retain bool
		}{st(A, protocol.LeafJobStatus), true})
	}
	for _, at := range attacks {
		if !attacker.IsConnectionOpen() {
			tg.a = tg.again(tg.a)
			attacker = mustConnect(t, tg.addr, A, A, tg.a.pass)
		}
		attacker.attemptForbiddenPublish(t, at.topic, at.retain, `{"v":1,"INJECTED":"`+at.topic+`"}`)
	}
	svc := mustConnect(t, tg.addr, "fleet", tg.svc.user, tg.svc.pass)
	svc.publish(t, st(B, protocol.LeafJob), false, "m1")
	if got := victim.until(t, st(B, protocol.LeafJob), "m1"); len(got) != 0 {
		t.Errorf("B received injected messages: %s", describe(got))
	}
	// After a restart B subscribes again: no injected retained message waits for it.
	victim.Disconnect(50)
	tg.b = tg.again(tg.b)
	again := mustConnect(t, tg.addr, B, B, tg.b.pass)
	again.subscribe(t, protocol.StationFilter(B), protocol.GroupTopic(tg.group, protocol.LeafConfigDesired))
	svc.publish(t, st(B, protocol.LeafJob), false, "m2")
	if got := again.until(t, st(B, protocol.LeafJob), "m2"); len(got) != 0 {
		t.Errorf("B found injected retained messages: %s", describe(got))
	}
	fresh := mustConnect(t, tg.addr, "observer", tg.svc.user, tg.svc.pass)
	fresh.subscribe(t, "lrs/v1/#")
	fresh.publish(t, marker, false, "m3")
	for _, m := range fresh.until(t, marker, "m3") {
		if strings.Contains(string(m.Payload()), "INJECTED") {
			t.Errorf("injected message retained: %s", describe([]paho.Message{m}))
		}
	}
}

// attackGroupEavesdrop: A subscribes to the config and commands of a group it is not in.
func attackGroupEavesdrop(t *testing.T, tg target) {
	A, B := tg.a.user, tg.b.user
	cfgTopic, cmdTopic := protocol.GroupTopic(tg.group, protocol.LeafConfigDesired), protocol.GroupTopic(tg.group, protocol.LeafCmd)
	svc := mustConnect(t, tg.addr, "fleet", tg.svc.user, tg.svc.pass)
	svc.publish(t, cfgTopic, true, `{"v":1,"version":"cfg_group","config":{"v":1,"SECRET":"group config"}}`)

	eve := mustConnect(t, tg.addr, A, A, tg.a.pass)
	codes := eve.subscribe(t, cfgTopic, cmdTopic, protocol.StationFilter(A), "lrs/v1/grp/+/cmd", "lrs/v1/grp/#")
	if tg.strictSubscribe {
		for i, want := range []byte{0x80, 0x80, 1, 0x80, 0x80} {
			if codes[i] != want {
				t.Errorf("SUBACK codes %x, want 80 80 01 80 80", codes)
				break
			}
		}
	}
	member := mustConnect(t, tg.addr, B, B, tg.b.pass)
	if codes := member.subscribe(t, cfgTopic, cmdTopic); codes[0] == 0x80 || codes[1] == 0x80 {
		t.Fatalf("member B refused its group: SUBACK %x", codes)
	}
	svc.publish(t, cmdTopic, false, `{"v":1,"id":"cmd_1","name":"SECRET command"}`)
	svc.publish(t, st(A, protocol.LeafJob), false, "m1")
	if got := eve.until(t, st(A, protocol.LeafJob), "m1"); len(got) != 0 {
		t.Errorf("A eavesdropped on group %s: %s", tg.group, describe(got))
	}
	svc.publish(t, st(B, protocol.LeafJob), false, "m2")
	member.subscribe(t, protocol.StationFilter(B))
	svc.publish(t, st(B, protocol.LeafJob), false, "m2")
	// The retained config can come twice: mochi acknowledges a publish before it fans it out,
	// so a subscription made just after the acknowledgement gets it live and retained.
	got := member.until(t, st(B, protocol.LeafJob), "m2")
	if !strings.Contains(describe(got), "group config") || !strings.Contains(describe(got), "SECRET command") {
		t.Errorf("member B got %s, want the group's config and command", describe(got))
	}
}

func embeddedTarget(t *testing.T, e *attackEnv) (target, station, station) {
	a, b := e.enroll("ATTACK-A"), e.enroll("SIM-0001") // the seed puts SIM-0001 in group warehouse
	su, sp := e.service(t)
	refresh := map[string]station{a.id: a, b.id: b}
	var mu sync.Mutex
	again := func(c cred) cred {
		mu.Lock()
		defer mu.Unlock()
		s := e.refreshed(refresh[c.user])
		refresh[c.user] = s
		return cred{s.id, s.access}
	}
	return target{addr: e.c.Broker.Addr(), a: cred{a.id, a.access}, b: cred{b.id, b.access}, svc: cred{su, sp},
		group: "warehouse", strictWill: true, strictRetain: true, strictSubscribe: true, again: again}, a, b
}

func TestAttackWillInjection(t *testing.T) {
	e := startAttackCloud(t)
	tg, _, _ := embeddedTarget(t, e)
	attackWillInjection(t, tg)
	if n := e.c.Broker.Refusals()[broker.RefusedWill]; n != 6 {
		t.Errorf("refused wills counted %d, want 6", n)
	}
	if !strings.Contains(e.logs.String(), "refused will") || !strings.Contains(e.logs.String(), "station="+tg.a.user) {
		t.Errorf("refusals not logged:\n%s", e.logs.String())
	}
}

func TestAttackRetainedConfigInjection(t *testing.T) {
	e := startAttackCloud(t)
	tg, _, _ := embeddedTarget(t, e)
	attackRetainedInjection(t, tg)
	if n := e.c.Broker.Refusals()[broker.RefusedPublish]; n != 1 {
		t.Errorf("refused retain on A's own job/status counted %d, want 1", n)
	}
}

func TestAttackGroupEavesdrop(t *testing.T) {
	e := startAttackCloud(t)
	tg, a, b := embeddedTarget(t, e)
	if g := e.c.GroupsOf(b.id); len(g) != 1 || g[0] != "warehouse" {
		t.Fatalf("B's groups from the seed = %v", g)
	}
	attackGroupEavesdrop(t, tg)

	// Membership is the cloud's: B leaves the group and gets nothing more; A joins and reads it.
	e.c.SetGroups(b.id)
	e.c.SetGroups(a.id, "warehouse")
	a, b = e.refreshed(a), e.refreshed(b) // newer tokens replace the sessions still open
	member := mustConnect(t, tg.addr, a.id, a.id, a.access)
	if codes := member.subscribe(t, protocol.GroupTopic("warehouse", protocol.LeafCmd), protocol.StationFilter(a.id)); codes[0] == 0x80 {
		t.Fatal("A, now a member, refused")
	}
	former := mustConnect(t, tg.addr, b.id, b.id, b.access)
	if codes := former.subscribe(t, protocol.GroupTopic("warehouse", protocol.LeafCmd), protocol.StationFilter(b.id)); codes[0] != 0x80 {
		t.Fatalf("B, no longer a member, SUBACK %x", codes)
	}
	svc := mustConnect(t, tg.addr, "fleet2", tg.svc.user, tg.svc.pass)
	svc.publish(t, protocol.GroupTopic("warehouse", protocol.LeafCmd), false, "for members")
	svc.publish(t, st(a.id, protocol.LeafJob), false, "m")
	if got := member.until(t, st(a.id, protocol.LeafJob), "m"); !strings.Contains(describe(got), "for members") {
		t.Errorf("new member A got %s", describe(got))
	}
	svc.publish(t, st(b.id, protocol.LeafJob), false, "m")
	if got := former.until(t, st(b.id, protocol.LeafJob), "m"); len(got) != 0 {
		t.Errorf("former member B got %s", describe(got))
	}
	if e.c.Broker.Refusals()[broker.RefusedSubscribe] == 0 {
		t.Error("refused subscriptions not counted")
	}
}

// TestAttackClientIDTakeover: a thief with A's stolen older token (or even its current one)
// cannot push the real A off the broker; A's own newer token can replace a stale session.
func TestAttackClientIDTakeover(t *testing.T) {
	e := startAttackCloud(t)
	tg, a, b := embeddedTarget(t, e)
	stolen := a
	a = e.refreshed(a) // the real station refreshed; the thief kept the old token
	real := mustConnect(t, tg.addr, a.id, a.id, a.access)
	real.subscribe(t, protocol.StationFilter(a.id))

	for _, try := range []struct{ name, clientID, user, pass string }{
		{"stolen older token", a.id, a.id, stolen.access},
		{"copy of the live token", a.id, a.id, a.access},
		{"B's token under A's client id", a.id, b.id, b.access},
		{"B's token as A", a.id, a.id, b.access},
	} {
		_, err := connect(t, tg.addr, try.clientID, try.user, try.pass)
		if err == nil {
			t.Fatalf("%s: connected", try.name)
		}
		if !errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword) && !errors.Is(err, packets.ErrorRefusedNotAuthorised) {
			t.Fatalf("%s: %v, want a refused CONNACK", try.name, err)
		}
	}
	svc := mustConnect(t, tg.addr, "fleet", tg.svc.user, tg.svc.pass)
	svc.publish(t, st(a.id, protocol.LeafJob), false, "still here")
	real.until(t, st(a.id, protocol.LeafJob), "still here")
	select {
	case err := <-real.lost:
		t.Fatalf("the real station lost its connection: %v", err)
	default:
	}
	if n := e.c.Broker.Refusals()[broker.RefusedTakeover]; n != 2 {
		t.Errorf("refused takeovers counted %d, want 2", n)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "refused takeover") || !strings.Contains(logs, "station="+a.id) || !strings.Contains(logs, "remote=127.0.0.1:") {
		t.Errorf("takeover refusal not logged with station and address:\n%s", logs)
	}

	var events []broker.Refusal
	for _, r := range e.c.Refusals() {
		if r.Kind == broker.RefusedTakeover {
			events = append(events, r)
		}
	}
	if len(events) != 2 || events[0].Station != a.id || events[0].Client != a.id || !strings.HasPrefix(events[0].Remote, "127.0.0.1:") || events[0].Reason == "" {
		t.Errorf("fleet manager's takeover events = %+v", events)
	}

	// The station itself, after a half-open connection, refreshes and comes back: a newer token
	// replaces the stale session.
	a = e.refreshed(a)
	back := mustConnect(t, tg.addr, a.id, a.id, a.access)
	select {
	case <-real.lost:
	case <-back.lost:
		t.Fatal("the newer session was dropped")
	}
	back.subscribe(t, protocol.StationFilter(a.id))
	svc.publish(t, st(a.id, protocol.LeafJob), false, "new session")
	back.until(t, st(a.id, protocol.LeafJob), "new session")

	// A is enrolled again (reset by an admin): its new enrollment replaces the session of the
	// old one, and a thief refreshing the old, stolen grant cannot take it back.
	renewed := e.enroll("ATTACK-A")
	if renewed.id != a.id {
		t.Fatalf("re-enrolled with a new id %s", renewed.id)
	}
	current := mustConnect(t, tg.addr, a.id, a.id, renewed.access)
	select {
	case <-back.lost:
	case <-current.lost:
		t.Fatal("the new enrollment's session was dropped")
	}
	thief := e.refreshed(a) // a newer token, but of the old enrollment
	if _, err := connect(t, tg.addr, a.id, a.id, thief.access); err == nil {
		t.Fatal("a fresh token of the old enrollment took over the new enrollment's session")
	}
	current.subscribe(t, protocol.StationFilter(a.id))
	svc.publish(t, st(a.id, protocol.LeafJob), false, "re-enrolled")
	current.until(t, st(a.id, protocol.LeafJob), "re-enrolled")
}
