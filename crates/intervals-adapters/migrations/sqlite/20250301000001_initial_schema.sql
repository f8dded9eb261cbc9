-- genesys-intervals, SQLite schema v1. Applied by the tool (sqlx migrate); do not edit an applied
-- migration, add a new file instead.
--
-- Timestamps are RFC 3339 UTC text with whole seconds ('2025-03-10T09:00:00Z'): they sort and
-- compare as text. Dimensions a query does not group by are '' (never NULL), so the key works.

-- One row per grain (org, group, bucket); every metric read for it in `metrics`, as JSON:
-- {"tHandle": {"count": 5, "sum": 1450300, "min": 95000, "max": 612000}, "nConnected": {"count": 6}}
CREATE TABLE agent_intervals (
    org            TEXT NOT NULL,
    user_id        TEXT NOT NULL DEFAULT '',
    media_type     TEXT NOT NULL DEFAULT '',
    queue_id       TEXT NOT NULL DEFAULT '',
    granularity    TEXT NOT NULL,
    interval_start TEXT NOT NULL,
    interval_end   TEXT NOT NULL,
    metrics        TEXT NOT NULL CHECK (json_valid(metrics)),
    fetched_at     TEXT NOT NULL,
    -- Time first: a window replace reads and rewrites one time range of one org and granularity.
    PRIMARY KEY (org, granularity, interval_start, user_id, media_type, queue_id)
) WITHOUT ROWID;

-- One agent's time series (reports).
CREATE INDEX agent_intervals_by_agent ON agent_intervals (org, user_id, granularity, interval_start);

-- Checkpoints: windows completed for (org, query fingerprint). Written with the window's rows.
CREATE TABLE ingest_windows (
    org          TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    window_start TEXT NOT NULL,
    window_end   TEXT NOT NULL,
    rows         INTEGER NOT NULL,
    fetched_at   TEXT NOT NULL,
    PRIMARY KEY (org, fingerprint, window_start, window_end)
) WITHOUT ROWID;

CREATE TABLE users (
    org           TEXT NOT NULL,
    id            TEXT NOT NULL,
    name          TEXT NOT NULL,
    email         TEXT,
    state         TEXT NOT NULL,
    division_id   TEXT,
    division_name TEXT,
    fetched_at    TEXT NOT NULL,
    PRIMARY KEY (org, id)
) WITHOUT ROWID;

CREATE TABLE queues (
    org           TEXT NOT NULL,
    id            TEXT NOT NULL,
    name          TEXT NOT NULL,
    division_id   TEXT,
    division_name TEXT,
    fetched_at    TEXT NOT NULL,
    PRIMARY KEY (org, id)
) WITHOUT ROWID;

-- The long contract: one row per metric.
CREATE VIEW interval_metrics AS
SELECT a.org, a.user_id, a.media_type, a.queue_id, a.granularity, a.interval_start, a.interval_end,
       m.key AS metric,
       json_extract(m.value, '$.count') AS count,
       json_extract(m.value, '$.sum') AS sum,
       json_extract(m.value, '$.min') AS min,
       json_extract(m.value, '$.max') AS max,
       a.fetched_at
FROM agent_intervals AS a, json_each(a.metrics) AS m;

-- The classic columns, one row per grain (agent, media type, queue) and bucket; NULL where the
-- metric was not read. hold and talk prefer the per-session metrics.
CREATE VIEW agent_interval_summary AS
SELECT org, user_id, media_type, queue_id, granularity, interval_start, interval_end,
       json_extract(metrics, '$.tHandle.sum') AS handle_ms,
       json_extract(metrics, '$.tHandle.count') AS handle_count,
       json_extract(metrics, '$.tAcw.sum') AS acw_ms,
       coalesce(json_extract(metrics, '$.tHeldComplete.sum'), json_extract(metrics, '$.tHeld.sum')) AS hold_ms,
       coalesce(json_extract(metrics, '$.tTalkComplete.sum'), json_extract(metrics, '$.tTalk.sum')) AS talk_ms,
       fetched_at
FROM agent_intervals;
