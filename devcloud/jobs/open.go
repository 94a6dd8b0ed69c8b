package jobs

import (
	"context"
	"fmt"
	"strings"
)

// Open opens the store a flag names: "memory", "bolt:PATH" or a PostgreSQL URL
// (postgres://user@host:port/db?sslmode=disable).
func Open(ctx context.Context, spec string) (Store, error) {
	switch {
	case spec == "memory":
		return NewMemStore(), nil
	case strings.HasPrefix(spec, "bolt:"):
		path := strings.TrimPrefix(spec, "bolt:")
		if path == "" {
			return nil, fmt.Errorf("jobs: store %q: bolt: needs a file path (bolt:state/devcloud.db)", spec)
		}
		return OpenBolt(path)
	case strings.HasPrefix(spec, "postgres://"), strings.HasPrefix(spec, "postgresql://"):
		return OpenPostgres(ctx, spec)
	}
	return nil, fmt.Errorf("jobs: store %q: want memory, bolt:PATH or postgres://...", spec)
}
