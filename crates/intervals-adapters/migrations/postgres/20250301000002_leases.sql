-- genesys-intervals, PostgreSQL schema v2: daemon leases. Applied by the tool on connect (sqlx
-- migrate); do not edit an applied migration, add a new file instead.
--
-- One row per org while a daemon replica ingests it. A replica takes the lease when there is no
-- row, when the row is its own (renewal), or when the row has expired; expiry is judged by the
-- database's clock, so replicas need not agree on time. Releasing deletes the row.
CREATE TABLE ingest_leases (
    org        text        PRIMARY KEY,
    holder     text        NOT NULL,
    expires_at timestamptz NOT NULL
);
