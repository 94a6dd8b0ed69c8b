// Package broker is devcloud's embedded MQTT broker (mochi-mqtt): stations log in with their
// station id as username and a current access token as password, and each is kept to its own
// topic subtree. The cloud's own services log in with a service account.
package broker

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"labelstation/protocol"
)

// Verifier checks a station's access token and returns the station id it was issued to.
type Verifier func(ctx context.Context, token string) (stationID string, err error)

// Options configures the broker.
type Options struct {
	// Listener is an open TCP listener; the caller opens it so a taken port is reported with the
	// flag that chose it.
	Listener net.Listener
	Verify   Verifier
	// ServiceUser and ServicePassword are the cloud services' account: full access.
	ServiceUser, ServicePassword string
	Logger                       *slog.Logger
}

// Broker is a running embedded broker.
type Broker struct {
	srv  *mqtt.Server
	addr string
}

// Start serves MQTT on opt.Listener until Close.
func Start(opt Options) (*Broker, error) {
	if opt.Listener == nil || opt.Verify == nil || opt.ServiceUser == "" || opt.ServicePassword == "" {
		return nil, errors.New("broker: Listener, Verify, ServiceUser and ServicePassword are required")
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := mqtt.New(&mqtt.Options{InlineClient: false, Logger: log.With("component", "mochi")})
	h := &authHook{verify: opt.Verify, user: opt.ServiceUser, pass: opt.ServicePassword, log: log}
	if err := srv.AddHook(h, nil); err != nil {
		return nil, fmt.Errorf("broker: AddHook: %w", err)
	}
	if err := srv.AddListener(listeners.NewNet("tcp", opt.Listener)); err != nil {
		return nil, fmt.Errorf("broker: AddListener: %w", err)
	}
	if err := srv.Serve(); err != nil {
		return nil, fmt.Errorf("broker: Serve: %w", err)
	}
	return &Broker{srv: srv, addr: opt.Listener.Addr().String()}, nil
}

// Addr is the host:port the broker listens on.
func (b *Broker) Addr() string { return b.addr }

// Close disconnects every client and stops listening.
func (b *Broker) Close() error { return b.srv.Close() }

// authHook implements authentication and the per-station ACL.
type authHook struct {
	mqtt.HookBase
	verify     Verifier
	user, pass string
	log        *slog.Logger
}

func (h *authHook) ID() string { return "labelstation-auth" }

func (h *authHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck}, []byte{b})
}

func (h *authHook) isService(cl *mqtt.Client) bool {
	return string(cl.Properties.Username) == h.user
}

// OnConnectAuthenticate accepts the service account, or a station whose token names the same
// station as its username and client id (so no station can take over another's session).
func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	user := string(pk.Connect.Username)
	if user == h.user {
		ok := subtle.ConstantTimeCompare(pk.Connect.Password, []byte(h.pass)) == 1
		if !ok {
			h.log.Warn("broker: service login refused", "client", cl.ID)
		}
		return ok
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sid, err := h.verify(ctx, string(pk.Connect.Password))
	switch {
	case err != nil:
		h.log.Info("broker: station login refused", "user", user, "err", err)
		return false
	case sid != user || cl.ID != user:
		h.log.Info("broker: station login refused: token, username and client id disagree", "user", user, "client", cl.ID, "token_station", sid)
		return false
	}
	return true
}

// stationWrites are the leaves a station may publish to under its own subtree.
var stationWrites = map[string]bool{
	protocol.LeafPresence: true, protocol.LeafLookup: true, protocol.LeafRelease: true,
	protocol.LeafJobStatus: true, protocol.LeafConfigReported: true, protocol.LeafCmdResult: true,
	protocol.LeafTelemetry: true, protocol.LeafEvent: true,
}

// OnACLCheck keeps a station to lrs/v1/st/{its id}/... (publishing only station→cloud leaves) and
// lets it read its groups' config and commands.
func (h *authHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if h.isService(cl) {
		return true
	}
	return StationMay(string(cl.Properties.Username), topic, write)
}

// StationMay is the ACL rule for one station, exported for tests and documentation.
func StationMay(station, topic string, write bool) bool {
	if station == "" || strings.ContainsAny(station, "+#/") {
		return false
	}
	own := protocol.Root + "/st/" + station + "/"
	if write {
		leaf, ok := strings.CutPrefix(topic, own)
		return ok && stationWrites[leaf]
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
	return ok && group != "" && !strings.ContainsAny(group, "+#") &&
		(leaf == protocol.LeafConfigDesired || leaf == protocol.LeafCmd)
}
