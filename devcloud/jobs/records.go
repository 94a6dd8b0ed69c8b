package jobs

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	bolt "go.etcd.io/bbolt"

	"labelstation/devcloud/records"
)

// Every job store also keeps devcloud's other records, in the same file or database, so one
// --store names all of devcloud's state and one backup holds it.
var (
	_ records.Store = (*MemStore)(nil)
	_ records.Store = (*BoltStore)(nil)
	_ records.Store = (*PGStore)(nil)
)

// boltRecords is the bucket of records; each kind is a bucket inside it.
var boltRecords = []byte("records")

// PutRecord implements records.Store.
func (s *BoltStore) PutRecord(kind, key string, value []byte) error {
	return s.UpdateRecord(kind, key, func([]byte) ([]byte, error) { return value, nil })
}

// GetRecord implements records.Store.
func (s *BoltStore) GetRecord(kind, key string) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(boltRecords).Bucket([]byte(kind)); b != nil {
			if v := b.Get([]byte(key)); v != nil {
				out = append([]byte{}, v...)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("jobs: record %s %q: %w", kind, key, err)
	}
	if out == nil {
		return nil, fmt.Errorf("%w: %s %q", records.ErrNotFound, kind, key)
	}
	return out, nil
}

// DeleteRecord implements records.Store.
func (s *BoltStore) DeleteRecord(kind, key string) error {
	return s.UpdateRecord(kind, key, func([]byte) ([]byte, error) { return nil, nil })
}

// ListRecords implements records.Store.
func (s *BoltStore) ListRecords(kind string) ([]records.Record, error) {
	var out []records.Record
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(boltRecords).Bucket([]byte(kind))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			out = append(out, records.Record{Key: string(k), Value: append([]byte{}, v...)})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("jobs: records %s: %w", kind, err)
	}
	return out, nil // bbolt iterates in key order
}

// UpdateRecord implements records.Store: one bbolt write transaction.
func (s *BoltStore) UpdateRecord(kind, key string, fn func(old []byte) ([]byte, error)) error {
	var refused error
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(boltRecords).CreateBucketIfNotExists([]byte(kind))
		if err != nil {
			return err
		}
		var old []byte
		if v := b.Get([]byte(key)); v != nil {
			old = append([]byte{}, v...)
		}
		v, err := fn(old)
		if err != nil {
			refused = err
			return errUnchanged
		}
		if len(v) == 0 {
			return b.Delete([]byte(key))
		}
		return b.Put([]byte(key), v)
	})
	if refused != nil {
		return refused
	}
	if err != nil {
		return fmt.Errorf("jobs: record %s %q: %w", kind, key, err)
	}
	return nil
}

// PutRecord implements records.Store.
func (s *PGStore) PutRecord(kind, key string, value []byte) error {
	if len(value) == 0 {
		return s.DeleteRecord(kind, key)
	}
	ctx, done, err := s.call()
	if err != nil {
		return err
	}
	defer done()
	_, err = s.pool.Exec(ctx, `INSERT INTO records (kind, key, value) VALUES ($1, $2, $3)
		ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value, updated = now()`, kind, key, nonNil(value))
	if err != nil {
		return fmt.Errorf("jobs: record %s %q: %w", kind, key, err)
	}
	return nil
}

// GetRecord implements records.Store.
func (s *PGStore) GetRecord(kind, key string) ([]byte, error) {
	ctx, done, err := s.call()
	if err != nil {
		return nil, err
	}
	defer done()
	var v []byte
	err = s.pool.QueryRow(ctx, `SELECT value FROM records WHERE kind = $1 AND key = $2`, kind, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s %q", records.ErrNotFound, kind, key)
	}
	if err != nil {
		return nil, fmt.Errorf("jobs: record %s %q: %w", kind, key, err)
	}
	return nonNil(v), nil
}

// DeleteRecord implements records.Store.
func (s *PGStore) DeleteRecord(kind, key string) error {
	ctx, done, err := s.call()
	if err != nil {
		return err
	}
	defer done()
	if _, err := s.pool.Exec(ctx, `DELETE FROM records WHERE kind = $1 AND key = $2`, kind, key); err != nil {
		return fmt.Errorf("jobs: record %s %q: %w", kind, key, err)
	}
	return nil
}

// ListRecords implements records.Store.
func (s *PGStore) ListRecords(kind string) ([]records.Record, error) {
	ctx, done, err := s.call()
	if err != nil {
		return nil, err
	}
	defer done()
	rows, err := s.pool.Query(ctx, `SELECT key, value FROM records WHERE kind = $1 ORDER BY key COLLATE "C"`, kind)
	if err != nil {
		return nil, fmt.Errorf("jobs: records %s: %w", kind, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (records.Record, error) {
		var rec records.Record
		err := r.Scan(&rec.Key, &rec.Value)
		rec.Value = nonNil(rec.Value)
		return rec, err
	})
	if err != nil {
		return nil, fmt.Errorf("jobs: records %s: %w", kind, err)
	}
	return out, nil
}

// UpdateRecord implements records.Store. The row is locked for the transaction (created empty
// first when missing, so two replicas creating it at once also take turns).
func (s *PGStore) UpdateRecord(kind, key string, fn func(old []byte) ([]byte, error)) error {
	ctx, done, err := s.call()
	if err != nil {
		return err
	}
	defer done()
	var refused error
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var old []byte
		var existed bool
		err := tx.QueryRow(ctx, `SELECT value FROM records WHERE kind = $1 AND key = $2 FOR UPDATE`, kind, key).Scan(&old)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			// Take the key's lock by inserting a placeholder; a racing creator waits here and
			// then sees this transaction's outcome.
			if _, err := tx.Exec(ctx, `INSERT INTO records (kind, key, value) VALUES ($1, $2, '') ON CONFLICT DO NOTHING`, kind, key); err != nil {
				return err
			}
			err = tx.QueryRow(ctx, `SELECT value FROM records WHERE kind = $1 AND key = $2 FOR UPDATE`, kind, key).Scan(&old)
			if err != nil {
				return err
			}
			existed = len(old) > 0
		case err != nil:
			return err
		default:
			existed = true
		}
		if !existed {
			old = nil
		}
		v, err := fn(old)
		if err != nil {
			refused = err
			return errUnchanged
		}
		if len(v) == 0 {
			_, err = tx.Exec(ctx, `DELETE FROM records WHERE kind = $1 AND key = $2`, kind, key)
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE records SET value = $3, updated = now() WHERE kind = $1 AND key = $2`, kind, key, v)
		return err
	})
	if refused != nil {
		return refused
	}
	if err != nil {
		return fmt.Errorf("jobs: record %s %q: %w", kind, key, err)
	}
	return nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
