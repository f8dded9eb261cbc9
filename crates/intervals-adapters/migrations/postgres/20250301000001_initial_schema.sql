-- genesys-intervals, PostgreSQL schema v1. Applied by the tool on connect (sqlx migrate); do not
-- edit an applied migration, add a new file instead.
--
-- Dimensions a query does not group by are stored as '' (media_type) or the nil UUID (user_id,
-- queue_id), never NULL, so the primary key works.

-- One row per grain (org, group, bucket); every metric read for it in `metrics`:
-- {"tHandle": {"count": 5, "sum": 1450300, "min": 95000, "max": 612000}, "nConnected": {"count": 6}}
CREATE TABLE agent_intervals (
    org            text        NOT NULL,
    user_id        uuid        NOT NULL,
    media_type     text        NOT NULL,
    queue_id       uuid        NOT NULL,
    granularity    text        NOT NULL,
    interval_start timestamptz NOT NULL,
    interval_end   timestamptz NOT NULL,
    metrics        jsonb       NOT NULL,
    fetched_at     timestamptz NOT NULL,
    -- Time first: ingestion writes and replaces one time range of one org and granularity, so new
    -- windows append at the right edge of the key and a replace is one range scan.
    CONSTRAINT agent_intervals_pkey PRIMARY KEY (org, granularity, interval_start, user_id, media_type, queue_id),
    CONSTRAINT agent_intervals_metrics_is_object CHECK (jsonb_typeof(metrics) = 'object')
) WITH (fillfactor = 85); -- room for HOT updates when a lookback re-read corrects values

-- One agent's time series (reports).
CREATE INDEX agent_intervals_by_agent ON agent_intervals (org, user_id, granularity, interval_start);

-- Checkpoints: windows completed for (org, query fingerprint), written with the window's rows.
CREATE TABLE ingest_windows (
    org          text        NOT NULL,
    fingerprint  text        NOT NULL,
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL,
    rows         bigint      NOT NULL,
    fetched_at   timestamptz NOT NULL,
    PRIMARY KEY (org, fingerprint, window_start, window_end)
);

-- Qualified metric keys ever stored ('tAgentRoutingStatus:IDLE'), so that a window replace can
-- remove a requested metric's qualified keys with the plain jsonb `-` operator.
CREATE TABLE qualified_metric_keys (
    org text NOT NULL,
    key text NOT NULL,
    PRIMARY KEY (org, key)
);

CREATE TABLE users (
    org           text        NOT NULL,
    id            uuid        NOT NULL,
    name          text        NOT NULL,
    email         text,
    state         text        NOT NULL,
    division_id   text,
    division_name text,
    fetched_at    timestamptz NOT NULL,
    PRIMARY KEY (org, id)
);

CREATE TABLE queues (
    org           text        NOT NULL,
    id            uuid        NOT NULL,
    name          text        NOT NULL,
    division_id   text,
    division_name text,
    fetched_at    timestamptz NOT NULL,
    PRIMARY KEY (org, id)
);

-- The long contract: one row per metric.
CREATE VIEW interval_metrics AS
SELECT a.org, a.user_id, a.media_type, a.queue_id, a.granularity, a.interval_start, a.interval_end,
       m.key AS metric,
       (m.value ->> 'count')::bigint AS count,
       (m.value ->> 'sum')::numeric AS sum,
       (m.value ->> 'min')::numeric AS min,
       (m.value ->> 'max')::numeric AS max,
       a.fetched_at
FROM agent_intervals AS a
CROSS JOIN LATERAL jsonb_each(a.metrics) AS m(key, value);

-- The classic columns, one row per grain (agent, media type, queue) and bucket; NULL where the
-- metric was not read. hold and talk prefer the per-session metrics.
CREATE VIEW agent_interval_summary AS
SELECT org, user_id, media_type, queue_id, granularity, interval_start, interval_end,
       (metrics #>> '{tHandle,sum}')::numeric AS handle_ms,
       (metrics #>> '{tHandle,count}')::bigint AS handle_count,
       (metrics #>> '{tAcw,sum}')::numeric AS acw_ms,
       coalesce(metrics #>> '{tHeldComplete,sum}', metrics #>> '{tHeld,sum}')::numeric AS hold_ms,
       coalesce(metrics #>> '{tTalkComplete,sum}', metrics #>> '{tTalk,sum}')::numeric AS talk_ms,
       fetched_at
FROM agent_intervals;
