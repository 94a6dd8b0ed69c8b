-- Registered applications and the refresh tokens users' consents gave them. doc keeps each row
-- as JSON; the columns are what a lookup or an update touches.
CREATE TABLE oauth_apps (
    client_id text PRIMARY KEY,
    doc       jsonb NOT NULL
);

-- One row per refresh token, by its hash (the token itself is never stored). A rotation marks
-- the presented row used and adds the next; revoking a grant revokes its family.
CREATE TABLE oauth_grants (
    token_hash text PRIMARY KEY,
    family     text NOT NULL,
    user_id    text NOT NULL,
    used       boolean NOT NULL DEFAULT false,
    revoked    boolean NOT NULL DEFAULT false,
    doc        jsonb NOT NULL
);
CREATE INDEX oauth_grants_family ON oauth_grants (family);
CREATE INDEX oauth_grants_user ON oauth_grants (user_id) WHERE NOT used AND NOT revoked;
