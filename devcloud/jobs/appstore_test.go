package jobs

import (
	"context"
	"path/filepath"
	"testing"

	"labelstation/devcloud/auth"
	"labelstation/devcloud/auth/authtest"
)

func TestBoltAppStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "devcloud.db")
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	authtest.AppStore(t, s, func() auth.AppStore {
		s.Close()
		if s, err = OpenBolt(path); err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestPostgresAppStore(t *testing.T) {
	url := testPostgres(t)
	s, err := OpenPostgres(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	authtest.AppStore(t, s, func() auth.AppStore {
		s.Close()
		if s, err = OpenPostgres(context.Background(), url); err != nil {
			t.Fatal(err)
		}
		return s
	})
}
