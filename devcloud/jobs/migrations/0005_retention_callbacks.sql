-- Retention: when a held job lapses (NULL: never). The sweeper looks for held jobs past it.
ALTER TABLE jobs ADD COLUMN expires timestamptz;
CREATE INDEX jobs_held_expires ON jobs (expires) WHERE state = 'held';

-- Webhook calls waiting to be delivered, queued in the transaction that changed the job.
CREATE TABLE callbacks (
    id         text PRIMARY KEY,
    job_id     text NOT NULL,
    app        text NOT NULL,
    url        text NOT NULL,
    event      text NOT NULL,
    body       bytea NOT NULL,
    created    timestamptz NOT NULL,
    next       timestamptz NOT NULL,
    attempts   integer NOT NULL DEFAULT 0,
    last_error text NOT NULL DEFAULT ''
);
CREATE INDEX callbacks_next ON callbacks (next, id);
