-- Per-org leases for the daemon on SQLite: one replica owns the file, and the lease keeps a second
-- daemon started on the same file from ingesting the same org at once. Times are Unix milliseconds.
CREATE TABLE ingest_leases (
    org        TEXT    NOT NULL PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);
