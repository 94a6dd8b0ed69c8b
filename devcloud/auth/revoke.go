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

// revokedInStore reads grant f's revoked flag from the store, when the last reading is older
// than maxAge, and marks f revoked if the store says so. Without a store it does nothing.
// Callers hold s.mu.
func (s *store) revokedInStoreLocked(f *family, now time.Time, maxAge time.Duration) error {
	if s.rec == nil || f.revoked {
		return nil
	}
	if at, ok := s.famChecked[f.id]; ok && maxAge > 0 && now.Sub(at) < maxAge && !now.Before(at) {
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
	if s.famChecked == nil {
		s.famChecked = map[string]time.Time{}
	}
	if len(s.famChecked) > 100000 {
		clear(s.famChecked) // bounded: forgetting only costs a read
	}
	s.famChecked[f.id] = now
	if st.Revoked {
		f.revoked = true
	}
	return nil
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

// revokeStoredRefreshLocked revokes the grant of a station refresh token another devcloud
// issued. Callers hold s.mu.
func (s *store) revokeStoredRefreshLocked(key string) error {
	if s.rec == nil {
		return nil
	}
	var r storedRefresh
	err := records.GetJSON(s.rec, kindRefresh, key, &r)
	if errors.Is(err, records.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("auth: refresh token: %w", err)
	}
	_, err = s.revokeStoredFamily(r.Family)
	return err
}
