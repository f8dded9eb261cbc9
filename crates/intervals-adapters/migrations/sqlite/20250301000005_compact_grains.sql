-- genesys-intervals, SQLite schema v5: compact grains, as PostgreSQL's schema v5. Applied by the
-- tool on open (sqlx migrate); do not edit an applied migration, add a new file instead.
--
-- The grains stay in `agent_intervals` (one row per grain, same primary key order), but its stored
-- columns change: the statistics of the common metrics in typed columns (INTEGER counts; sums,
-- minima and maxima as the numbers they are, an integer when integral, else a REAL), every other
-- metric and statistic in `other_metrics` (the JSON object of before, NULL when empty), and the
-- times as Unix seconds (`start_s`; `end_s` only when the bucket is not the granularity's length
-- after its start, i.e. a P1D bucket on a day that changes the UTC offset; `fetched_s`). The
-- columns of before, `interval_start`, `interval_end`, `metrics` and `fetched_at`, are VIRTUAL
-- generated columns (never stored; SQLite computes them when a row is read, and also when one is
-- inserted), so that `agent_intervals` stays a table and every query of it by those names reads
-- what it read before, and the views `interval_metrics`,
-- `agent_interval_summary` and `agent_utilization` keep their columns, types and answers.
-- Existing grains are converted here, in one transaction.
--
-- A metric key is held in its typed columns when it has one (the table below) and every statistic
-- it has fits them (a number; a count an integer of at most 2^63 - 1); otherwise it is held whole
-- in `other_metrics`. A key is in one place only.
--
-- | key                                  | columns                                          |
-- |--------------------------------------|--------------------------------------------------|
-- | tHandle, tAcw, tHeldComplete,        | handle_, acw_, held_complete_, talk_complete_    |
-- |   tTalkComplete                      |   count, sum, min, max                           |
-- | nConnected                           | connected_count                                  |
-- | tAgentRoutingStatus:<status>         | routing_<status>_sum (the five routing statuses) |
-- | tSystemPresence:<presence>           | presence_<presence>_sum (the ten system ones)    |

