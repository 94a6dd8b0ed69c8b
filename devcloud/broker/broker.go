// Package broker is devcloud's embedded MQTT broker (mochi-mqtt): stations log in with their
// station id as username and client id and a current access token as password, and each is kept
// to its own topic subtree and the groups the cloud says it belongs to. The cloud's own services
// log in with a service account.
//
// The broker does not trust a station with anything another station could notice: its last will
// passes the same check as a publish before the CONNECT is accepted (the broker library would
// publish a will without asking the ACL), it may retain only the leaves that are meant to be
// retained, it reads a group only while the cloud lists it as a member, and a second connection
// under its client id must bring a newer token than the live one.
package broker

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"labelstation/protocol"
)

// Verifier checks a station's access token and returns the station id it was issued to.
type Verifier func(ctx context.Context, token string) (stationID string, err error)

// Claims is what a verified station token says about itself.
type Claims struct {
	StationID string
	// ID is the token's id (jti); IssuedAt its iat. Generation, when the issuer numbers its
	// tokens, orders tokens issued within the same clock tick.
	ID         string
	IssuedAt   time.Time
	Generation uint64
	// Enrollment names the grant the token descends from (the refresh-token family of one
	// device-flow approval); EnrollmentSeq orders a station's enrollments. Both optional.
	Enrollment    string
	EnrollmentSeq uint64
}

// mayReplace reports whether a connection with c may take over a live session that
// authenticated with live: a newer token of the same enrollment, or a token of a later
// enrollment. Tokens that cannot be ordered may not: a thief replaying the live token, or
// refreshing a stolen grant the station has since been re-enrolled past, gains nothing.
func (c Claims) mayReplace(live Claims) bool {
	if c.Enrollment != "" && live.Enrollment != "" && c.Enrollment != live.Enrollment {
		return c.EnrollmentSeq != 0 && live.EnrollmentSeq != 0 && c.EnrollmentSeq > live.EnrollmentSeq
	}
	if c.Generation != 0 && live.Generation != 0 {
		return c.Generation > live.Generation
	}
	return !c.IssuedAt.IsZero() && !live.IssuedAt.IsZero() && c.IssuedAt.After(live.IssuedAt)
}

// ClaimsVerifier is a Verifier that also says when the token was issued, so the broker can let a
// station's fresher token replace a stale session and refuse a stolen older one.
type ClaimsVerifier func(ctx context.Context, token string) (Claims, error)

// Options configures the broker.
type Options struct {
	// Listener is an open TCP listener; the caller opens it so a taken port is reported with the
	// flag that chose it.
	Listener net.Listener
	// Verify or VerifyClaims (preferred when both are set) checks station tokens. With Verify
	// alone no token is provably newer, so a live session is never taken over; it ends with the
	// keep-alive timeout (1.5 × the client's keep-alive) if the station's connection is dead.
	Verify       Verifier
	VerifyClaims ClaimsVerifier
	// Groups returns the fleet groups a station belongs to, asked at every SUBSCRIBE to a group
	// topic; nil means no station is in any group.
	Groups func(station string) []string
	// OnRefusal, if set, is told about every refused will, takeover, publish and subscription,
	// for the fleet manager's event log. It must not block.
	OnRefusal func(Refusal)
	// ServiceUser and ServicePassword are the cloud services' account: full access.
	ServiceUser, ServicePassword string
	Logger                       *slog.Logger
}

// Refusal kinds.
const (
	RefusedLogin     = "login"     // bad token, or token, username and client id disagree
	RefusedWill      = "will"      // the will would be a publish the station may not make
	RefusedTakeover  = "takeover"  // a second connection with a live station's client id
	RefusedPublish   = "publish"   // a retain flag or payload the station may not send
	RefusedSubscribe = "subscribe" // a topic filter outside the station's subtree and groups
)

// Refusal is one thing the broker refused a station.
type Refusal struct {
	Kind    string
	Station string // the username the client claimed
	Client  string // its client id
	Remote  string // its address
	Topic   string // the will, publish or subscription topic, if any
	Reason  string
}

// Broker is a running embedded broker.
type Broker struct {
	srv  *mqtt.Server
	hook *authHook
	addr string
}

