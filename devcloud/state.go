package devcloud

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"labelstation/devcloud/jobs"
	"labelstation/devcloud/records"
	"labelstation/protocol"
)

// Record kinds of the cloud itself (the auth server, the job service and the fleet registry
// keep their own kinds).
const (
	kindCloudKeys = "cloud.keys"
	kindGroups    = "cloud.groups"
)

// recordsOf returns where the cloud keeps its state: the job store when it keeps records (every
// jobs.Open store does), else a store in memory.
func recordsOf(st jobs.Store) records.Store {
	if r, ok := st.(records.Store); ok {
		return r
	}
	return records.NewMem()
}

// durable returns rec when the store outlives a restart, nil for the in-memory store: the
// authorization server and the fleet registry keep everything in memory anyway, and a second
// copy of every station and token would only cost memory.
func durable(st jobs.Store, rec records.Store) records.Store {
	if _, mem := st.(*jobs.MemStore); mem {
		return nil
	}
	return rec
}

// badgeKey returns the key of the badge hash: stations hash badges with the key in their fleet
// config, so a new key at every start would make every badge unknown until they got the new one.
func badgeKey(rec records.Store) ([]byte, error) {
	var k []byte
	err := rec.UpdateRecord(kindCloudKeys, "badge", func(old []byte) ([]byte, error) {
		if len(old) > 0 {
			k = old
			return old, nil
		}
		k = make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return nil, err
		}
		return k, nil
	})
	if err != nil {
		return nil, fmt.Errorf("devcloud: badge key: %w", err)
	}
	return k, nil
}

// storedMessageKey is the message-signing key the job service signs with now.
type storedMessageKey struct {
	KID   string `json:"kid"`
	PKCS8 []byte `json:"pkcs8"`
}

// messageKey returns the stored message-signing key or, with fresh (or none stored yet), a new
// one it stores first: the kid stations cached keeps verifying after a restart, and replicas
// starting together sign with the one key stored first.
func messageKey(rec records.Store, fresh bool) (*ecdsa.PrivateKey, string, error) {
	var k storedMessageKey
	err := rec.UpdateRecord(kindCloudKeys, "message", func(old []byte) ([]byte, error) {
		if old != nil && !fresh {
			return old, json.Unmarshal(old, &k)
		}
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, err
		}
		k = storedMessageKey{KID: "msg-" + randomHex(8), PKCS8: der}
		return json.Marshal(k)
	})
	if err != nil {
		return nil, "", fmt.Errorf("devcloud: message key: %w", err)
	}
	key, err := x509.ParsePKCS8PrivateKey(k.PKCS8)
	ec, ok := key.(*ecdsa.PrivateKey)
	if err != nil || !ok {
		return nil, "", fmt.Errorf("devcloud: stored message key %q is unreadable (%v)", k.KID, err)
	}
	return ec, k.KID, nil
}

// newMessageKey makes the job service's sealer with the stored message-signing key (a new one
// with fresh) and publishes its public half in the issuer's JWKS.
func (c *Cloud) newMessageKey(now func() time.Time, fresh bool) (*protocol.Sealer, error) {
	key, kid, err := messageKey(c.records, fresh)
	if err != nil {
		return nil, err
	}
	s, err := protocol.NewSealer(key, kid, now, nil)
	if err != nil {
		return nil, fmt.Errorf("devcloud: message key: %w", err)
	}
	c.Auth.PublishKey(s.PublicJWK(key))
	c.MessageKeyID = s.KeyID()
	return s, nil
}

// loadGroups reads the group memberships SetGroups stored.
func (c *Cloud) loadGroups() error {
	all, err := records.ListJSON[[]string](c.records, kindGroups)
	if err != nil {
		return fmt.Errorf("devcloud: groups: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.groups = map[string][]string{}
	for st, g := range all {
		c.groups[st] = slices.Clone(g)
	}
	return nil
}
