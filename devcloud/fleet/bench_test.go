package fleet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"labelstation/devcloud/broker"
	"labelstation/devcloud/fleet"
	"labelstation/internal/fleettest"
	"labelstation/protocol"
	"labelstation/station/config"
)

// benchStation is a simulated station: a real MQTT client that follows its own and its group's
// desired documents with the station's config rules (config.Sources) and reports what it applied.
type benchStation struct {
	id  string
	c   paho.Client
	mu  sync.Mutex
	src config.Sources
	// early is a group document that came before the station's own document naming the
	// group (handlers run concurrently, and a broker may deliver the two in either order);
	// it is offered again once the station is in that group.
	early *config.Doc
}

func (s *benchStation) offer(base config.Config, source string, group string, m paho.Message) {
	var d protocol.ConfigDesired
	if protocol.Decode(m.Payload(), &d) != nil {
		return
	}
	s.mu.Lock()
	doc := config.Doc{Version: d.Version, Config: d.Config, Group: d.Group}
	if source == protocol.SourceGroup {
		doc.Group = group
	}
	next, c, err := s.src.Offer(base, source, doc)
	if err != nil && source == protocol.SourceGroup && doc.Group != s.src.GroupName() && (s.early == nil || s.early.Version < doc.Version) {
		s.early = &doc
	}
	if err == nil && source == protocol.SourceStation && s.early != nil && s.early.Group == next.GroupName() {
		if n2, c2, err2 := next.Offer(base, protocol.SourceGroup, *s.early); err2 == nil {
			next, c = n2, c2
		}
		s.early = nil
	}
	rep := protocol.ConfigReported{V: protocol.Version, Source: source, Version: d.Version, Applied: err == nil, TS: time.Now()}
	if err == nil {
		s.src = next
		rep.Hash = c.Hash()
	}
	rep.Versions = protocol.ConfigVersions{}
	if s.src.Group != nil {
		rep.Versions.Group = s.src.Group.Version
	}
	if s.src.Station != nil {
		rep.Versions.Station = s.src.Station.Version
	}
	// Queued under the lock so reports leave in the order they were made: a later report
	// overtaken by an earlier one would leave the retained report, and the registry, stale. The
	// token is not waited on: paho would wait on itself.
	b, _ := json.Marshal(rep)
	s.c.Publish(protocol.StationTopic(s.id, protocol.LeafConfigReported), 1, true, b)
	s.mu.Unlock()
}