// Start serves MQTT on opt.Listener until Close.
func Start(opt Options) (*Broker, error) {
	if opt.Listener == nil || (opt.Verify == nil && opt.VerifyClaims == nil) || opt.ServiceUser == "" || opt.ServicePassword == "" {
		return nil, errors.New("broker: Listener, Verify or VerifyClaims, ServiceUser and ServicePassword are required")
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	verify := opt.VerifyClaims
	if verify == nil {
		v := opt.Verify
		verify = func(ctx context.Context, tok string) (Claims, error) {
			id, err := v(ctx, tok)
			return Claims{StationID: id}, err
		}
	}
	srv := mqtt.New(&mqtt.Options{InlineClient: false, Capabilities: capabilities(), Logger: log.With("component", "mochi"),
		ClientNetReadBufferSize: netReadBufferSize})
	h := &authHook{
		srv: srv, verify: verify, groups: opt.Groups, onRefusal: opt.OnRefusal,
		user: opt.ServiceUser, pass: opt.ServicePassword, log: log,
		live: map[string]*liveSession{}, conns: map[*mqtt.Client]*liveSession{}, counts: map[string]int{},
	}
	if err := srv.AddHook(h, nil); err != nil {
		return nil, fmt.Errorf("broker: AddHook: %w", err)
	}
	if err := srv.AddListener(listeners.NewNet("tcp", opt.Listener)); err != nil {
		return nil, fmt.Errorf("broker: AddListener: %w", err)
	}
	if err := srv.Serve(); err != nil {
		return nil, fmt.Errorf("broker: Serve: %w", err)
	}
	return &Broker{srv: srv, hook: h, addr: opt.Listener.Addr().String()}, nil
}

// Addr is the host:port the broker listens on.
func (b *Broker) Addr() string { return b.addr }

// Close disconnects every client and stops listening.
func (b *Broker) Close() error { return b.srv.Close() }

// Refusals returns how many times each kind of refusal happened since Start.
func (b *Broker) Refusals() map[string]int {
	b.hook.mu.Lock()
	defer b.hook.mu.Unlock()
	out := make(map[string]int, len(b.hook.counts))
	for k, v := range b.hook.counts {
		out[k] = v
	}
	return out
}

// liveSession is the connection currently holding a station's client id and the token it
// authenticated with.
type liveSession struct {
	cl     *mqtt.Client
	claims Claims
	gone   chan struct{} // closed by OnDisconnect
	expire bool          // set before gone is closed: the broker drops the session state
}

// authHook implements authentication and the per-station ACL.
type authHook struct {
	mqtt.HookBase
	srv        *mqtt.Server
	verify     ClaimsVerifier
	groups     func(string) []string
	onRefusal  func(Refusal)
	user, pass string
	log        *slog.Logger

	mu     sync.Mutex
	live   map[string]*liveSession       // the newest connection by client id (= station id)
	conns  map[*mqtt.Client]*liveSession // every station connection until its OnDisconnect
	sweep  int
	counts map[string]int
}

var _ mqtt.Hook = (*authHook)(nil)

func (h *authHook) ID() string { return "labelstation-auth" }

func (h *authHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnPublish, mqtt.OnSubscribe, mqtt.OnDisconnect}, []byte{b})
}

func (h *authHook) isService(cl *mqtt.Client) bool {
	return string(cl.Properties.Username) == h.user
}

// refuse logs a refusal at Warn, counts it and tells OnRefusal.
func (h *authHook) refuse(r Refusal) {
	h.log.Warn("broker: refused "+r.Kind, "station", r.Station, "client", r.Client, "remote", r.Remote, "topic", r.Topic, "reason", r.Reason)
	h.mu.Lock()
	h.counts[r.Kind]++
	h.mu.Unlock()
	if h.onRefusal != nil {
		h.onRefusal(r)
	}
}

func refusal(kind string, cl *mqtt.Client, topic, reason string) Refusal {
	return Refusal{Kind: kind, Station: string(cl.Properties.Username), Client: cl.ID, Remote: cl.Net.Remote, Topic: topic, Reason: reason}
}

