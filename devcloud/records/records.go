// Package records is the durable state of devcloud beside its jobs: stations and their
// last-known state, fleet config documents, group membership, command results, badge links,
// station grants and the cloud's keys. Each part keeps its records as JSON values under a kind
// and a key; the job store's backends (memory, bbolt, PostgreSQL) hold them, so one --store
// flag decides where all of devcloud's state lives.
package records

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
)

// ErrNotFound is returned by Get for a key never put or deleted since.
var ErrNotFound = errors.New("records: not found")

// Store keeps records. Every implementation passes one conformance suite (the job store's
// tests): values come back byte for byte, Update is a read-modify-write no other writer can
// interleave with, even from another process sharing a PostgreSQL database.
type Store interface {
	// PutRecord stores value under (kind, key), replacing what was there; an empty value
	// deletes the record.
	PutRecord(kind, key string, value []byte) error
	// GetRecord returns the value under (kind, key); a missing one is ErrNotFound.
	GetRecord(kind, key string) ([]byte, error)
	// DeleteRecord removes (kind, key); a missing key is not an error.
	DeleteRecord(kind, key string) error
	// ListRecords returns every record of kind, by key.
	ListRecords(kind string) ([]Record, error)
	// UpdateRecord reads (kind, key) (nil when missing), and stores what fn returns; fn
	// returning an empty value deletes the record, an error stores nothing and is returned.
	UpdateRecord(kind, key string, fn func(old []byte) ([]byte, error)) error
}

// Record is one stored value.
type Record struct {
	Key   string
	Value []byte
}

// Mem keeps records in memory: tests and throw-away demos.
type Mem struct {
	mu sync.Mutex
	m  map[string]map[string][]byte
}

var _ Store = (*Mem)(nil)

// NewMem returns an empty in-memory store.
func NewMem() *Mem { return &Mem{m: map[string]map[string][]byte{}} }

// PutRecord implements Store.
func (s *Mem) PutRecord(kind, key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.putLocked(kind, key, value)
	return nil
}

func (s *Mem) putLocked(kind, key string, value []byte) {
	if len(value) == 0 {
		delete(s.m[kind], key)
		return
	}
	if s.m[kind] == nil {
		s.m[kind] = map[string][]byte{}
	}
	s.m[kind][key] = append([]byte{}, value...)
}

// GetRecord implements Store.
func (s *Mem) GetRecord(kind, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[kind][key]
	if !ok {
		return nil, fmt.Errorf("%w: %s %q", ErrNotFound, kind, key)
	}
	return append([]byte{}, v...), nil
}

// DeleteRecord implements Store.
func (s *Mem) DeleteRecord(kind, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m[kind], key)
	return nil
}

// ListRecords implements Store.
func (s *Mem) ListRecords(kind string) ([]Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Record, 0, len(s.m[kind]))
	for k, v := range s.m[kind] {
		out = append(out, Record{Key: k, Value: append([]byte{}, v...)})
	}
	Sort(out)
	return out, nil
}

// UpdateRecord implements Store.
func (s *Mem) UpdateRecord(kind, key string, fn func(old []byte) ([]byte, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var old []byte
	if v, ok := s.m[kind][key]; ok {
		old = append([]byte{}, v...)
	}
	v, err := fn(old)
	if err != nil {
		return err
	}
	s.putLocked(kind, key, v)
	return nil
}

// Sort orders records by key, as every Store lists them.
func Sort(r []Record) { sort.Slice(r, func(a, b int) bool { return r[a].Key < r[b].Key }) }

// PutJSON stores v as JSON under (kind, key).
func PutJSON(s Store, kind, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("records: %s %q: %w", kind, key, err)
	}
	return s.PutRecord(kind, key, b)
}

// GetJSON reads (kind, key) into v; a missing record is ErrNotFound.
func GetJSON(s Store, kind, key string, v any) error {
	b, err := s.GetRecord(kind, key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("records: %s %q: %w", kind, key, err)
	}
	return nil
}

// ListJSON decodes every record of kind with decode, by key.
func ListJSON[T any](s Store, kind string) (map[string]T, error) {
	all, err := s.ListRecords(kind)
	if err != nil {
		return nil, err
	}
	out := make(map[string]T, len(all))
	for _, r := range all {
		var v T
		if err := json.Unmarshal(r.Value, &v); err != nil {
			return nil, fmt.Errorf("records: %s %q: %w", kind, r.Key, err)
		}
		out[r.Key] = v
	}
	return out, nil
}