// BenchmarkGroupConfig pushes one group config to FLEET_BENCH_STATIONS (default 100) simulated
// stations behind the embedded broker (FLEET_BENCH_BROKER=mosquitto: a Mosquitto with the
// deployed configuration, started by the benchmark) and times until every one reported it
// applied. It also reports the heap per connected station of this process: with the embedded
// broker the broker's, the registry's and the clients', with Mosquitto the last two only.
func BenchmarkGroupConfig(b *testing.B) {
	n := 100
	if v, err := strconv.Atoi(os.Getenv("FLEET_BENCH_STATIONS")); err == nil && v > 0 {
		n = v
	}
	url, svcUser, svcPass := benchBroker(b, n)
	dial := func(id, user, pass string, onConnect paho.OnConnectHandler) paho.Client {
		o := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetUsername(user).SetPassword(pass).
			SetCleanSession(true).SetOrderMatters(false).SetOnConnectHandler(onConnect).SetAutoReconnect(false)
		c := paho.NewClient(o)
		if t := c.Connect(); !t.WaitTimeout(30*time.Second) || t.Error() != nil {
			b.Fatalf("connect %s: %v", id, t.Error())
		}
		return c
	}

	var svc paho.Client
	reg, err := fleet.New(fleet.Options{Publish: func(topic string, retained bool, v any) error {
		p, _ := json.Marshal(v)
		t := svc.Publish(topic, 1, retained, p)
		if !t.WaitTimeout(10 * time.Second) {
			return fmt.Errorf("publish %s: timed out", topic)
		}
		return t.Error()
	}})
	if err != nil {
		b.Fatal(err)
	}
	svc = dial("bench-cloud", svcUser, svcPass, nil)
	defer svc.Disconnect(100)
	for _, f := range fleet.Filters() {
		if t := svc.Subscribe(f, 1, func(_ paho.Client, m paho.Message) { reg.Handle(m.Topic(), m.Payload()) }); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
			b.Fatal(t.Error())
		}
	}
	var heap0 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&heap0)

	base := config.Defaults()
	base.Station.StateDir, base.Cloud.Issuer, base.Cloud.Broker, base.Printer.URL = "/nonexistent", "http://127.0.0.1:1", "tcp://127.0.0.1:1", "tcp://127.0.0.1:9100" // loopback: cleartext allowed
	stations := make([]*benchStation, n)
	for i := range stations {
		s := &benchStation{id: benchStationID(i)}
		s.c = dial(s.id, s.id, s.id, nil)
		subs := map[string]byte{protocol.StationTopic(s.id, protocol.LeafConfigDesired): 1}
		for _, t := range protocol.GroupTopics("bench") {
			subs[t] = 1
		}
		if t := s.c.SubscribeMultiple(subs, func(_ paho.Client, m paho.Message) {
			if g, _, err := protocol.ParseGroupTopic(m.Topic()); err == nil {
				s.offer(base, protocol.SourceGroup, g, m)
			} else {
				s.offer(base, protocol.SourceStation, "", m)
			}
		}); !t.WaitTimeout(30*time.Second) || t.Error() != nil {
			b.Fatal(t.Error())
		}
		stations[i] = s
		// Membership: the station's own document names the group.
		if _, err := reg.SetGroup(s.id, "bench"); err != nil {
			b.Fatal(err)
		}
	}
	defer func() {
		for _, s := range stations {
			s.c.Disconnect(0)
		}
	}()
	ev, cancel := reg.Subscribe()
	defer cancel()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		doc, err := reg.SetGroupConfig("bench", json.RawMessage(fmt.Sprintf(`{"v":1,"printer":{"dpi":%d}}`, []int{300, 600}[i%2])))
		if err != nil {
			b.Fatal(err)
		}
		var applied atomic.Int64
		deadline := time.After(5 * time.Minute)
		for applied.Load() < int64(n) {
			select {
			case <-ev:
			case <-deadline:
				b.Fatalf("%d of %d stations applied the group config", applied.Load(), n)
			}
			c := int64(0)
			for _, st := range reg.Stations() {
				if st.Reported != nil && st.Reported.Versions.Group == doc.Version {
					c++
				}
			}
			applied.Store(c)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/all-applied")
	}
	b.StopTimer()
	var heap1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&heap1)
	b.ReportMetric(float64(int64(heap1.HeapAlloc)-int64(heap0.HeapAlloc))/float64(n)/1024, "KB-heap/station(broker+clients+registry)")
	b.ReportMetric(float64(n), "stations")
}

func benchStationID(i int) string { return fmt.Sprintf("bench-%04d", i) }

// benchBroker starts the broker FLEET_BENCH_BROKER names for n stations, each in group "bench",
// and returns its URL and the cloud's login.
func benchBroker(b *testing.B, n int) (url, user, pass string) {
	switch kind := os.Getenv("FLEET_BENCH_BROKER"); kind {
	case "", "embedded":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		br, err := broker.Start(broker.Options{
			Listener: ln, ServiceUser: "svc", ServicePassword: "svc-pass",
			Verify: func(_ context.Context, tok string) (string, error) { return tok, nil }, // the station id is its token here
			Groups: func(string) []string { return []string{"bench"} },
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { br.Close() })
		return "tcp://" + br.Addr(), "svc", "svc-pass"
	case "mosquitto":
		groups := make(map[string]string, n)
		for i := range n {
			groups[benchStationID(i)] = "bench"
		}
		// The deployed ACL's service account; passwords are not checked by this instance.
		return fleettest.MosquittoWithGroups(b, groups).URL, "devcloud", "bench"
	default:
		b.Fatalf("FLEET_BENCH_BROKER=%q: want embedded or mosquitto", kind)
		return "", "", ""
	}
}
