package jobs

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PGStore keeps jobs in PostgreSQL, for fleets: several job-service replicas share it, and
// PostgreSQL's row locks make a release race between them safe.
type PGStore struct {
	pool *pgxpool.Pool
	n    notifier
	// timeout bounds each call: the MQTT handlers that call the store have no deadline of their own.
	timeout time.Duration
	// gate lets no more calls at the pool than it has connections (pool_max_conns in the URL).
	gate *gate
}

var _ Store = (*PGStore)(nil)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLock is the advisory lock id that serializes migrations of replicas starting together.
const migrationLock = 0x6c72735f6a6f6273 // "lrs_jobs"

// OpenPostgres connects to url (postgres://user@host:port/db?...) and brings the schema up to
// date with the embedded migrations.
func OpenPostgres(ctx context.Context, url string) (*PGStore, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("jobs: postgres url: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("jobs: postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("jobs: postgres %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	conns := int(cfg.MaxConns)
	return &PGStore{pool: pool, timeout: 10 * time.Second, gate: newGate(conns, BusyQueue*conns, BusyWait)}, nil
}

// migrate applies, in version order, each migrations/NNNN_name.sql not yet in schema_migrations,
// every one in its own transaction with its version row.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("jobs: migrations: %w", err)
	}
	type mig struct {
		version int
		name    string
	}
	var list []mig
	for _, f := range files {
		base := strings.TrimPrefix(f, "migrations/")
		num, _, _ := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if err != nil {
			return fmt.Errorf("jobs: migration %s: name must start with its version number", base)
		}
		list = append(list, mig{v, f})
	}
	sort.Slice(list, func(a, b int) bool { return list[a].version < list[b].version })
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("jobs: migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(migrationLock)); err != nil {
		return fmt.Errorf("jobs: migrate: lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(migrationLock))
	_, err = conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied timestamptz NOT NULL DEFAULT now())`)
	if err != nil {
		return fmt.Errorf("jobs: migrate: %w", err)
	}
	// Each version is looked up, not compared with the highest: numbers given out to parallel
	// branches may land out of order, and a lower one merged later must still run.
	rows, err := conn.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("jobs: migrate: %w", err)
	}
	have, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return fmt.Errorf("jobs: migrate: %w", err)
	}
	for _, m := range list {
		if slices.Contains(have, m.version) {
			continue
		}
		sql, err := migrations.ReadFile(m.name)
		if err != nil {
			return fmt.Errorf("jobs: migration %s: %w", m.name, err)
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(sql)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, strings.TrimPrefix(m.name, "migrations/"))
			return err
		})
		if err != nil {
			return fmt.Errorf("jobs: migration %s: %w", m.name, err)
		}
	}
	return nil
}

// A call to a PostgreSQL store waits at most BusyWait for a free connection, behind at most
// BusyQueue callers per connection; beyond either it gets ErrBusy.
var (
	BusyWait  = 2 * time.Second
	BusyQueue = 8
)

const pgCols = `id, user_id, state, station, printed, error, last_seq, created, updated, doc, data, expires`

func pgScan(row pgx.Row) (Job, error) {
	var j Job
	var doc []byte
	var seq int64
	var expires *time.Time
	err := row.Scan(&j.ID, &j.User, &j.State, &j.Station, &j.Printed, &j.Error, &seq, &j.Created, &j.Updated, &doc, &j.Data, &expires)
	if err != nil {
		return Job{}, err
	}
	cols := j
	if err := json.Unmarshal(doc, &j); err != nil {
		return Job{}, fmt.Errorf("jobs: job %q: stored doc: %w", cols.ID, err)
	}
	// The columns are the truth for what a status or release changes.
	j.ID, j.User, j.State, j.Station, j.Printed, j.Error = cols.ID, cols.User, cols.State, cols.Station, cols.Printed, cols.Error
	j.Created, j.Updated, j.Data, j.lastSeq = cols.Created, cols.Updated, cols.Data, int(seq)
	j.Expires = time.Time{}
	if expires != nil {
		j.Expires = *expires
	}
	return j, nil
}

func (s *PGStore) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.timeout)
}

// call starts one call: it takes one of the store's connection slots (see gate) and bounds the
// call with the store's timeout; done ends it.
func (s *PGStore) call() (ctx context.Context, done func(), err error) {
	if err := s.gate.enter(); err != nil {
		return nil, nil, err
	}
	ctx, cancel := s.ctx()
	return ctx, func() { cancel(); s.gate.leave() }, nil
}

// Add implements Store.
func (s *PGStore) Add(j Job) error {
	ctx, done, err := s.call()
	if err != nil {
		return err
	}
	defer done()
	doc, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("jobs: add %q: %w", j.ID, err)
	}
	if j.Data == nil {
		j.Data = []byte{}
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO jobs (`+pgCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)`,
		j.ID, j.User, j.State, j.Station, j.Printed, j.Error, int64(j.lastSeq), j.Created, j.Updated, doc, j.Data, pgTime(j.Expires))
	if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "23505" {
		return fmt.Errorf("%w: %q", ErrExists, j.ID)
	}
	if err != nil {
		return fmt.Errorf("jobs: add %q: %w", j.ID, err)
	}
	s.n.touch()
	return nil
}

// Get implements Store.
func (s *PGStore) Get(id string) (Job, error) {
	ctx, done, err := s.call()
	if err != nil {
		return Job{}, err
	}
	defer done()
	j, err := pgScan(s.pool.QueryRow(ctx, `SELECT `+pgCols+` FROM jobs WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Job{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if err != nil {
		return Job{}, fmt.Errorf("jobs: get %q: %w", id, err)
	}
	return j, nil
}

// List implements Store.
func (s *PGStore) List(user string, states ...string) ([]Job, error) {
	ctx, done, err := s.call()
	if err != nil {
		return nil, err
	}
	defer done()
	if states == nil {
		states = []string{} // nil would be NULL, whose cardinality is not 0
	}
	rows, err := s.pool.Query(ctx, `SELECT `+pgCols+` FROM jobs
		WHERE ($1 = '' OR user_id = $1) AND (cardinality($2::text[]) = 0 OR state = ANY($2))
		ORDER BY created, id`, user, states)
	if err != nil {
		return nil, fmt.Errorf("jobs: list: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Job, error) { return pgScan(r) })
	if err != nil {
		return nil, fmt.Errorf("jobs: list: %w", err)
	}
	return out, nil
}

// Release implements Store. It is one UPDATE: when two stations race for a job, PostgreSQL
// makes the second wait for the first's row lock and then re-checks its WHERE on the row the
// first wrote, which now names the other station, so the job goes to exactly one of them.
func (s *PGStore) Release(user, station string, ids []string, now time.Time) ([]Job, error) {
	ctx, done, err := s.call()
	if err != nil {
		return nil, err
	}
	defer done()
	rows, err := s.pool.Query(ctx, `UPDATE jobs SET state = $4, station = $3, updated = $5
		WHERE id = ANY($1) AND user_id = $2
		  AND (state = $6 AND (expires IS NULL OR expires > $5) OR state = $4 AND station = $3) RETURNING `+pgCols,
		ids, user, station, StateReleased, now, StateHeld)
	if err != nil {
		return nil, fmt.Errorf("jobs: release: %w", err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Job, error) { return pgScan(r) })
	if err != nil {
		return nil, fmt.Errorf("jobs: release: %w", err)
	}
	s.n.touch()
	// In the order asked, as the other stores answer.
	byID := map[string]Job{}
	for _, j := range got {
		byID[j.ID] = j
	}
	var out []Job
	for _, id := range ids {
		if j, ok := byID[id]; ok {
			out = append(out, j)
			delete(byID, id)
		}
	}
	return out, nil
}

// ApplyStatus implements Store.
func (s *PGStore) ApplyStatus(station, id, state string, printed, seq int, errMsg string, now time.Time) (Job, bool, error) {
	ctx, done, err := s.call()
	if err != nil {
		return Job{}, false, err
	}
	defer done()
	var j Job
	var changed bool
	var refused error
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		j, err = pgScan(tx.QueryRow(ctx, `SELECT `+pgCols+` FROM jobs WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return err
		}
		prev := j.State
		changed, refused = applyStatus(&j, station, state, printed, seq, errMsg, now)
		if !changed {
			return nil
		}
		if ev := statusEvent(prev, &j); ev != "" {
			if err := pgQueue(ctx, tx, &j, ev, now); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `UPDATE jobs SET state = $2, printed = $3, error = $4, last_seq = $5, updated = $6 WHERE id = $1`,
			id, j.State, j.Printed, j.Error, int64(seq), now)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Job{}, false, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if err != nil {
		return Job{}, false, fmt.Errorf("jobs: status of %q: %w", id, err)
	}
	if changed {
		s.n.touch()
	}
	return j, changed, refused
}

// Validated implements Store. It rewrites the whole row: validation sets fields kept in doc.
func (s *PGStore) Validated(id string, labels int, data []byte, warnings []string, reason string, now time.Time) (Job, error) {
	ctx, done, err := s.call()
	if err != nil {
		return Job{}, err
	}
	defer done()
	var j Job
	var refused error
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		j, err = pgScan(tx.QueryRow(ctx, `SELECT `+pgCols+` FROM jobs WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return err
		}
		if refused = validated(&j, labels, data, warnings, reason, now); refused != nil {
			return nil
		}
		doc, err := json.Marshal(j)
		if err != nil {
			return err
		}
		stored := j.Data
		if stored == nil {
			stored = []byte{}
		}
		_, err = tx.Exec(ctx, `UPDATE jobs SET state = $2, error = $3, updated = $4, doc = $5, data = $6 WHERE id = $1`,
			id, j.State, j.Error, now, doc, stored)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Job{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if err != nil {
		return Job{}, fmt.Errorf("jobs: validated %q: %w", id, err)
	}
	if refused == nil {
		s.n.touch()
	}
	return j, refused
}

// WaitFor implements Store. Another replica may change the job without this process hearing
// of it, so it also looks again every half second.
func (s *PGStore) WaitFor(ctx context.Context, id string, cond func(Job) bool) (Job, error) {
	return waitFor(ctx, id, cond, s.Get, s.n.changes, 500*time.Millisecond)
}

// Close implements Store.
func (s *PGStore) Close() error {
	s.pool.Close()
	return nil
}