DROP VIEW agent_utilization;
DROP VIEW agent_interval_summary;
DROP VIEW interval_metrics;
DROP INDEX agent_intervals_by_agent;
ALTER TABLE agent_intervals RENAME TO agent_intervals_v4;
-- Stored columns: the primary key first (time first, as before: a window replace is one range
-- scan, new windows append at the end), then the rest; the generated columns take no room.
CREATE TABLE agent_intervals (
    org            TEXT    NOT NULL,
    user_id        TEXT    NOT NULL,
    media_type     TEXT    NOT NULL,
    queue_id       TEXT    NOT NULL,
    granularity    TEXT    NOT NULL,
    interval_start TEXT    GENERATED ALWAYS AS (strftime('%Y-%m-%dT%H:%M:%SZ', start_s, 'unixepoch')) VIRTUAL,
    interval_end   TEXT    GENERATED ALWAYS AS (strftime('%Y-%m-%dT%H:%M:%SZ',
                               coalesce(end_s, start_s + CASE granularity WHEN 'PT15M' THEN 900 WHEN 'PT30M' THEN 1800 WHEN 'PT1H' THEN 3600 WHEN 'P1D' THEN 86400 END), 'unixepoch')) VIRTUAL,
    -- Every metric as one JSON object, as before: the typed keys (sorted), then other_metrics'. A
    -- REAL is written with the digits it needs to read back the same (15, else up to 17). Only
    -- functions of SQLite 3.32 and later, so that older sqlite3 shells read the store. The status
    -- keys are looked at only in a grain that has one (the column is computed on every insert too).
    metrics        TEXT    GENERATED ALWAYS AS ('{' || substr(
        coalesce(',"nConnected":{"count":' || iif(typeof(connected_count) = 'real', iif(CAST(printf('%.15g', connected_count) AS REAL) = connected_count, printf('%.15g', connected_count), printf('%.17g', connected_count)), connected_count) || '}', '') ||
        CASE WHEN coalesce(acw_count, acw_sum, acw_min, acw_max) IS NOT NULL
            THEN ',"tAcw":{' || substr(coalesce(',"count":' || iif(typeof(acw_count) = 'real', iif(CAST(printf('%.15g', acw_count) AS REAL) = acw_count, printf('%.15g', acw_count), printf('%.17g', acw_count)), acw_count), '') || coalesce(',"sum":' || iif(typeof(acw_sum) = 'real', iif(CAST(printf('%.15g', acw_sum) AS REAL) = acw_sum, printf('%.15g', acw_sum), printf('%.17g', acw_sum)), acw_sum), '') || coalesce(',"min":' || iif(typeof(acw_min) = 'real', iif(CAST(printf('%.15g', acw_min) AS REAL) = acw_min, printf('%.15g', acw_min), printf('%.17g', acw_min)), acw_min), '') || coalesce(',"max":' || iif(typeof(acw_max) = 'real', iif(CAST(printf('%.15g', acw_max) AS REAL) = acw_max, printf('%.15g', acw_max), printf('%.17g', acw_max)), acw_max), ''), 2) || '}' ELSE '' END ||
        CASE WHEN coalesce(routing_communicating_sum, routing_idle_sum, routing_interacting_sum, routing_not_responding_sum, routing_off_queue_sum) IS NOT NULL THEN
                coalesce(',"tAgentRoutingStatus:COMMUNICATING":{"sum":' || iif(typeof(routing_communicating_sum) = 'real', iif(CAST(printf('%.15g', routing_communicating_sum) AS REAL) = routing_communicating_sum, printf('%.15g', routing_communicating_sum), printf('%.17g', routing_communicating_sum)), routing_communicating_sum) || '}', '') ||
                coalesce(',"tAgentRoutingStatus:IDLE":{"sum":' || iif(typeof(routing_idle_sum) = 'real', iif(CAST(printf('%.15g', routing_idle_sum) AS REAL) = routing_idle_sum, printf('%.15g', routing_idle_sum), printf('%.17g', routing_idle_sum)), routing_idle_sum) || '}', '') ||
                coalesce(',"tAgentRoutingStatus:INTERACTING":{"sum":' || iif(typeof(routing_interacting_sum) = 'real', iif(CAST(printf('%.15g', routing_interacting_sum) AS REAL) = routing_interacting_sum, printf('%.15g', routing_interacting_sum), printf('%.17g', routing_interacting_sum)), routing_interacting_sum) || '}', '') ||
                coalesce(',"tAgentRoutingStatus:NOT_RESPONDING":{"sum":' || iif(typeof(routing_not_responding_sum) = 'real', iif(CAST(printf('%.15g', routing_not_responding_sum) AS REAL) = routing_not_responding_sum, printf('%.15g', routing_not_responding_sum), printf('%.17g', routing_not_responding_sum)), routing_not_responding_sum) || '}', '') ||
                coalesce(',"tAgentRoutingStatus:OFF_QUEUE":{"sum":' || iif(typeof(routing_off_queue_sum) = 'real', iif(CAST(printf('%.15g', routing_off_queue_sum) AS REAL) = routing_off_queue_sum, printf('%.15g', routing_off_queue_sum), printf('%.17g', routing_off_queue_sum)), routing_off_queue_sum) || '}', '')
            ELSE '' END ||
        CASE WHEN coalesce(handle_count, handle_sum, handle_min, handle_max) IS NOT NULL
            THEN ',"tHandle":{' || substr(coalesce(',"count":' || iif(typeof(handle_count) = 'real', iif(CAST(printf('%.15g', handle_count) AS REAL) = handle_count, printf('%.15g', handle_count), printf('%.17g', handle_count)), handle_count), '') || coalesce(',"sum":' || iif(typeof(handle_sum) = 'real', iif(CAST(printf('%.15g', handle_sum) AS REAL) = handle_sum, printf('%.15g', handle_sum), printf('%.17g', handle_sum)), handle_sum), '') || coalesce(',"min":' || iif(typeof(handle_min) = 'real', iif(CAST(printf('%.15g', handle_min) AS REAL) = handle_min, printf('%.15g', handle_min), printf('%.17g', handle_min)), handle_min), '') || coalesce(',"max":' || iif(typeof(handle_max) = 'real', iif(CAST(printf('%.15g', handle_max) AS REAL) = handle_max, printf('%.15g', handle_max), printf('%.17g', handle_max)), handle_max), ''), 2) || '}' ELSE '' END ||
        CASE WHEN coalesce(held_complete_count, held_complete_sum, held_complete_min, held_complete_max) IS NOT NULL
            THEN ',"tHeldComplete":{' || substr(coalesce(',"count":' || iif(typeof(held_complete_count) = 'real', iif(CAST(printf('%.15g', held_complete_count) AS REAL) = held_complete_count, printf('%.15g', held_complete_count), printf('%.17g', held_complete_count)), held_complete_count), '') || coalesce(',"sum":' || iif(typeof(held_complete_sum) = 'real', iif(CAST(printf('%.15g', held_complete_sum) AS REAL) = held_complete_sum, printf('%.15g', held_complete_sum), printf('%.17g', held_complete_sum)), held_complete_sum), '') || coalesce(',"min":' || iif(typeof(held_complete_min) = 'real', iif(CAST(printf('%.15g', held_complete_min) AS REAL) = held_complete_min, printf('%.15g', held_complete_min), printf('%.17g', held_complete_min)), held_complete_min), '') || coalesce(',"max":' || iif(typeof(held_complete_max) = 'real', iif(CAST(printf('%.15g', held_complete_max) AS REAL) = held_complete_max, printf('%.15g', held_complete_max), printf('%.17g', held_complete_max)), held_complete_max), ''), 2) || '}' ELSE '' END ||
        CASE WHEN coalesce(presence_available_sum, presence_away_sum, presence_break_sum, presence_busy_sum, presence_idle_sum, presence_meal_sum, presence_meeting_sum, presence_offline_sum, presence_on_queue_sum, presence_training_sum) IS NOT NULL THEN
                coalesce(',"tSystemPresence:AVAILABLE":{"sum":' || iif(typeof(presence_available_sum) = 'real', iif(CAST(printf('%.15g', presence_available_sum) AS REAL) = presence_available_sum, printf('%.15g', presence_available_sum), printf('%.17g', presence_available_sum)), presence_available_sum) || '}', '') ||
                coalesce(',"tSystemPresence:AWAY":{"sum":' || iif(typeof(presence_away_sum) = 'real', iif(CAST(printf('%.15g', presence_away_sum) AS REAL) = presence_away_sum, printf('%.15g', presence_away_sum), printf('%.17g', presence_away_sum)), presence_away_sum) || '}', '') ||
                coalesce(',"tSystemPresence:BREAK":{"sum":' || iif(typeof(presence_break_sum) = 'real', iif(CAST(printf('%.15g', presence_break_sum) AS REAL) = presence_break_sum, printf('%.15g', presence_break_sum), printf('%.17g', presence_break_sum)), presence_break_sum) || '}', '') ||
                coalesce(',"tSystemPresence:BUSY":{"sum":' || iif(typeof(presence_busy_sum) = 'real', iif(CAST(printf('%.15g', presence_busy_sum) AS REAL) = presence_busy_sum, printf('%.15g', presence_busy_sum), printf('%.17g', presence_busy_sum)), presence_busy_sum) || '}', '') ||
                coalesce(',"tSystemPresence:IDLE":{"sum":' || iif(typeof(presence_idle_sum) = 'real', iif(CAST(printf('%.15g', presence_idle_sum) AS REAL) = presence_idle_sum, printf('%.15g', presence_idle_sum), printf('%.17g', presence_idle_sum)), presence_idle_sum) || '}', '') ||
                coalesce(',"tSystemPresence:MEAL":{"sum":' || iif(typeof(presence_meal_sum) = 'real', iif(CAST(printf('%.15g', presence_meal_sum) AS REAL) = presence_meal_sum, printf('%.15g', presence_meal_sum), printf('%.17g', presence_meal_sum)), presence_meal_sum) || '}', '') ||
                coalesce(',"tSystemPresence:MEETING":{"sum":' || iif(typeof(presence_meeting_sum) = 'real', iif(CAST(printf('%.15g', presence_meeting_sum) AS REAL) = presence_meeting_sum, printf('%.15g', presence_meeting_sum), printf('%.17g', presence_meeting_sum)), presence_meeting_sum) || '}', '') ||
                coalesce(',"tSystemPresence:OFFLINE":{"sum":' || iif(typeof(presence_offline_sum) = 'real', iif(CAST(printf('%.15g', presence_offline_sum) AS REAL) = presence_offline_sum, printf('%.15g', presence_offline_sum), printf('%.17g', presence_offline_sum)), presence_offline_sum) || '}', '') ||
                coalesce(',"tSystemPresence:ON_QUEUE":{"sum":' || iif(typeof(presence_on_queue_sum) = 'real', iif(CAST(printf('%.15g', presence_on_queue_sum) AS REAL) = presence_on_queue_sum, printf('%.15g', presence_on_queue_sum), printf('%.17g', presence_on_queue_sum)), presence_on_queue_sum) || '}', '') ||
                coalesce(',"tSystemPresence:TRAINING":{"sum":' || iif(typeof(presence_training_sum) = 'real', iif(CAST(printf('%.15g', presence_training_sum) AS REAL) = presence_training_sum, printf('%.15g', presence_training_sum), printf('%.17g', presence_training_sum)), presence_training_sum) || '}', '')
            ELSE '' END ||
        CASE WHEN coalesce(talk_complete_count, talk_complete_sum, talk_complete_min, talk_complete_max) IS NOT NULL
            THEN ',"tTalkComplete":{' || substr(coalesce(',"count":' || iif(typeof(talk_complete_count) = 'real', iif(CAST(printf('%.15g', talk_complete_count) AS REAL) = talk_complete_count, printf('%.15g', talk_complete_count), printf('%.17g', talk_complete_count)), talk_complete_count), '') || coalesce(',"sum":' || iif(typeof(talk_complete_sum) = 'real', iif(CAST(printf('%.15g', talk_complete_sum) AS REAL) = talk_complete_sum, printf('%.15g', talk_complete_sum), printf('%.17g', talk_complete_sum)), talk_complete_sum), '') || coalesce(',"min":' || iif(typeof(talk_complete_min) = 'real', iif(CAST(printf('%.15g', talk_complete_min) AS REAL) = talk_complete_min, printf('%.15g', talk_complete_min), printf('%.17g', talk_complete_min)), talk_complete_min), '') || coalesce(',"max":' || iif(typeof(talk_complete_max) = 'real', iif(CAST(printf('%.15g', talk_complete_max) AS REAL) = talk_complete_max, printf('%.15g', talk_complete_max), printf('%.17g', talk_complete_max)), talk_complete_max), ''), 2) || '}' ELSE '' END ||
        coalesce(',' || substr(other_metrics, 2, length(other_metrics) - 2), ''), 2) || '}') VIRTUAL,
    fetched_at     TEXT    GENERATED ALWAYS AS (strftime('%Y-%m-%dT%H:%M:%SZ', fetched_s, 'unixepoch')) VIRTUAL,
    start_s        INTEGER NOT NULL,
    end_s          INTEGER,
    fetched_s      INTEGER NOT NULL,
    connected_count             INTEGER,
    acw_count                   INTEGER,
    acw_sum                     NUMERIC,
    acw_min                     NUMERIC,
    acw_max                     NUMERIC,
    handle_count                INTEGER,
    handle_sum                  NUMERIC,
    handle_min                  NUMERIC,
    handle_max                  NUMERIC,
    held_complete_count         INTEGER,
    held_complete_sum           NUMERIC,
    held_complete_min           NUMERIC,
    held_complete_max           NUMERIC,
    talk_complete_count         INTEGER,
    talk_complete_sum           NUMERIC,
    talk_complete_min           NUMERIC,
    talk_complete_max           NUMERIC,
    routing_idle_sum            NUMERIC,
    routing_interacting_sum     NUMERIC,
    routing_communicating_sum   NUMERIC,
    routing_not_responding_sum  NUMERIC,
    routing_off_queue_sum       NUMERIC,
    presence_available_sum      NUMERIC,
    presence_away_sum           NUMERIC,
    presence_busy_sum           NUMERIC,
    presence_offline_sum        NUMERIC,
    presence_idle_sum           NUMERIC,
    presence_on_queue_sum       NUMERIC,
    presence_meal_sum           NUMERIC,
    presence_training_sum       NUMERIC,
    presence_meeting_sum        NUMERIC,
    presence_break_sum          NUMERIC,
    other_metrics  TEXT,
    PRIMARY KEY (org, granularity, start_s, user_id, media_type, queue_id)
) WITHOUT ROWID;

