package jobs

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"labelstation/devcloud/records"
)

func recordsOf(t *testing.T, s Store) records.Store {
	t.Helper()
	r, ok := s.(records.Store)
	if !ok {
		t.Fatalf("%T keeps no records", s)
	}
	return r
}

func TestRecordsPutGetListDelete(t *testing.T) {
	forEachStore(t, func(t *testing.T, k storeKind) {
		s, _ := k.open(t)
		r := recordsOf(t, s)
		if _, err := r.GetRecord("station", "st-1"); !errors.Is(err, records.ErrNotFound) {
			t.Fatalf("missing record: %v, want ErrNotFound", err)
		}
		for _, key := range []string{"st-2", "st-1", "st-10"} {
			if err := r.PutRecord("station", key, []byte(`{"id":"`+key+`"}`)); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.PutRecord("group", "st-1", []byte(`other kind`)); err != nil {
			t.Fatal(err)
		}
		if err := r.PutRecord("station", "st-2", []byte(`{"id":"st-2","v":2}`)); err != nil {
			t.Fatal(err)
		}
		got, err := r.GetRecord("station", "st-2")
		if err != nil || string(got) != `{"id":"st-2","v":2}` {
			t.Fatalf("get = %s, %v", got, err)
		}
		list, err := r.ListRecords("station")
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, rec := range list {
			keys = append(keys, rec.Key)
		}
		if want := "[st-1 st-10 st-2]"; fmt.Sprint(keys) != want {
			t.Fatalf("keys %v, want %s", keys, want)
		}
		if err := r.DeleteRecord("station", "st-1"); err != nil {
			t.Fatal(err)
		}
		if err := r.DeleteRecord("station", "never"); err != nil {
			t.Fatalf("deleting a missing record: %v", err)
		}
		if err := r.PutRecord("station", "st-10", nil); err != nil {
			t.Fatal(err)
		}
		if list, _ := r.ListRecords("station"); len(list) != 1 || list[0].Key != "st-2" {
			t.Fatalf("after deletes: %+v", list)
		}
		if other, _ := r.GetRecord("group", "st-1"); string(other) != "other kind" {
			t.Fatalf("kinds are not apart: %q", other)
		}
		if list, err := r.ListRecords("nothing"); err != nil || len(list) != 0 {
			t.Fatalf("empty kind: %v %v", list, err)
		}
	})
}

// Concurrent read-modify-writes of one record never lose an update, and a refused update
// stores nothing.
func TestRecordsUpdateIsAtomic(t *testing.T) {
	forEachStore(t, func(t *testing.T, k storeKind) {
		s, _ := k.open(t)
		r := recordsOf(t, s)
		const workers, rounds = 6, 15
		var wg sync.WaitGroup
		errs := make(chan error, workers*rounds)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range rounds {
					errs <- r.UpdateRecord("counter", "gen", func(old []byte) ([]byte, error) {
						n := 0
						if old != nil {
							var err error
							if n, err = strconv.Atoi(string(old)); err != nil {
								return nil, err
							}
						}
						return []byte(strconv.Itoa(n + 1)), nil
					})
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		got, err := r.GetRecord("counter", "gen")
		if err != nil || string(got) != strconv.Itoa(workers*rounds) {
			t.Fatalf("counter = %s, %v; want %d", got, err, workers*rounds)
		}
		no := errors.New("no")
		if err := r.UpdateRecord("counter", "gen", func([]byte) ([]byte, error) { return []byte("0"), no }); !errors.Is(err, no) {
			t.Fatalf("refused update: %v", err)
		}
		if err := r.UpdateRecord("counter", "fresh", func([]byte) ([]byte, error) { return nil, no }); !errors.Is(err, no) {
			t.Fatalf("refused create: %v", err)
		}
		if _, err := r.GetRecord("counter", "fresh"); !errors.Is(err, records.ErrNotFound) {
			t.Fatalf("a refused create left a record: %v", err)
		}
		if got, _ := r.GetRecord("counter", "gen"); string(got) != strconv.Itoa(workers*rounds) {
			t.Fatalf("a refused update changed the record: %s", got)
		}
		if err := r.UpdateRecord("counter", "gen", func([]byte) ([]byte, error) { return nil, nil }); err != nil {
			t.Fatal(err)
		}
		if _, err := r.GetRecord("counter", "gen"); !errors.Is(err, records.ErrNotFound) {
			t.Fatalf("update to nothing did not delete: %v", err)
		}
	})
}

func TestRecordsSurviveReopen(t *testing.T) {
	forEachStore(t, func(t *testing.T, k storeKind) {
		if !k.durable {
			t.Skip("memory is not durable")
		}
		s, reopen := k.open(t)
		if err := recordsOf(t, s).PutRecord("keys", "badge", []byte{0, 1, 2, 0xff}); err != nil {
			t.Fatal(err)
		}
		s = reopen(s)
		got, err := recordsOf(t, s).GetRecord("keys", "badge")
		if err != nil || !bytes.Equal(got, []byte{0, 1, 2, 0xff}) {
			t.Fatalf("after reopen: %x %v", got, err)
		}
	})
}
