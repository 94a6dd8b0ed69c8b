package devcloud

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"labelstation/protocol"
	"labelstation/station/trust"
)

// The job service seals what it sends to stations with a key the issuer publishes: a station
// finds it from the issuer's metadata (jwks_uri), and follows a rotation.
func TestMessagesAreSealedWithTheIssuersKey(t *testing.T) {
	c := start(t)
	var meta struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	resp, err := http.Get(c.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&meta)
	resp.Body.Close()
	if meta.Issuer != c.URL || meta.JWKSURI == "" {
		t.Fatalf("metadata: %+v", meta)
	}
	dir := t.TempDir()
	keys, err := trust.OpenKeys(trust.KeysOptions{URL: meta.JWKSURI, File: filepath.Join(dir, trust.KeysFile), MinRefetch: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	w, _ := trust.OpenWindow(filepath.Join(dir, trust.WindowFile))
	v, _ := trust.NewVerifier(trust.VerifierOptions{Station: "st-x", Keys: keys, Window: w})

	// Watch st-x's desired config with the service account, as the broker delivers it.
	got := make(chan []byte, 4)
	cl := paho.NewClient(paho.NewClientOptions().AddBroker(c.BrokerURL).SetClientID("watcher").
		SetUsername(c.brokerOpt.ServiceUser).SetPassword(c.brokerOpt.ServicePassword))
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer cl.Disconnect(0)
	topic := protocol.StationTopic("st-x", protocol.LeafConfigDesired)
	if tok := cl.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) { got <- m.Payload() }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	var seen [][]byte
	next := func() []byte { // the next new message: QoS 1 may deliver one twice
		t.Helper()
		for {
			select {
			case b := <-got:
				if slices.ContainsFunc(seen, func(x []byte) bool { return bytes.Equal(x, b) }) {
					continue
				}
				seen = append(seen, b)
				return b
			case <-time.After(10 * time.Second):
				t.Fatal("no config published")
				return nil
			}
		}
	}
	open := func(b []byte) error {
		msg, settle, err := v.Open(context.Background(), topic, b)
		if err != nil {
			return err
		}
		settle(true)
		var d protocol.ConfigDesired
		return protocol.Decode(msg, &d)
	}

	if err := c.Jobs.PushConfig("st-x", c.Jobs.DefaultFleetConfig()); err != nil {
		t.Fatal(err)
	}
	first := next()
	if err := open(first); err != nil {
		t.Fatalf("first config: %v", err)
	}
	var raw map[string]any
	if json.Unmarshal(first, &raw) == nil {
		t.Fatalf("a cloud → station message went out as plain JSON: %s", first)
	}

	// Rotation: a new key, the old one retired. The station fetches the set again on the new
	// kid, and a message signed with the retired key is refused.
	if err := c.RotateMessageKey(true); err != nil {
		t.Fatal(err)
	}
	if err := c.Jobs.PushConfig("st-x", c.Jobs.DefaultFleetConfig()); err != nil {
		t.Fatal(err)
	}
	if err := open(next()); err != nil {
		t.Fatalf("config after rotation: %v", err)
	}
	if keys.Fetches() != 2 {
		t.Errorf("key fetches = %d, want 2", keys.Fetches())
	}
	w2, _ := trust.OpenWindow(filepath.Join(t.TempDir(), trust.WindowFile))
	v, _ = trust.NewVerifier(trust.VerifierOptions{Station: "st-x", Keys: keys, Window: w2})
	if err := open(first); !errors.Is(err, protocol.ErrUnknownKey) {
		t.Errorf("message signed with the retired key: %v, want ErrUnknownKey", err)
	}
}

// A v1 station cannot verify sealed messages; the cloud answers none of its requests, so it
// releases it nothing (docs/protocol.md, Old stations).
func TestOldStationRequestsIgnored(t *testing.T) {
	c := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Jobs.WaitOnline(ctx); err != nil { // subscribed to the stations' requests
		t.Fatal(err)
	}
	user, pass := c.ServiceLogin()
	replies := make(chan []byte, 4)
	cl := paho.NewClient(paho.NewClientOptions().AddBroker(c.BrokerURL).SetClientID("old-station").
		SetUsername(user).SetPassword(pass))
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer cl.Disconnect(0)
	reply := protocol.StationTopic("st-old", protocol.LeafLookupReply)
	if tok := cl.Subscribe(reply, 1, func(_ paho.Client, m paho.Message) { replies <- m.Payload() }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	lookup := protocol.StationTopic("st-old", protocol.LeafLookup)
	cl.Publish(lookup, 1, false, []byte(`{"v":1,"req":"old","badge":"x"}`)).WaitTimeout(10 * time.Second)
	cl.Publish(lookup, 1, false, []byte(`{"v":2,"req":"new","badge":"x"}`)).WaitTimeout(10 * time.Second)
	select {
	case b := <-replies:
		var r protocol.LookupReply
		msg := protocol.Unverified(b)
		if err := protocol.Decode(msg, &r); err != nil || r.Req != "new" {
			t.Fatalf("first reply %s (%v), want the v2 request's", msg, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no reply to the v2 request")
	}
	select {
	case b := <-replies:
		t.Fatalf("a second reply: %s", protocol.Unverified(b))
	default:
	}
}