-- No index for one agent's series (schema v4 had one): nothing in the tool reads by agent, every read
-- is a time range of the primary key, and the index cost a third of the bytes and of the write time.

-- The conversion: which typed keys of each stored grain fit their columns.
CREATE TEMP TABLE typed_keys (key TEXT PRIMARY KEY, stats TEXT NOT NULL) WITHOUT ROWID;
INSERT INTO temp.typed_keys (key, stats) VALUES
    ('nConnected', ',count,'),
    ('tAcw', ',count,sum,min,max,'),
    ('tHandle', ',count,sum,min,max,'),
    ('tHeldComplete', ',count,sum,min,max,'),
    ('tTalkComplete', ',count,sum,min,max,'),
    ('tAgentRoutingStatus:IDLE', ',sum,'),
    ('tAgentRoutingStatus:INTERACTING', ',sum,'),
    ('tAgentRoutingStatus:COMMUNICATING', ',sum,'),
    ('tAgentRoutingStatus:NOT_RESPONDING', ',sum,'),
    ('tAgentRoutingStatus:OFF_QUEUE', ',sum,'),
    ('tSystemPresence:AVAILABLE', ',sum,'),
    ('tSystemPresence:AWAY', ',sum,'),
    ('tSystemPresence:BUSY', ',sum,'),
    ('tSystemPresence:OFFLINE', ',sum,'),
    ('tSystemPresence:IDLE', ',sum,'),
    ('tSystemPresence:ON_QUEUE', ',sum,'),
    ('tSystemPresence:MEAL', ',sum,'),
    ('tSystemPresence:TRAINING', ',sum,'),
    ('tSystemPresence:MEETING', ',sum,'),
    ('tSystemPresence:BREAK', ',sum,');
