package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// testPostgres creates a throw-away database on the PostgreSQL named by $LRS_TEST_POSTGRES
// (default: 127.0.0.1:5432, trust auth as postgres or root, database test), drops it when the
// test ends, and returns its URL. It skips the test when no server answers.
func testPostgres(t testing.TB) string {
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

// Replicas starting together on an empty database migrate it once; the schema records each
// migration's version.
func TestPostgresMigrationsApplyOnce(t *testing.T) {
	url := testPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			s, err := OpenPostgres(ctx, url)
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, `SELECT version, name FROM schema_migrations ORDER BY version`)
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var v int
		var n string
		err := r.Scan(&v, &n)
		return fmt.Sprint(v, " ", n), err
	})
	// One row per embedded migration file, in version order.
	files, _ := fs.Glob(migrations, "migrations/*.sql")
	var want []string
	for _, f := range files {
		base := strings.TrimPrefix(f, "migrations/")
		num, _, _ := strings.Cut(base, "_")
		v, _ := strconv.Atoi(num)
		want = append(want, fmt.Sprint(v, " ", base))
	}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("schema_migrations = %q, %v; want %q", got, err, want)
	}
}
