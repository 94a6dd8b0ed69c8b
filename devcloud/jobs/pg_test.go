package jobs

import (
	"context"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"labelstation/internal/pgtest"
)

// testPostgres is pgtest.Database: a throw-away database, or the test skips.
func testPostgres(t testing.TB) string { return pgtest.Database(t) }

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
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) || len(want) < 2 {
		t.Fatalf("schema_migrations = %q, %v", got, err)
	}
}
