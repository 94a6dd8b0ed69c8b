package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgTime stores the zero time as NULL.
func pgTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// pgQueue queues j's call for event in tx unless one is queued already.
func pgQueue(ctx context.Context, tx pgx.Tx, j *Job, event string, now time.Time) error {
	cb, ok, err := callbackFor(j, event, now)
	if err != nil || !ok {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO callbacks (id, job_id, app, url, event, body, created, next)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (id) DO NOTHING`,
		cb.ID, cb.Job, cb.App, cb.URL, cb.Event, cb.Body, cb.Created, cb.Next)
	return err
}

// Cancel implements Store.
func (s *PGStore) Cancel(id string, now time.Time) (Job, error) {
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
		if refused = cancel(&j, now); refused != nil {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE jobs SET state = $2, updated = $3 WHERE id = $1`, id, j.State, now); err != nil {
			return err
		}
		return pgQueue(ctx, tx, &j, EventCancelled, now)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Job{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if err != nil {
		return Job{}, fmt.Errorf("jobs: cancel %q: %w", id, err)
	}
	if refused == nil {
		s.n.touch()
	}
	return j, refused
}

// Expire implements Store. One UPDATE takes the row locks, so a release racing the sweeper
// either comes first (the job is released) or finds the job expired.
func (s *PGStore) Expire(now time.Time) ([]Job, error) {
	ctx, done, err := s.call()
	if err != nil {
		return nil, err
	}
	defer done()
	var out []Job
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `UPDATE jobs SET state = $1, updated = $2
			WHERE state = $3 AND expires <= $2 RETURNING `+pgCols, StateExpired, now, StateHeld)
		if err != nil {
			return err
		}
		if out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Job, error) { return pgScan(r) }); err != nil {
			return err
		}
		for i := range out {
			if err := pgQueue(ctx, tx, &out[i], EventExpired, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("jobs: expire: %w", err)
	}
	if len(out) > 0 {
		s.n.touch()
	}
	sortJobs(out)
	return out, nil
}

// ClaimCallbacks implements Store. SKIP LOCKED lets replicas claim side by side without
// waiting on each other's rows.
func (s *PGStore) ClaimCallbacks(now time.Time, lease time.Duration, limit int) ([]Callback, error) {
	ctx, done, err := s.call()
	if err != nil {
		return nil, err
	}
	defer done()
	rows, err := s.pool.Query(ctx, `UPDATE callbacks SET next = $2
		WHERE id IN (SELECT id FROM callbacks WHERE next <= $1 ORDER BY next, id LIMIT $3 FOR UPDATE SKIP LOCKED)
		RETURNING id, job_id, app, url, event, body, created, next, attempts, last_error`, now, now.Add(lease), limit)
	if err != nil {
		return nil, fmt.Errorf("jobs: claim callbacks: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Callback, error) {
		var cb Callback
		err := r.Scan(&cb.ID, &cb.Job, &cb.App, &cb.URL, &cb.Event, &cb.Body, &cb.Created, &cb.Next, &cb.Attempts, &cb.LastError)
		return cb, err
	})
	if err != nil {
		return nil, fmt.Errorf("jobs: claim callbacks: %w", err)
	}
	// RETURNING has no order; the lease moved every Next alike, so order as queued.
	sortCallbacks(out)
	return out, nil
}

// RetryCallback implements Store.
func (s *PGStore) RetryCallback(id string, attempts int, next time.Time, lastErr string) error {
	ctx, done, err := s.call()
	if err != nil {
		return err
	}
	defer done()
	tag, err := s.pool.Exec(ctx, `UPDATE callbacks SET attempts = $2, next = $3, last_error = $4 WHERE id = $1`, id, attempts, next, lastErr)
	if err != nil {
		return fmt.Errorf("jobs: retry callback: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: callback %q", ErrNotFound, id)
	}
	return nil
}

// DeleteCallback implements Store.
func (s *PGStore) DeleteCallback(id string) error {
	ctx, done, err := s.call()
	if err != nil {
		return err
	}
	defer done()
	if _, err := s.pool.Exec(ctx, `DELETE FROM callbacks WHERE id = $1`, id); err != nil {
		return fmt.Errorf("jobs: delete callback: %w", err)
	}
	return nil
}