INSERT INTO agent_intervals (org, user_id, media_type, queue_id, granularity, start_s, end_s, fetched_s,
    connected_count, acw_count, acw_sum, acw_min, acw_max, handle_count, handle_sum, handle_min, handle_max, held_complete_count, held_complete_sum, held_complete_min, held_complete_max, talk_complete_count, talk_complete_sum, talk_complete_min, talk_complete_max, routing_idle_sum, routing_interacting_sum, routing_communicating_sum, routing_not_responding_sum, routing_off_queue_sum, presence_available_sum, presence_away_sum, presence_busy_sum, presence_offline_sum, presence_idle_sum, presence_on_queue_sum, presence_meal_sum, presence_training_sum, presence_meeting_sum, presence_break_sum,
    other_metrics)
WITH x AS MATERIALIZED (
    SELECT a.*,
           coalesce((SELECT ',' || group_concat(m.key, ',') || ','
                     FROM json_each(a.metrics) AS m JOIN temp.typed_keys AS t ON t.key = m.key
                     WHERE m.type = 'object'
                       AND EXISTS (SELECT 1 FROM json_each(m.value))
                       AND NOT EXISTS (SELECT 1 FROM json_each(m.value) AS s
                                       WHERE instr(t.stats, ',' || s.key || ',') = 0
                                          OR s.type NOT IN ('integer', 'real')
                                          OR (s.key = 'count' AND (s.type <> 'integer' OR typeof(s.atom) <> 'integer' OR s.atom < 0)))), ',')
               AS fit
    FROM agent_intervals_v4 AS a
)
SELECT x.org, x.user_id, x.media_type, x.queue_id, x.granularity,
       CAST(unixepoch(x.interval_start) AS INTEGER),
       nullif(unixepoch(x.interval_end), unixepoch(x.interval_start) + CASE x.granularity WHEN 'PT15M' THEN 900
           WHEN 'PT30M' THEN 1800 WHEN 'PT1H' THEN 3600 WHEN 'P1D' THEN 86400 END),
       unixepoch(x.fetched_at),
       CASE WHEN instr(x.fit, ',nConnected,') THEN json_extract(x.metrics, '$.nConnected.count') END,
       CASE WHEN instr(x.fit, ',tAcw,') THEN json_extract(x.metrics, '$.tAcw.count') END,
       CASE WHEN instr(x.fit, ',tAcw,') THEN json_extract(x.metrics, '$.tAcw.sum') END,
       CASE WHEN instr(x.fit, ',tAcw,') THEN json_extract(x.metrics, '$.tAcw.min') END,
       CASE WHEN instr(x.fit, ',tAcw,') THEN json_extract(x.metrics, '$.tAcw.max') END,
       CASE WHEN instr(x.fit, ',tHandle,') THEN json_extract(x.metrics, '$.tHandle.count') END,
       CASE WHEN instr(x.fit, ',tHandle,') THEN json_extract(x.metrics, '$.tHandle.sum') END,
       CASE WHEN instr(x.fit, ',tHandle,') THEN json_extract(x.metrics, '$.tHandle.min') END,
       CASE WHEN instr(x.fit, ',tHandle,') THEN json_extract(x.metrics, '$.tHandle.max') END,
       CASE WHEN instr(x.fit, ',tHeldComplete,') THEN json_extract(x.metrics, '$.tHeldComplete.count') END,
       CASE WHEN instr(x.fit, ',tHeldComplete,') THEN json_extract(x.metrics, '$.tHeldComplete.sum') END,
       CASE WHEN instr(x.fit, ',tHeldComplete,') THEN json_extract(x.metrics, '$.tHeldComplete.min') END,
       CASE WHEN instr(x.fit, ',tHeldComplete,') THEN json_extract(x.metrics, '$.tHeldComplete.max') END,
       CASE WHEN instr(x.fit, ',tTalkComplete,') THEN json_extract(x.metrics, '$.tTalkComplete.count') END,
       CASE WHEN instr(x.fit, ',tTalkComplete,') THEN json_extract(x.metrics, '$.tTalkComplete.sum') END,
       CASE WHEN instr(x.fit, ',tTalkComplete,') THEN json_extract(x.metrics, '$.tTalkComplete.min') END,
       CASE WHEN instr(x.fit, ',tTalkComplete,') THEN json_extract(x.metrics, '$.tTalkComplete.max') END,
       CASE WHEN instr(x.fit, ',tAgentRoutingStatus:IDLE,') THEN json_extract(x.metrics, '$."tAgentRoutingStatus:IDLE".sum') END,
       CASE WHEN instr(x.fit, ',tAgentRoutingStatus:INTERACTING,') THEN json_extract(x.metrics, '$."tAgentRoutingStatus:INTERACTING".sum') END,
       CASE WHEN instr(x.fit, ',tAgentRoutingStatus:COMMUNICATING,') THEN json_extract(x.metrics, '$."tAgentRoutingStatus:COMMUNICATING".sum') END,
       CASE WHEN instr(x.fit, ',tAgentRoutingStatus:NOT_RESPONDING,') THEN json_extract(x.metrics, '$."tAgentRoutingStatus:NOT_RESPONDING".sum') END,
       CASE WHEN instr(x.fit, ',tAgentRoutingStatus:OFF_QUEUE,') THEN json_extract(x.metrics, '$."tAgentRoutingStatus:OFF_QUEUE".sum') END,
       CASE WHEN instr(x.fit, ',tSystemPresence:AVAILABLE,') THEN json_extract(x.metrics, '$."tSystemPresence:AVAILABLE".sum') END,
       CASE WHEN instr(x.fit, ',tSystemPresence:AWAY,') THEN json_extract(x.metrics, '$."tSystemPresence:AWAY".sum') END,
       CASE WHEN instr(x.fit, ',tSystemPresence:BUSY,') THEN json_extract(x.metrics, '$."tSystemPresence:BUSY".sum') END,
       CASE WHEN instr(x.fit, ',tSystemPresence:OFFLINE,') THEN json_extract(x.metrics, '$."tSystemPresence:OFFLINE".sum') END,
       CASE WHEN instr(x.fit, ',tSystemPresence:IDLE,') THEN json_extract(x.metrics, '$."tSystemPresence:IDLE".sum') END,
       CASE WHEN instr(x.fit, ',tSystemPresence:ON_QUEUE,') THEN json_extract(x.metrics, '$."tSystemPresence:ON_QUEUE".sum') END,
       CASE WHEN instr(x.fit, ',tSystemPresence:MEAL,') THEN json_extract(x.metrics, '$."tSystemPresence:MEAL".sum') END,
       CASE WHEN instr(x.fit, ',tSystemPresence:TRAINING,') THEN json_extract(x.metrics, '$."tSystemPresence:TRAINING".sum') END,
       CASE WHEN instr(x.fit, ',tSystemPresence:MEETING,') THEN json_extract(x.metrics, '$."tSystemPresence:MEETING".sum') END,
       CASE WHEN instr(x.fit, ',tSystemPresence:BREAK,') THEN json_extract(x.metrics, '$."tSystemPresence:BREAK".sum') END,
       CASE WHEN x.fit = ',' THEN x.metrics -- nothing typed: the object of before, as it was
            ELSE (SELECT nullif(json_group_object(m.key, json(m.value)), '{}') FROM json_each(x.metrics) AS m
                  WHERE instr(x.fit, ',' || m.key || ',') = 0) END
