package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"labelstation/devcloud/records"
)

// Device authorizations in progress are records, so a station may ask for its code at one
// devcloud, the admin approve it on another's page and the station poll a third, or either
// side of a restart. Without a durable store they are records in memory.
const (
	kindDevice   = "auth.device"   // hashToken(device code) → storedDevice; the code itself is never stored
	kindUserCode = "auth.usercode" // normalised user code → hashToken(device code)
)

// maxPolls bounds the poll history one authorization keeps.
const maxPolls = 64

// storedDevice is one RFC 8628 §3.1 device authorization in progress.
type storedDevice struct {
	ClientID   string        `json:"client_id"`
	UserCode   string        `json:"user_code"`
	Scopes     []string      `json:"scopes"`
	Serial     string        `json:"serial,omitempty"`
	Expires    time.Time     `json:"expires"`  // by the injected clock
	Interval   time.Duration `json:"interval"` // grows by 5 s on every slow_down (RFC 8628 §3.5)
	LastPoll   time.Time     `json:"last_poll"`
	Polls      []Poll        `json:"polls,omitempty"`
	Done       bool          `json:"done,omitempty"`
	Denied     bool          `json:"denied,omitempty"`
	Consumed   bool          `json:"consumed,omitempty"`
	StationID  string        `json:"station_id,omitempty"`
	ApprovedBy string        `json:"approved_by,omitempty"`
}

// deviceCodeKey carries the polled device code from the token endpoint to token creation,
// which the op hands only the authorization's state.
type deviceCodeKey struct{}

func (s *store) getDevice(key string) (*storedDevice, error) {
	var d storedDevice
	err := records.GetJSON(s.flowRecords(), kindDevice, key, &d)
	switch {
	case errors.Is(err, records.ErrNotFound):
		return nil, fmt.Errorf("auth: device authorization: %w", errNotFound)
	case err != nil:
		return nil, fmt.Errorf("auth: device authorization: %w", err)
	}
	return &d, nil
}

// updateDevice changes the authorization under key with fn atomically: of two devclouds
// deciding or redeeming it at once, one sees the other's change. A missing one is errNotFound;
// an error of fn stores nothing and is returned.
func (s *store) updateDevice(key string, fn func(d *storedDevice) error) (*storedDevice, error) {
	var out *storedDevice
	err := s.flowRecords().UpdateRecord(kindDevice, key, func(old []byte) ([]byte, error) {
		if old == nil {
			return nil, fmt.Errorf("auth: device authorization: %w", errNotFound)
		}
		var d storedDevice
		if err := json.Unmarshal(old, &d); err != nil {
			return nil, err
		}
		if err := fn(&d); err != nil {
			return nil, err
		}
		out = &d
		return json.Marshal(d)
	})
	return out, err
}

// deviceKeyByUserCode returns the record key of the authorization showing userCode.
func (s *store) deviceKeyByUserCode(userCode string) (string, error) {
	b, err := s.flowRecords().GetRecord(kindUserCode, normUserCode(userCode))
	switch {
	case errors.Is(err, records.ErrNotFound):
		return "", fmt.Errorf("user code %q: %w", userCode, ErrUnknownUserCode)
	case err != nil:
		return "", fmt.Errorf("auth: user code: %w", err)
	}
	return string(b), nil
}

func (s *store) StoreDeviceAuthorization(ctx context.Context, clientID, deviceCode, userCode string, _ time.Time, scopes []string) error {
	// The op computes expiry from the wall clock; the injected clock rules here.
	now := s.srv.now()
	serial, _ := ctx.Value(serialKey{}).(string)
	s.purgeDevices(now)
	key := hashToken(deviceCode)
	rec := s.flowRecords()
	err := rec.UpdateRecord(kindUserCode, normUserCode(userCode), func(old []byte) ([]byte, error) {
		if old != nil && string(old) != key {
			return nil, op.ErrDuplicateUserCode
		}
		return []byte(key), nil
	})
	if err != nil {
		return err
	}
	d := storedDevice{ClientID: clientID, UserCode: userCode, Scopes: scopes, Serial: serial,
		Expires: now.Add(s.srv.deviceTTL), Interval: s.srv.pollInterval, LastPoll: now}
	if err := records.PutJSON(rec, kindDevice, key, d); err != nil {
		return fmt.Errorf("auth: store device authorization: %w", err)
	}
	return nil
}