// OnConnectAuthenticate accepts the service account, or a station whose token names the same
// station as its username and client id, whose will it may publish, and which does not take over
// a live session without a newer token.
func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	user := string(pk.Connect.Username)
	if user == h.user {
		ok := subtle.ConstantTimeCompare(pk.Connect.Password, []byte(h.pass)) == 1
		if !ok {
			h.refuse(refusal(RefusedLogin, cl, "", "wrong service password"))
		}
		return ok
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := h.verify(ctx, string(pk.Connect.Password))
	switch {
	case err != nil:
		// A station with an expired token is routine; Info, not Warn.
		h.log.Info("broker: station login refused", "user", user, "remote", cl.Net.Remote, "err", err)
		return false
	case c.StationID != user || cl.ID != user:
		h.refuse(refusal(RefusedLogin, cl, "", fmt.Sprintf("token of station %q, username %q and client id %q disagree", c.StationID, user, cl.ID)))
		return false
	}
	if pk.Connect.WillFlag {
		if err := StationMayPublish(user, pk.Connect.WillTopic, pk.Connect.WillRetain, pk.Connect.WillPayload); err != nil {
			h.refuse(refusal(RefusedWill, cl, pk.Connect.WillTopic, err.Error()))
			return false
		}
	}
	h.mu.Lock()
	old := h.live[cl.ID]
	refused := old != nil && !old.cl.Closed() && !c.mayReplace(old.claims)
	if !refused {
		s := &liveSession{cl: cl, claims: c, gone: make(chan struct{})}
		h.live[cl.ID], h.conns[cl] = s, s
		h.sweepLocked()
	}
	h.mu.Unlock()
	if refused {
		h.refuse(refusal(RefusedTakeover, cl, "", fmt.Sprintf("station is connected from %s with a token this one does not supersede", old.cl.Net.Remote)))
		return false
	}
	if old != nil {
		h.retire(old)
	}
	return true
}

// sweepLocked now and then drops connections that ended without OnDisconnect (the broker
// library skips it when the CONNACK cannot be written).
func (h *authHook) sweepLocked() {
	if h.sweep++; h.sweep%256 != 0 {
		return
	}
	for cl, s := range h.conns {
		if cl.Closed() && time.Since(time.Unix(cl.StopTime(), 0)) > time.Minute {
			delete(h.conns, cl)
			if h.live[cl.ID] == s {
				delete(h.live, cl.ID)
			}
		}
	}
}

// retire ends the connection a new one replaces and waits until the broker has finished with
// it. The broker library tears a clean session down after OnDisconnect by deleting its client
// id, and would delete the new connection's entry if that were already in place: the new
// connection would then receive nothing.
func (h *authHook) retire(old *liveSession) {
	h.srv.DisconnectClient(old.cl, packets.ErrSessionTakenOver)
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	select {
	case <-old.gone:
	case <-deadline.C:
		h.log.Warn("broker: replaced session did not end", "client", old.cl.ID, "remote", old.cl.Net.Remote)
		return
	}
	if !old.expire {
		return // a persistent session stays for the new connection to inherit
	}
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		if cur, ok := h.srv.Clients.Get(old.cl.ID); !ok || cur != old.cl {
			return
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			h.log.Warn("broker: replaced session was not removed", "client", old.cl.ID)
			return
		}
	}
}

// OnDisconnect forgets the connection and tells a replacement waiting in retire.
func (h *authHook) OnDisconnect(cl *mqtt.Client, _ error, expire bool) {
	h.mu.Lock()
	s := h.conns[cl]
	delete(h.conns, cl)
	if s != nil && h.live[cl.ID] == s {
		delete(h.live, cl.ID)
	}
	h.mu.Unlock()
	if s != nil {
		s.expire = expire
		close(s.gone)
	}
}

// OnACLCheck keeps a station to lrs/v1/st/{its id}/... (publishing only station→cloud leaves)
// and to reading its groups' config and commands. Group membership is asked of the cloud every
// time, at SUBSCRIBE and at every delivery.
func (h *authHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if h.isService(cl) {
		return true
	}
	station := string(cl.Properties.Username)
	var groups []string
	if !write && h.groups != nil && strings.HasPrefix(topic, protocol.Root+"/grp/") {
		groups = h.groups(station)
	}
	return StationMay(station, topic, write, groups...)
}

// OnSubscribe reports the filters OnACLCheck is about to refuse. The ACL is also asked at every
// delivery (so leaving a group takes effect at once); those answers are not events.
func (h *authHook) OnSubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if h.isService(cl) {
		return pk
	}
	for _, sub := range pk.Filters {
		if !h.OnACLCheck(cl, sub.Filter, false) {
			h.refuse(refusal(RefusedSubscribe, cl, sub.Filter, "not in the station's subtree or groups"))
		}
	}
	return pk
}