FROM x
ORDER BY x.org, x.granularity, x.interval_start, x.user_id, x.media_type, x.queue_id;

DROP TABLE temp.typed_keys;
DROP TABLE agent_intervals_v4;

-- The long contract: one row per metric, from the typed columns (one pass over the grains, each
-- grain against the 20 typed keys) and from other_metrics.
CREATE VIEW interval_metrics AS
SELECT a.org, a.user_id, a.media_type, a.queue_id, a.granularity, a.interval_start, a.interval_end,
       k.metric,
       CASE k.i WHEN 0 THEN a.connected_count WHEN 1 THEN a.acw_count WHEN 2 THEN a.handle_count WHEN 3 THEN a.held_complete_count WHEN 4 THEN a.talk_complete_count END AS count,
       CASE k.i WHEN 1 THEN a.acw_sum WHEN 2 THEN a.handle_sum WHEN 3 THEN a.held_complete_sum WHEN 4 THEN a.talk_complete_sum WHEN 5 THEN a.routing_idle_sum WHEN 6 THEN a.routing_interacting_sum WHEN 7 THEN a.routing_communicating_sum WHEN 8 THEN a.routing_not_responding_sum WHEN 9 THEN a.routing_off_queue_sum WHEN 10 THEN a.presence_available_sum WHEN 11 THEN a.presence_away_sum WHEN 12 THEN a.presence_busy_sum WHEN 13 THEN a.presence_offline_sum WHEN 14 THEN a.presence_idle_sum WHEN 15 THEN a.presence_on_queue_sum WHEN 16 THEN a.presence_meal_sum WHEN 17 THEN a.presence_training_sum WHEN 18 THEN a.presence_meeting_sum WHEN 19 THEN a.presence_break_sum END AS sum,
       CASE k.i WHEN 1 THEN a.acw_min WHEN 2 THEN a.handle_min WHEN 3 THEN a.held_complete_min WHEN 4 THEN a.talk_complete_min END AS min,
       CASE k.i WHEN 1 THEN a.acw_max WHEN 2 THEN a.handle_max WHEN 3 THEN a.held_complete_max WHEN 4 THEN a.talk_complete_max END AS max,
       a.fetched_at
