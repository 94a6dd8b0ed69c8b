package jobs

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"labelstation/devcloud/auth"
)

// The bolt file also keeps devcloud's registered applications and their refresh grants, so
// both survive a restart.

var _ auth.AppStore = (*BoltStore)(nil)

var (
	boltApps   = []byte("oauth_apps")
	boltGrants = []byte("oauth_grants")
)

// appUpdate runs fn on the two buckets in a write transaction, creating them on first use.
func (s *BoltStore) appUpdate(fn func(apps, grants *bolt.Bucket) error) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		a, err := tx.CreateBucketIfNotExists(boltApps)
		if err != nil {
			return err
		}
		g, err := tx.CreateBucketIfNotExists(boltGrants)
		if err != nil {
			return err
		}
		return fn(a, g)
	})
}

// appView runs fn on the two buckets, nil before the first write.
func (s *BoltStore) appView(fn func(apps, grants *bolt.Bucket) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return fn(tx.Bucket(boltApps), tx.Bucket(boltGrants)) })
}

func boltPutJSON(b *bolt.Bucket, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("jobs: bolt %s %q: %w", b.Tx().DB().Path(), key, err)
	}
	return b.Put([]byte(key), raw)
}

// PutApp implements auth.AppStore.
func (s *BoltStore) PutApp(a auth.RegisteredApp) error {
	return s.appUpdate(func(apps, _ *bolt.Bucket) error { return boltPutJSON(apps, a.ClientID, a) })
}

// GetApp implements auth.AppStore.
func (s *BoltStore) GetApp(id string) (auth.RegisteredApp, error) {
	var a auth.RegisteredApp
	err := s.appView(func(apps, _ *bolt.Bucket) error {
		var v []byte
		if apps != nil {
			v = apps.Get([]byte(id))
		}
		if v == nil {
			return fmt.Errorf("%w: %q", auth.ErrUnknownApp, id)
		}
		return json.Unmarshal(v, &a)
	})
	return a, err
}

// ListApps implements auth.AppStore.
func (s *BoltStore) ListApps() ([]auth.RegisteredApp, error) {
	var out []auth.RegisteredApp
	err := s.appView(func(apps, _ *bolt.Bucket) error {
		if apps == nil {
			return nil
		}
		return apps.ForEach(func(_, v []byte) error {
			var a auth.RegisteredApp
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("jobs: bolt app: %w", err)
			}
			out = append(out, a)
			return nil
		})
	})
	return out, err
}

// DeleteApp implements auth.AppStore.
func (s *BoltStore) DeleteApp(id string) error {
	return s.appUpdate(func(apps, _ *bolt.Bucket) error {
		if apps.Get([]byte(id)) == nil {
			return fmt.Errorf("%w: %q", auth.ErrUnknownApp, id)
		}
		return apps.Delete([]byte(id))
	})
}

// AddGrant implements auth.AppStore.
func (s *BoltStore) AddGrant(g auth.Grant) error {
	return s.appUpdate(func(_, grants *bolt.Bucket) error { return boltPutJSON(grants, g.TokenHash, g) })
}

func boltGrant(grants *bolt.Bucket, h string) (auth.Grant, error) {
	var g auth.Grant
	var v []byte
	if grants != nil {
		v = grants.Get([]byte(h))
	}
	if v == nil {
		return g, auth.ErrUnknownGrant
	}
	if err := json.Unmarshal(v, &g); err != nil {
		return g, fmt.Errorf("jobs: bolt grant: %w", err)
	}
	return g, nil
}

// GetGrant implements auth.AppStore.
func (s *BoltStore) GetGrant(h string) (auth.Grant, error) {
	var g auth.Grant
	err := s.appView(func(_, grants *bolt.Bucket) (err error) {
		g, err = boltGrant(grants, h)
		return err
	})
	return g, err
}

// RotateGrant implements auth.AppStore. A reuse commits the revocation and then reports it.
func (s *BoltStore) RotateGrant(oldHash string, next auth.Grant) error {
	var reused bool
	err := s.appUpdate(func(_, grants *bolt.Bucket) error {
		old, err := boltGrant(grants, oldHash)
		switch {
		case err != nil:
			return err
		case old.Revoked:
			return auth.ErrGrantRevoked
		case old.Used:
			reused = true
			_, err := boltRevokeFamily(grants, old.Family)
			return err
		}
		old.Used = true
		if err := boltPutJSON(grants, oldHash, old); err != nil {
			return err
		}
		return boltPutJSON(grants, next.TokenHash, next)
	})
	if err == nil && reused {
		return auth.ErrGrantReused
	}
	return err
}

func boltRevokeFamily(grants *bolt.Bucket, family string) (int, error) {
	n := 0
	var changed []auth.Grant
	err := grants.ForEach(func(_, v []byte) error {
		var g auth.Grant
		if err := json.Unmarshal(v, &g); err != nil {
			return fmt.Errorf("jobs: bolt grant: %w", err)
		}
		if g.Family == family && !g.Revoked {
			if !g.Used {
				n++
			}
			g.Revoked = true
			changed = append(changed, g)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, g := range changed { // bbolt forbids writes inside ForEach
		if err := boltPutJSON(grants, g.TokenHash, g); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// RevokeGrantFamily implements auth.AppStore.
func (s *BoltStore) RevokeGrantFamily(family string) (int, error) {
	var n int
	err := s.appUpdate(func(_, grants *bolt.Bucket) (err error) {
		n, err = boltRevokeFamily(grants, family)
		return err
	})
	return n, err
}

// PurgeGrants implements auth.AppStore.
func (s *BoltStore) PurgeGrants(t time.Time) (int, error) {
	n := 0
	err := s.appUpdate(func(_, grants *bolt.Bucket) error {
		var gone [][]byte
		err := grants.ForEach(func(k, v []byte) error {
			var g auth.Grant
			if err := json.Unmarshal(v, &g); err != nil {
				return fmt.Errorf("jobs: bolt grant: %w", err)
			}
			if g.Expires.Before(t) {
				gone = append(gone, append([]byte(nil), k...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range gone { // bbolt forbids writes inside ForEach
			if err := grants.Delete(k); err != nil {
				return err
			}
		}
		n = len(gone)
		return nil
	})
	return n, err
}

// ListGrants implements auth.AppStore.
func (s *BoltStore) ListGrants(user string) ([]auth.Grant, error) {
	var out []auth.Grant
	err := s.appView(func(_, grants *bolt.Bucket) error {
		if grants == nil {
			return nil
		}
		return grants.ForEach(func(_, v []byte) error {
			var g auth.Grant
			if err := json.Unmarshal(v, &g); err != nil {
				return fmt.Errorf("jobs: bolt grant: %w", err)
			}
			if (user == "" || g.UserID == user) && !g.Used && !g.Revoked {
				out = append(out, g)
			}
			return nil
		})
	})
	return out, err
}
