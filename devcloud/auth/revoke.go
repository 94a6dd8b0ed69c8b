package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"labelstation/devcloud/records"
)

// RevocationRecheck bounds how long a devcloud trusts its own memory that a station's grant is
// not revoked: a grant revoked through another devcloud on the store is refused here at most
// this long later (by the server's clock). Refreshes always ask the store.
const RevocationRecheck = 5 * time.Second

// revokedInStoreLocked reads grant f's revoked flag from the store and marks f revoked if the
// store says so. Without a store it does nothing. Callers hold s.mu.
func (s *store) revokedInStoreLocked(f *family) error {
	if s.rec == nil || f.revoked {
		return nil
	}
	var st storedFamily
	err := records.GetJSON(s.rec, kindFamily, f.id, &st)
	switch {
	case errors.Is(err, records.ErrNotFound):
		return nil // not written yet: its first token is being issued
	case err != nil:
		return fmt.Errorf("auth: grant %q: %w", f.id, err)
	}
	if st.Revoked {
		f.revoked = true
	}
	return nil
}

// recheckAccessLocked asks the store, at most once per RevocationRecheck for each token,
// whether station access token id held in memory was revoked through another devcloud: its
// record deleted or its grant revoked. gone reports the former; the latter marks a.fam.
// Callers hold s.mu.
func (s *store) recheckAccessLocked(id string, a *accessRec, now time.Time) (gone bool, err error) {
	if s.rec == nil || a.fam == nil || a.fam.revoked {
		return false, nil
	}
	if at, ok := s.checked[id]; ok && now.Sub(at) < RevocationRecheck && !now.Before(at) {
		return false, nil
	}
	_, err = s.rec.GetRecord(kindAccess, id)
	switch {
	case errors.Is(err, records.ErrNotFound):
		delete(s.access, id)
		delete(s.checked, id)
		return true, nil
	case err != nil:
		return false, fmt.Errorf("auth: access token: %w", err)
	}
	if err := s.revokedInStoreLocked(a.fam); err != nil {
		return false, err
	}
	if s.checked == nil || len(s.checked) > 100000 {
		s.checked = map[string]time.Time{} // bounded: forgetting only costs a read
	}
	s.checked[id] = now
	return false, nil
}

// revokeStoredFamily marks grant id revoked in the store, whoever holds it in memory.
func (s *store) revokeStoredFamily(id string) (bool, error) {
	changed := false
	err := s.rec.UpdateRecord(kindFamily, id, func(old []byte) ([]byte, error) {
		if old == nil {
			return nil, fmt.Errorf("auth: grant %q: %w", id, errNotFound)
		}
		var st storedFamily
		if err := json.Unmarshal(old, &st); err != nil {
			return nil, err
		}
		if st.Revoked {
			return old, nil
		}
		st.Revoked, changed = true, true
		return json.Marshal(st)
	})
	return changed, err
}

// revokeStationStoredLocked revokes, in the store, the station's grants that another devcloud
// issued and this one never saw; it returns their ids. Callers hold s.mu.
func (s *store) revokeStationStoredLocked(stationID string, seen map[string]bool) ([]string, error) {
	if s.rec == nil {
		return nil, nil
	}
	all, err := records.ListJSON[storedFamily](s.rec, kindFamily)
	if err != nil {
		return nil, fmt.Errorf("auth: grants: %w", err)
	}
	var ids []string
	for id, f := range all {
		if f.StationID != stationID || f.Revoked || seen[id] {
			continue
		}
		changed, err := s.revokeStoredFamily(id)
		if err != nil {
			return ids, err
		}
		if changed {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// refreshLocked finds a station refresh token: with a store, as the store has it now (another
// devcloud may have issued it, rotated it away or revoked its grant), else in memory.
// Callers hold s.mu.
func (s *store) refreshLocked(key string) (*refreshRec, bool, error) {
	r, ok := s.refresh[key]
	if s.rec == nil {
		return r, ok, nil
	}
	var st storedRefresh
	err := records.GetJSON(s.rec, kindRefresh, key, &st)
	switch {
	case errors.Is(err, records.ErrNotFound):
		return r, ok, nil
	case err != nil:
		return nil, false, fmt.Errorf("auth: refresh token: %w", err)
	}
	if !ok {
		var f storedFamily
		if err := records.GetJSON(s.rec, kindFamily, st.Family, &f); err != nil {
			return nil, false, fmt.Errorf("auth: refresh token: grant %q: %w", st.Family, err)
		}
		fam := &family{id: st.Family, seq: f.Seq, kind: f.Kind, stationID: f.StationID, userID: f.UserID, serial: f.Serial, revoked: f.Revoked}
		r = &refreshRec{fam: fam, clientID: st.ClientID, subject: st.Subject, scopes: st.Scopes, audience: st.Audience,
			authTime: st.AuthTime, amr: st.AMR, expires: st.Expires}
		s.refresh[key] = r
		s.stations[f.StationID] = f.Serial
	} else if err := s.revokedInStoreLocked(r.fam); err != nil {
		return nil, false, err
	}
	r.used = r.used || st.Used
	return r, true, nil
}

// errRotated is a refresh token already rotated away, here or on another devcloud.
var errRotated = errors.New("auth: refresh token already rotated")

// rotateLocked marks refresh token key used, once: of two devclouds rotating the same token at
// once, the second gets errRotated. Callers hold s.mu.
func (s *store) rotateLocked(key string, r *refreshRec) error {
	if s.rec == nil {
		return nil
	}
	return s.rec.UpdateRecord(kindRefresh, key, func(old []byte) ([]byte, error) {
		if old != nil {
			var st storedRefresh
			if err := json.Unmarshal(old, &st); err != nil {
				return nil, err
			}
			if st.Used {
				return nil, errRotated
			}
		}
		return json.Marshal(storedRefresh{Family: r.fam.id, ClientID: r.clientID, Subject: r.subject, Scopes: r.scopes,
			Audience: r.audience, AuthTime: r.authTime, AMR: r.amr, Expires: r.expires, Used: true})
	})
}