// OnPublish refuses a station's retain flag or payload that StationMayPublish does not allow.
// The topic itself was checked by OnACLCheck.
func (h *authHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline || h.isService(cl) {
		return pk, nil
	}
	err := StationMayPublish(string(cl.Properties.Username), pk.TopicName, pk.FixedHeader.Retain, pk.Payload)
	if err == nil {
		return pk, nil
	}
	h.refuse(refusal(RefusedPublish, cl, pk.TopicName, err.Error()))
	if pk.FixedHeader.Qos > 0 {
		if cl.Properties.ProtocolVersion == 5 {
			return pk, packets.ErrNotAuthorized // answered in the PUBACK
		}
		// MQTT 3.1.1 has no negative PUBACK: disconnect, as for a topic the ACL refuses.
		h.srv.DisconnectClient(cl, packets.ErrNotAuthorized)
	}
	return pk, packets.ErrRejectPacket
}

// stationWrites are the leaves a station may publish to under its own subtree, and whether it
// may retain them.
var stationWrites = map[string]bool{
	protocol.LeafPresence: true, protocol.LeafConfigReported: true,
	protocol.LeafLookup: false, protocol.LeafRelease: false, protocol.LeafJobStatus: false,
	protocol.LeafCmdResult: false, protocol.LeafTelemetry: false, protocol.LeafEvent: false,
	protocol.LeafBadgeLink: false,
}

// validStation is a station id that cannot widen a topic.
func validStation(station string) bool {
	return station != "" && !strings.ContainsAny(station, "+#/")
}

// StationMay is the topic ACL for one station in groups: it publishes only station→cloud leaves
// of its own subtree, and reads its own subtree and its groups' config and commands. Exported
// for tests and documentation.
func StationMay(station, topic string, write bool, groups ...string) bool {
	if !validStation(station) {
		return false
	}
	own := protocol.Root + "/st/" + station + "/"
	if write {
		leaf, ok := strings.CutPrefix(topic, own)
		_, known := stationWrites[leaf]
		return ok && known
	}
	if strings.HasPrefix(topic, own) {
		return true
	}
	// Group config and commands: lrs/v1/grp/{group}/config/desired and .../cmd.
	rest, ok := strings.CutPrefix(topic, protocol.Root+"/grp/")
	if !ok {
		return false
	}
	group, leaf, ok := strings.Cut(rest, "/")
	return ok && group != "" && !strings.ContainsAny(group, "+#") && slices.Contains(groups, group) &&
		(leaf == protocol.LeafConfigDesired || leaf == protocol.LeafCmd)
}

// StationMayPublish is the full check of one publish by a station, and of its last will: the
// topic (StationMay), the retain flag (only presence and the reported config are retained), and
// that a presence message speaks for this station.
func StationMayPublish(station, topic string, retain bool, payload []byte) error {
	if !StationMay(station, topic, true) {
		return fmt.Errorf("broker: topic %q: station %q may publish only its own station → cloud leaves", topic, station)
	}
	leaf := strings.TrimPrefix(topic, protocol.Root+"/st/"+station+"/")
	if retain && !stationWrites[leaf] {
		return fmt.Errorf("broker: topic %q: a station may not retain %s messages", topic, leaf)
	}
	if leaf == protocol.LeafPresence && len(payload) > 0 {
		var p struct {
			Station string `json:"station"`
		}
		if err := json.Unmarshal(payload, &p); err != nil || p.Station != station {
			return fmt.Errorf("broker: topic %q: presence must be JSON naming station %q", topic, station)
		}
	}
	return nil
}

// maxWritesPending bounds the packets queued for one client. mochi allocates the queue whole
// when a client connects, and its default (8,192 pointers, 64 KiB) was most of the broker's
// memory per connected station. A station is sent a handful of messages at a time; the job
// service, which hears every station, is the one client that could fill 1,024 at once, in a
// reconnect storm of over a thousand stations — a packet that finds the queue full is dropped
// and counted in mochi's Info.MessagesDropped.
const maxWritesPending = 1024

// netReadBufferSize is each connection's read buffer, allocated whole at connect (mochi's
// default 2 KiB). A station's messages are small and a larger one is read past the buffer, so a
// quarter of that is enough: 1.5 KiB less per connected station. (mochi's write buffer grows on
// demand and only bounds how many packets one write batches, so it stays at its default.)
const netReadBufferSize = 512

func capabilities() *mqtt.Capabilities {
	c := mqtt.NewDefaultServerCapabilities()
	c.MaximumClientWritesPending = maxWritesPending
	return c
}
