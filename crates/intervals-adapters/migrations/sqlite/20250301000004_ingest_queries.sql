-- genesys-intervals, SQLite schema v4: what each checkpointed query reads. A checkpoint names its
-- query by fingerprint (a hash); this table keeps, once per org and fingerprint, what the hash stands
-- for, so the report can say which query a window belongs to. Written with the query's first window.
CREATE TABLE ingest_queries (
    org         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    family      TEXT NOT NULL,
    granularity TEXT NOT NULL,
    time_zone   TEXT NOT NULL,
    description TEXT NOT NULL,
    first_seen  TEXT NOT NULL,
    PRIMARY KEY (org, fingerprint)
) WITHOUT ROWID;
