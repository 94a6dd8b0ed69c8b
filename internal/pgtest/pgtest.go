// Package pgtest gives tests a throw-away PostgreSQL database.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Database creates a throw-away database on the PostgreSQL named by $LRS_TEST_POSTGRES
// (default: 127.0.0.1:5432, trust auth as postgres or root, database test), drops it when the
// test ends, and returns its URL. It skips the test when no server answers.
func Database(t testing.TB) string {
	t.Helper()
	bases := []string{os.Getenv("LRS_TEST_POSTGRES")}
	if bases[0] == "" {
		bases = []string{
			"postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
			"postgres://root@127.0.0.1:5432/test?sslmode=disable",
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	for _, base := range bases {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		defer conn.Close(ctx)
		var b [6]byte
		rand.Read(b[:])
		name := "lrs_test_" + hex.EncodeToString(b[:])
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
			t.Fatalf("postgres: create test database: %v", err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := pgx.Connect(ctx, base)
			if err != nil {
				t.Errorf("postgres: drop %s: %v", name, err)
				return
			}
			defer c.Close(ctx)
			if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
				t.Errorf("postgres: drop %s: %v", name, err)
			}
		})
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/" + name
		return u.String()
	}
	t.Skip(fmt.Sprintf("no PostgreSQL to test against (%v); start one on 127.0.0.1:5432 with trust auth and a database named test, or set LRS_TEST_POSTGRES=postgres://user@host:port/db", errs))
	return ""
}
