package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"labelstation/devcloud/auth"
)

// PostgreSQL also keeps devcloud's registered applications and their refresh grants
// (migration 0004), so every replica sees them and they survive a restart.

var _ auth.AppStore = (*PGStore)(nil)

// PutApp implements auth.AppStore.
func (s *PGStore) PutApp(a auth.RegisteredApp) error {
	ctx, cancel := s.ctx()
	defer cancel()
	doc, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("jobs: app %q: %w", a.ClientID, err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO oauth_apps (client_id, doc) VALUES ($1, $2)
		ON CONFLICT (client_id) DO UPDATE SET doc = EXCLUDED.doc`, a.ClientID, doc)
	if err != nil {
		return fmt.Errorf("jobs: put app %q: %w", a.ClientID, err)
	}
	return nil
}

// GetApp implements auth.AppStore.
func (s *PGStore) GetApp(id string) (auth.RegisteredApp, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var a auth.RegisteredApp
	var doc []byte
	err := s.pool.QueryRow(ctx, `SELECT doc FROM oauth_apps WHERE client_id = $1`, id).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, fmt.Errorf("%w: %q", auth.ErrUnknownApp, id)
	}
	if err != nil {
		return a, fmt.Errorf("jobs: get app %q: %w", id, err)
	}
	if err := json.Unmarshal(doc, &a); err != nil {
		return a, fmt.Errorf("jobs: app %q: stored doc: %w", id, err)
	}
	return a, nil
}

// ListApps implements auth.AppStore.
func (s *PGStore) ListApps() ([]auth.RegisteredApp, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT doc FROM oauth_apps ORDER BY client_id`)
	if err != nil {
		return nil, fmt.Errorf("jobs: list apps: %w", err)
	}
	docs, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, fmt.Errorf("jobs: list apps: %w", err)
	}
	out := make([]auth.RegisteredApp, len(docs))
	for i, d := range docs {
		if err := json.Unmarshal(d, &out[i]); err != nil {
			return nil, fmt.Errorf("jobs: list apps: stored doc: %w", err)
		}
	}
	return out, nil
}

// DeleteApp implements auth.AppStore.
func (s *PGStore) DeleteApp(id string) error {
	ctx, cancel := s.ctx()
	defer cancel()
	tag, err := s.pool.Exec(ctx, `DELETE FROM oauth_apps WHERE client_id = $1`, id)
	if err != nil {
		return fmt.Errorf("jobs: delete app %q: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: %q", auth.ErrUnknownApp, id)
	}
	return nil
}

// pgExec is what a pool and a transaction share.
type pgExec interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}

func insertGrant(ctx context.Context, q pgExec, g auth.Grant) error {
	doc, err := json.Marshal(g)
	if err != nil {
		return fmt.Errorf("jobs: grant: %w", err)
	}
	_, err = q.Exec(ctx, `INSERT INTO oauth_grants (token_hash, family, user_id, used, revoked, doc)
		VALUES ($1, $2, $3, $4, $5, $6)`, g.TokenHash, g.Family, g.UserID, g.Used, g.Revoked, doc)
	if err != nil {
		return fmt.Errorf("jobs: add grant: %w", err)
	}
	return nil
}

// AddGrant implements auth.AppStore.
func (s *PGStore) AddGrant(g auth.Grant) error {
	ctx, cancel := s.ctx()
	defer cancel()
	return insertGrant(ctx, s.pool, g)
}

const pgGrantCols = `doc, used, revoked`

func scanGrant(row pgx.Row) (auth.Grant, error) {
	var g auth.Grant
	var doc []byte
	var used, revoked bool
	err := row.Scan(&doc, &used, &revoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return g, auth.ErrUnknownGrant
	}
	if err != nil {
		return g, fmt.Errorf("jobs: grant: %w", err)
	}
	if err := json.Unmarshal(doc, &g); err != nil {
		return g, fmt.Errorf("jobs: grant: stored doc: %w", err)
	}
	g.Used, g.Revoked = used, revoked // the columns are the truth for what an update changes
	return g, nil
}

// GetGrant implements auth.AppStore.
func (s *PGStore) GetGrant(h string) (auth.Grant, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	return scanGrant(s.pool.QueryRow(ctx, `SELECT `+pgGrantCols+` FROM oauth_grants WHERE token_hash = $1`, h))
}

// RotateGrant implements auth.AppStore: the row lock makes two replicas racing with the same
// token see one rotation and one reuse.
func (s *PGStore) RotateGrant(oldHash string, next auth.Grant) error {
	ctx, cancel := s.ctx()
	defer cancel()
	var reused bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		old, err := scanGrant(tx.QueryRow(ctx, `SELECT `+pgGrantCols+` FROM oauth_grants WHERE token_hash = $1 FOR UPDATE`, oldHash))
		switch {
		case err != nil:
			return err
		case old.Revoked:
			return auth.ErrGrantRevoked
		case old.Used:
			reused = true
			_, err := tx.Exec(ctx, `UPDATE oauth_grants SET revoked = true WHERE family = $1`, old.Family)
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE oauth_grants SET used = true WHERE token_hash = $1`, oldHash); err != nil {
			return err
		}
		return insertGrant(ctx, tx, next)
	})
	if err == nil && reused {
		return auth.ErrGrantReused
	}
	if err != nil && !errors.Is(err, auth.ErrGrantRevoked) && !errors.Is(err, auth.ErrUnknownGrant) {
		return fmt.Errorf("jobs: rotate grant: %w", err)
	}
	return err
}

// RevokeGrantFamily implements auth.AppStore.
func (s *PGStore) RevokeGrantFamily(family string) (int, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var n int
	err := s.pool.QueryRow(ctx, `WITH r AS (
			UPDATE oauth_grants g SET revoked = true FROM oauth_grants o
			WHERE g.token_hash = o.token_hash AND g.family = $1 AND NOT g.revoked
			RETURNING o.used)
		SELECT count(*) FILTER (WHERE NOT used) FROM r`, family).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("jobs: revoke grant: %w", err)
	}
	return n, nil
}

// PurgeGrants implements auth.AppStore.
func (s *PGStore) PurgeGrants(t time.Time) (int, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	tag, err := s.pool.Exec(ctx, `DELETE FROM oauth_grants WHERE (doc->>'expires')::timestamptz < $1`, t)
	if err != nil {
		return 0, fmt.Errorf("jobs: purge grants: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// ListGrants implements auth.AppStore.
func (s *PGStore) ListGrants(user string) ([]auth.Grant, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT `+pgGrantCols+` FROM oauth_grants
		WHERE ($1 = '' OR user_id = $1) AND NOT used AND NOT revoked`, user)
	if err != nil {
		return nil, fmt.Errorf("jobs: list grants: %w", err)
	}
	defer rows.Close()
	var out []auth.Grant
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("jobs: list grants: %w", err)
	}
	return out, nil
}
