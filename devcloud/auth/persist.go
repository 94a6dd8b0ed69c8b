package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"labelstation/devcloud/records"
)

// Record kinds of the authorization server. Refresh tokens are stored by their SHA-256 only:
// a copy of the store does not let anyone refresh.
const (
	kindKeys     = "auth.keys"
	kindStation  = "auth.station"
	kindFamily   = "auth.family"
	kindRefresh  = "auth.refresh"
	kindAccess   = "auth.access"
	kindCounters = "auth.counters"
)

// storedKeys are the server's own secrets: the token-signing key (so access tokens issued before
// a restart still verify) and the op's crypto key.
type storedKeys struct {
	KID       string `json:"kid"`
	PKCS8     []byte `json:"pkcs8"`
	CryptoKey []byte `json:"crypto_key"`
}

type storedFamily struct {
	Seq       uint64 `json:"seq"`
	Kind      string `json:"kind"`
	StationID string `json:"station_id,omitempty"`
	UserID    string `json:"user_id,omitempty"`
	Serial    string `json:"serial,omitempty"`
	Revoked   bool   `json:"revoked,omitempty"`
}

type storedRefresh struct {
	Family   string    `json:"family"`
	ClientID string    `json:"client_id"`
	Subject  string    `json:"subject"`
	Scopes   []string  `json:"scopes"`
	Audience []string  `json:"audience,omitempty"`
	AuthTime time.Time `json:"auth_time"`
	AMR      []string  `json:"amr,omitempty"`
	Expires  time.Time `json:"expires"`
	Used     bool      `json:"used,omitempty"`
}

type storedAccess struct {
	Family  string `json:"family,omitempty"`
	Kind    string `json:"kind"`
	Subject string `json:"subject"`
	UserID  string `json:"user_id,omitempty"`
	// ClientID is the application a client-credentials token was issued to.
	ClientID string    `json:"client_id,omitempty"`
	Issued   time.Time `json:"issued"`
	Gen      uint64    `json:"gen"`
	Expires  time.Time `json:"expires"`
}

type storedCounters struct {
	Gen    uint64 `json:"gen"`
	FamSeq uint64 `json:"fam_seq"`
}

// refreshKey is the map and record key of a refresh token.
func refreshKey(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// loadKeys returns the stored signing and crypto keys, making and storing them the first time;
// replicas starting together on an empty store all end up with the one set stored first.
func loadKeys(rec records.Store) (*ecdsa.PrivateKey, string, [32]byte, error) {
	var ck [32]byte
	fresh := func() (storedKeys, error) {
		// ES256: key generation is instant, unlike RSA, and every JOSE library verifies it.
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return storedKeys{}, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return storedKeys{}, err
		}
		rand.Read(ck[:])
		return storedKeys{KID: randomID(8), PKCS8: der, CryptoKey: ck[:]}, nil
	}
	var k storedKeys
	var err error
	if rec == nil {
		k, err = fresh()
	} else {
		err = rec.UpdateRecord(kindKeys, "server", func(old []byte) ([]byte, error) {
			if old != nil {
				return old, json.Unmarshal(old, &k)
			}
			if k, err = fresh(); err != nil {
				return nil, err
			}
			return json.Marshal(k)
		})
	}
	if err != nil {
		return nil, "", ck, fmt.Errorf("auth: server keys: %w", err)
	}
	key, err := x509.ParsePKCS8PrivateKey(k.PKCS8)
	ec, ok := key.(*ecdsa.PrivateKey)
	if err != nil || !ok || len(k.CryptoKey) != len(ck) {
		return nil, "", ck, fmt.Errorf("auth: stored server keys are unreadable (%v)", err)
	}
	copy(ck[:], k.CryptoKey)
	return ec, k.KID, ck, nil
}