FROM agent_intervals AS a
CROSS JOIN (SELECT 0 AS i, 'nConnected' AS metric
          UNION ALL SELECT 1, 'tAcw'
          UNION ALL SELECT 2, 'tHandle'
          UNION ALL SELECT 3, 'tHeldComplete'
          UNION ALL SELECT 4, 'tTalkComplete'
          UNION ALL SELECT 5, 'tAgentRoutingStatus:IDLE'
          UNION ALL SELECT 6, 'tAgentRoutingStatus:INTERACTING'
          UNION ALL SELECT 7, 'tAgentRoutingStatus:COMMUNICATING'
          UNION ALL SELECT 8, 'tAgentRoutingStatus:NOT_RESPONDING'
          UNION ALL SELECT 9, 'tAgentRoutingStatus:OFF_QUEUE'
          UNION ALL SELECT 10, 'tSystemPresence:AVAILABLE'
          UNION ALL SELECT 11, 'tSystemPresence:AWAY'
          UNION ALL SELECT 12, 'tSystemPresence:BUSY'
          UNION ALL SELECT 13, 'tSystemPresence:OFFLINE'
          UNION ALL SELECT 14, 'tSystemPresence:IDLE'
          UNION ALL SELECT 15, 'tSystemPresence:ON_QUEUE'
          UNION ALL SELECT 16, 'tSystemPresence:MEAL'
          UNION ALL SELECT 17, 'tSystemPresence:TRAINING'
          UNION ALL SELECT 18, 'tSystemPresence:MEETING'
          UNION ALL SELECT 19, 'tSystemPresence:BREAK') AS k