// purgeDevices deletes authorizations long expired, so low-entropy user codes are not held
// forever, at most once per flowPurgeEvery on this server; and expired token records.
func (s *store) purgeDevices(now time.Time) {
	s.mu.Lock()
	s.purgeLocked(now)
	due := now.Sub(s.lastDevicePurge) >= flowPurgeEvery || now.Before(s.lastDevicePurge)
	if due {
		s.lastDevicePurge = now
	}
	s.mu.Unlock()
	if !due {
		return
	}
	rec := s.flowRecords()
	var errs []error
	all, err := records.ListJSON[storedDevice](rec, kindDevice)
	errs = append(errs, err)
	for k, d := range all {
		if now.After(d.Expires.Add(s.srv.deviceTTL)) {
			errs = append(errs, rec.DeleteRecord(kindUserCode, normUserCode(d.UserCode)), rec.DeleteRecord(kindDevice, k))
		}
	}
	if err := errors.Join(errs...); err != nil {
		s.srv.log.Warn("auth: purging ended device authorizations", "err", err)
	}
}

// knowsDeviceCode reports whether dc is a device code that can still be polled; an error is
// the store's, not the code's.
func (s *store) knowsDeviceCode(dc string) (bool, error) {
	d, err := s.getDevice(hashToken(dc))
	if errors.Is(err, errNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return !d.Consumed, nil
}

func (s *store) GetDeviceAuthorizatonState(_ context.Context, clientID, deviceCode string) (*op.DeviceAuthorizationState, error) {
	now := s.srv.now()
	forced := s.srv.faults.take(&s.srv.faults.slowDown)
	var st *op.DeviceAuthorizationState
	slow := false
	_, err := s.updateDevice(hashToken(deviceCode), func(d *storedDevice) error {
		if d.ClientID != clientID || d.Consumed {
			return fmt.Errorf("auth: device code: %w", errNotFound)
		}
		p := Poll{At: now}
		defer func() {
			d.Polls = append(d.Polls, p)
			if len(d.Polls) > maxPolls {
				d.Polls = d.Polls[len(d.Polls)-maxPolls:]
			}
		}()
		tooFast := now.Sub(d.LastPoll) < d.Interval-pollTolerance
		d.LastPoll = now
		if forced || tooFast {
			// RFC 8628 §3.5: the client must add 5 s to its interval for this
			// and all later requests; the server holds it to that.
			d.Interval += 5 * time.Second
			p.Outcome, p.Forced, slow = "slow_down", !tooFast, true
			return nil
		}
		st = &op.DeviceAuthorizationState{
			ClientID: d.ClientID,
			Scopes:   d.Scopes,
			// The op compares Expires with the wall clock; translate the
			// injected clock's verdict into a wall-clock time on the right side.
			Expires: time.Now().Add(time.Hour),
			Done:    d.Done,
			Denied:  d.Denied,
		}
		switch {
		case d.Denied:
			p.Outcome = "access_denied"
		case d.Done:
			p.Outcome = "approved"
			st.Subject = d.StationID
			st.AuthTime = now
			st.AMR = []string{"admin"}
		case now.After(d.Expires):
			p.Outcome = "expired_token"
			st.Expires = time.Now().Add(-time.Second)
		default:
			p.Outcome = "authorization_pending"
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if slow {
		// The op maps a deadline error to slow_down.
		return nil, context.DeadlineExceeded
	}
	return st, nil
}

// consumeDevice marks the approved device authorization behind r as used — a device code
// yields tokens once, whichever devcloud is asked — and starts its token family. It runs
// without s.mu held.
func (s *store) consumeDevice(ctx context.Context, r *op.DeviceAuthorizationState) (*family, error) {
	dc, _ := ctx.Value(deviceCodeKey{}).(string)
	if dc == "" {
		return nil, oidc.ErrInvalidGrant().WithDescription("device code missing")
	}
	d, err := s.updateDevice(hashToken(dc), func(d *storedDevice) error {
		if !d.Done || d.Consumed || d.StationID != r.Subject || d.ClientID != r.ClientID {
			return oidc.ErrInvalidGrant().WithDescription("device code already used")
		}
		d.Consumed = true
		return nil
	})
	if errors.Is(err, errNotFound) {
		return nil, oidc.ErrInvalidGrant().WithDescription("device code already used")
	}
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Approved perhaps by another devcloud: learn the station here too.
	s.stations[d.StationID] = d.Serial
	if d.Serial != "" {
		s.serials[d.Serial] = d.StationID
	}
	s.famSeq++
	fam := &family{id: randomID(8), seq: s.famSeq, kind: KindStation, stationID: d.StationID, userID: d.ApprovedBy, serial: d.Serial}
	if err := errors.Join(s.saveFamilyLocked(fam), s.saveCountersLocked()); err != nil {
		return nil, err
	}
	return fam, nil
}

// approve decides the authorization showing userCode for userID, once, and returns the
// station id: the same serial always gets the same id, so a reset station keeps its identity.
func (s *Server) approve(userCode, userID string) (string, error) {
	key, err := s.store.deviceKeyByUserCode(userCode)
	if err != nil {
		return "", err
	}
	d, err := s.store.getDevice(key)
	if err != nil {
		return "", fmt.Errorf("user code %q: %w", userCode, ErrUnknownUserCode)
	}
	id, err := s.store.stationForSerial(d.Serial)
	if err != nil {
		return "", err
	}
	if _, err := s.store.updateDevice(key, s.decision(userCode, func(d *storedDevice) {
		d.Done, d.StationID, d.ApprovedBy = true, id, userID
	})); err != nil {
		return "", err
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	if d.Serial != "" {
		s.store.serials[d.Serial] = id
	}
	s.store.stations[id] = d.Serial
	if err := s.store.saveStationLocked(id, d.Serial); err != nil {
		return "", err
	}
	s.log.Info("auth: station approved", "station_id", id, "serial", d.Serial, "user", userID)
	return id, nil
}

// decision returns the update that applies set to an undecided, unexpired authorization.
func (s *Server) decision(userCode string, set func(d *storedDevice)) func(d *storedDevice) error {
	return func(d *storedDevice) error {
		if d.Done || d.Denied {
			return fmt.Errorf("user code %q: %w", userCode, ErrAlreadyDecided)
		}
		if s.now().After(d.Expires) {
			return fmt.Errorf("user code %q: %w", userCode, ErrCodeExpired)
		}
		set(d)
		return nil
	}
}

// stationForSerial returns the id of the station that enrolled with serial, here or on
// another devcloud on the store, or a new id.
func (s *store) stationForSerial(serial string) (string, error) {
	if serial == "" {
		return newStationID(), nil
	}
	s.mu.Lock()
	id := s.serials[serial]
	s.mu.Unlock()
	if id != "" || s.rec == nil {
		if id == "" {
			id = newStationID()
		}
		return id, nil
	}
	all, err := records.ListJSON[string](s.rec, kindStation)
	if err != nil {
		return "", fmt.Errorf("auth: stations: %w", err)
	}
	for sid, sn := range all {
		if sn == serial {
			return sid, nil
		}
	}
	return newStationID(), nil
}

// polls returns the polls recorded for userCode, oldest first.
func (s *store) polls(userCode string) []Poll {
	key, err := s.deviceKeyByUserCode(userCode)
	if err != nil {
		return nil
	}
	d, err := s.getDevice(key)
	if err != nil {
		return nil
	}
	return d.Polls
}

// pending returns the undecided, unexpired authorization showing userCode.
func (s *Server) pending(userCode string) (*storedDevice, error) {
	key, err := s.store.deviceKeyByUserCode(userCode)
	if err != nil {
		return nil, err
	}
	d, err := s.store.getDevice(key)
	if err != nil {
		return nil, fmt.Errorf("user code %q: %w", userCode, ErrUnknownUserCode)
	}
	if err := s.decision(userCode, func(*storedDevice) {})(d); err != nil {
		return nil, err
	}
	return d, nil
}
