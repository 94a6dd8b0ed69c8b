-- Records: the rest of devcloud's state (stations, fleet documents, group membership, command
-- results, badge links, station grants, the cloud's keys), as JSON values under a kind and a key.
CREATE TABLE records (
    kind    text NOT NULL,
    key     text NOT NULL,
    value   bytea NOT NULL,
    updated timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, key)
);