WHERE CASE k.i WHEN 0 THEN a.connected_count IS NOT NULL WHEN 1 THEN coalesce(a.acw_count, a.acw_sum, a.acw_min, a.acw_max) IS NOT NULL WHEN 2 THEN coalesce(a.handle_count, a.handle_sum, a.handle_min, a.handle_max) IS NOT NULL WHEN 3 THEN coalesce(a.held_complete_count, a.held_complete_sum, a.held_complete_min, a.held_complete_max) IS NOT NULL WHEN 4 THEN coalesce(a.talk_complete_count, a.talk_complete_sum, a.talk_complete_min, a.talk_complete_max) IS NOT NULL WHEN 5 THEN a.routing_idle_sum IS NOT NULL WHEN 6 THEN a.routing_interacting_sum IS NOT NULL WHEN 7 THEN a.routing_communicating_sum IS NOT NULL WHEN 8 THEN a.routing_not_responding_sum IS NOT NULL WHEN 9 THEN a.routing_off_queue_sum IS NOT NULL WHEN 10 THEN a.presence_available_sum IS NOT NULL WHEN 11 THEN a.presence_away_sum IS NOT NULL WHEN 12 THEN a.presence_busy_sum IS NOT NULL WHEN 13 THEN a.presence_offline_sum IS NOT NULL WHEN 14 THEN a.presence_idle_sum IS NOT NULL WHEN 15 THEN a.presence_on_queue_sum IS NOT NULL WHEN 16 THEN a.presence_meal_sum IS NOT NULL WHEN 17 THEN a.presence_training_sum IS NOT NULL WHEN 18 THEN a.presence_meeting_sum IS NOT NULL WHEN 19 THEN a.presence_break_sum IS NOT NULL END
UNION ALL
SELECT a.org, a.user_id, a.media_type, a.queue_id, a.granularity, a.interval_start, a.interval_end,
       m.key AS metric,
       json_extract(m.value, '$.count') AS count,
       json_extract(m.value, '$.sum') AS sum,
       json_extract(m.value, '$.min') AS min,
       json_extract(m.value, '$.max') AS max,
       a.fetched_at
FROM agent_intervals AS a, json_each(a.other_metrics) AS m
WHERE a.other_metrics IS NOT NULL;

-- The classic columns, one row per grain; NULL where the metric was not read. hold and talk
-- prefer the per-session metrics. A typed key may sit in other_metrics (a statistic its columns
-- do not hold), so each value is looked for in both.
CREATE VIEW agent_interval_summary AS
SELECT a.org, a.user_id, a.media_type, a.queue_id, a.granularity, a.interval_start, a.interval_end,
       coalesce(a.handle_sum, json_extract(a.other_metrics, '$.tHandle.sum')) AS handle_ms,
       coalesce(a.handle_count, json_extract(a.other_metrics, '$.tHandle.count')) AS handle_count,
       coalesce(a.acw_sum, json_extract(a.other_metrics, '$.tAcw.sum')) AS acw_ms,
       coalesce(a.held_complete_sum, json_extract(a.other_metrics, '$.tHeldComplete.sum'),
                json_extract(a.other_metrics, '$.tHeld.sum')) AS hold_ms,
       coalesce(a.talk_complete_sum, json_extract(a.other_metrics, '$.tTalkComplete.sum'),
                json_extract(a.other_metrics, '$.tTalk.sum')) AS talk_ms,
       a.fetched_at,
       u.name AS user_name
