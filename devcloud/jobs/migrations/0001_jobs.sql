-- Jobs: the columns a query filters on or a status changes; doc keeps the rest of the
-- submission as the job's JSON, so a new submission field needs no migration.
CREATE TABLE jobs (
    id       text PRIMARY KEY,
    user_id  text NOT NULL,
    state    text NOT NULL,
    station  text NOT NULL DEFAULT '',
    printed  integer NOT NULL DEFAULT 0,
    error    text NOT NULL DEFAULT '',
    last_seq bigint NOT NULL DEFAULT 0,
    created  timestamptz NOT NULL,
    updated  timestamptz NOT NULL,
    doc      jsonb NOT NULL,
    data     bytea NOT NULL
);

-- A badge lookup lists one user's held jobs, oldest first.
CREATE INDEX jobs_user_state ON jobs (user_id, state, created, id);
