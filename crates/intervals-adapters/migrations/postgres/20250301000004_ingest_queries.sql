-- genesys-intervals, PostgreSQL schema v4: what each checkpointed query reads. A checkpoint names its
-- query by fingerprint (a hash); this table keeps, once per org and fingerprint, what the hash stands
-- for, so the report can say which query a window belongs to. Written with the query's first window.
CREATE TABLE ingest_queries (
    org         text        NOT NULL,
    fingerprint text        NOT NULL,
    family      text        NOT NULL,
    granularity text        NOT NULL,
    time_zone   text        NOT NULL,
    description text        NOT NULL,
    first_seen  timestamptz NOT NULL,
    PRIMARY KEY (org, fingerprint)
);