FROM agent_intervals AS a
LEFT JOIN users AS u ON u.org = a.org AND u.id = a.user_id;

-- As in schema v3, over the typed columns: one row per agent and bucket with status time, the
-- status time next to the agent's conversation sums of the bucket (all media types and queues).
-- One pass over the agent's grains of each bucket in primary-key order, grouped without sorting.
CREATE VIEW agent_utilization AS
SELECT org, user_id, granularity, interval_start, interval_end,
       on_queue_ms, idle_ms, interacting_ms, communicating_ms, not_responding_ms, off_queue_ms,
       handle_ms, handle_count, acw_ms, hold_ms, talk_ms,
       CAST(interacting_ms AS REAL) / nullif(interacting_ms + communicating_ms + idle_ms, 0) AS occupancy,
       CAST(handle_ms AS REAL) / nullif(on_queue_ms, 0) AS handle_per_on_queue
FROM (
    SELECT a.org, a.user_id, a.granularity, a.interval_start, max(a.interval_end) AS interval_end,
           coalesce(sum(coalesce(a.presence_on_queue_sum, json_extract(a.other_metrics, '$."tSystemPresence:ON_QUEUE".sum'))), 0) AS on_queue_ms,
           coalesce(sum(coalesce(a.routing_idle_sum, json_extract(a.other_metrics, '$."tAgentRoutingStatus:IDLE".sum'))), 0) AS idle_ms,
           coalesce(sum(coalesce(a.routing_interacting_sum, json_extract(a.other_metrics, '$."tAgentRoutingStatus:INTERACTING".sum'))), 0) AS interacting_ms,
           coalesce(sum(coalesce(a.routing_communicating_sum, json_extract(a.other_metrics, '$."tAgentRoutingStatus:COMMUNICATING".sum'))), 0) AS communicating_ms,
           coalesce(sum(coalesce(a.routing_not_responding_sum, json_extract(a.other_metrics, '$."tAgentRoutingStatus:NOT_RESPONDING".sum'))), 0) AS not_responding_ms,
           coalesce(sum(coalesce(a.routing_off_queue_sum, json_extract(a.other_metrics, '$."tAgentRoutingStatus:OFF_QUEUE".sum'))), 0) AS off_queue_ms,
           coalesce(sum(coalesce(a.handle_sum, json_extract(a.other_metrics, '$.tHandle.sum'))), 0) AS handle_ms,
           coalesce(sum(coalesce(a.handle_count, json_extract(a.other_metrics, '$.tHandle.count'))), 0) AS handle_count,
           coalesce(sum(coalesce(a.acw_sum, json_extract(a.other_metrics, '$.tAcw.sum'))), 0) AS acw_ms,
           coalesce(sum(coalesce(a.held_complete_sum, json_extract(a.other_metrics, '$.tHeldComplete.sum'),
                                 json_extract(a.other_metrics, '$.tHeld.sum'))), 0) AS hold_ms,
           coalesce(sum(coalesce(a.talk_complete_sum, json_extract(a.other_metrics, '$.tTalkComplete.sum'),
                                 json_extract(a.other_metrics, '$.tTalk.sum'))), 0) AS talk_ms,
           -- Status keys are stored on the agent's grain only; in other_metrics a key is '"metric:qualifier":'.
           max(a.media_type = '' AND a.queue_id = ''
               AND (coalesce(a.routing_idle_sum, a.routing_interacting_sum, a.routing_communicating_sum, a.routing_not_responding_sum, a.routing_off_queue_sum, a.presence_available_sum, a.presence_away_sum, a.presence_busy_sum, a.presence_offline_sum, a.presence_idle_sum, a.presence_on_queue_sum, a.presence_meal_sum, a.presence_training_sum, a.presence_meeting_sum, a.presence_break_sum) IS NOT NULL
                    OR coalesce(instr(a.other_metrics, '"tAgentRoutingStatus:') > 0
                                OR instr(a.other_metrics, '"tSystemPresence:') > 0, 0)))
               AS has_status
    FROM agent_intervals AS a
    WHERE a.user_id <> ''
    GROUP BY a.org, a.granularity, a.start_s, a.user_id
)
WHERE has_status;
