// Package jobstest opens job stores for tests of the packages that keep their state in one:
// each kind, with a way to reopen the same data as a restart of devcloud would.
package jobstest

import (
	"context"
	"path/filepath"
	"testing"

	"labelstation/devcloud/jobs"
	"labelstation/internal/pgtest"
)

// Kind is one store implementation. Spec opens a fresh store's data (a new bolt file, a new
// throw-away database) and returns the --store value that names it; Durable says whether
// opening the spec again finds what was stored.
type Kind struct {
	Name    string
	Durable bool
	Spec    func(t testing.TB) string
}

// Kinds are memory, bolt and PostgreSQL (skipped, saying why, when no server runs).
func Kinds() []Kind {
	return []Kind{
		{"memory", false, func(testing.TB) string { return "memory" }},
		{"bolt", true, func(t testing.TB) string { return "bolt:" + filepath.Join(t.TempDir(), "devcloud.db") }},
		{"postgres", true, pgtest.Database},
	}
}

// Open opens spec and closes it when the test ends.
func Open(t testing.TB, spec string) jobs.Store {
	t.Helper()
	s, err := jobs.Open(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// ForEach runs test once per kind, as a subtest named after it.
func ForEach(t *testing.T, test func(t *testing.T, k Kind)) {
	for _, k := range Kinds() {
		t.Run(k.Name, func(t *testing.T) { test(t, k) })
	}
}