// load fills the store with the stations, grants and tokens its records hold.
func (s *store) load() error {
	if s.rec == nil {
		return nil
	}
	stations, err := records.ListJSON[string](s.rec, kindStation)
	if err != nil {
		return fmt.Errorf("auth: load stations: %w", err)
	}
	for id, serial := range stations {
		s.stations[id] = serial
		if serial != "" {
			s.serials[serial] = id
		}
	}
	fams, err := records.ListJSON[storedFamily](s.rec, kindFamily)
	if err != nil {
		return fmt.Errorf("auth: load grants: %w", err)
	}
	byID := map[string]*family{}
	for id, f := range fams {
		byID[id] = &family{id: id, seq: f.Seq, kind: f.Kind, stationID: f.StationID, userID: f.UserID, serial: f.Serial, revoked: f.Revoked}
	}
	refresh, err := records.ListJSON[storedRefresh](s.rec, kindRefresh)
	if err != nil {
		return fmt.Errorf("auth: load refresh tokens: %w", err)
	}
	for k, r := range refresh {
		fam := byID[r.Family]
		if fam == nil {
			return fmt.Errorf("auth: refresh token record %s names unknown grant %q", k[:8], r.Family)
		}
		s.refresh[k] = &refreshRec{fam: fam, clientID: r.ClientID, subject: r.Subject, scopes: r.Scopes, audience: r.Audience,
			authTime: r.AuthTime, amr: r.AMR, expires: r.Expires, used: r.Used}
	}
	access, err := records.ListJSON[storedAccess](s.rec, kindAccess)
	if err != nil {
		return fmt.Errorf("auth: load access tokens: %w", err)
	}
	for id, a := range access {
		rec := &accessRec{kind: a.Kind, subject: a.Subject, userID: a.UserID, clientID: a.ClientID, issued: a.Issued, gen: a.Gen, expires: a.Expires}
		if a.Family != "" {
			if rec.fam = byID[a.Family]; rec.fam == nil {
				return fmt.Errorf("auth: access token record %q names unknown grant %q", id, a.Family)
			}
		}
		s.access[id] = rec
	}
	var c storedCounters
	if err := records.GetJSON(s.rec, kindCounters, "server", &c); err != nil && !errors.Is(err, records.ErrNotFound) {
		return fmt.Errorf("auth: load counters: %w", err)
	}
	s.gen, s.famSeq = c.Gen, c.FamSeq
	return nil
}

// The save helpers write one change through to the records (nothing without them). They run
// under s.mu, so writes reach the store in the order the changes were made.

func (s *store) put(kind, key string, v any) error {
	if s.rec == nil {
		return nil
	}
	if err := records.PutJSON(s.rec, kind, key, v); err != nil {
		return fmt.Errorf("auth: store %s: %w", kind, err)
	}
	return nil
}

func (s *store) del(kind, key string) error {
	if s.rec == nil {
		return nil
	}
	if err := s.rec.DeleteRecord(kind, key); err != nil {
		return fmt.Errorf("auth: store %s: %w", kind, err)
	}
	return nil
}

func (s *store) saveStationLocked(id, serial string) error { return s.put(kindStation, id, serial) }

func (s *store) saveFamilyLocked(f *family) error {
	return s.put(kindFamily, f.id, storedFamily{Seq: f.seq, Kind: f.kind, StationID: f.stationID, UserID: f.userID, Serial: f.serial, Revoked: f.revoked})
}

func (s *store) saveRefreshLocked(key string, r *refreshRec) error {
	return s.put(kindRefresh, key, storedRefresh{Family: r.fam.id, ClientID: r.clientID, Subject: r.subject, Scopes: r.scopes,
		Audience: r.audience, AuthTime: r.authTime, AMR: r.amr, Expires: r.expires, Used: r.used})
}

func (s *store) saveAccessLocked(id string, a *accessRec) error {
	st := storedAccess{Kind: a.kind, Subject: a.subject, UserID: a.userID, ClientID: a.clientID, Issued: a.issued, Gen: a.gen, Expires: a.expires}
	if a.fam != nil {
		st.Family = a.fam.id
	}
	return s.put(kindAccess, id, st)
}

func (s *store) saveCountersLocked() error {
	return s.put(kindCounters, "server", storedCounters{Gen: s.gen, FamSeq: s.famSeq})
}

// logged reports a write that failed where the caller has no error to return: the change
// holds in memory and is lost only if devcloud restarts before the next write of that record.
func (s *store) logged(err error) {
	if err != nil {
		s.srv.log.Error("auth: state not stored", "err", err)
	}
}
