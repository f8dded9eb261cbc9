-- genesys-intervals, PostgreSQL schema v5: compact grains. Applied by the tool on connect (sqlx
-- migrate); do not edit an applied migration, add a new file instead.
--
-- The grains move from `agent_intervals` (every metric in one jsonb object, about 200 bytes per
-- metric value) to `interval_grains`: the statistics of the common metrics in typed columns
-- (float8 sums, minima and maxima, int4 counts), every other metric and statistic in
-- `other_metrics`, the jsonb object of before, so that any metric can still be stored. About 80
-- bytes per metric value. `agent_intervals` becomes a view with the columns of the table it was
-- (its `metrics` rebuilt from both), and the views `interval_metrics`, `agent_interval_summary` and
-- `agent_utilization` keep their columns, types and answers. Existing grains are converted here.
--
-- A metric key is held in its typed columns when it has one (the table below) and every statistic
-- it has fits them (a count up to 2^31 - 1); otherwise it is held whole in `other_metrics`. A key
-- is in one place only, and a grain holds at least one value.
--
-- | key                                  | columns                                          |
-- |--------------------------------------|--------------------------------------------------|
-- | tHandle, tAcw, tHeldComplete,        | handle_, acw_, held_complete_, talk_complete_    |
-- |   tTalkComplete                      |   count (int4), sum, min, max (float8)           |
-- | nConnected                           | connected_count                                  |
-- | tAgentRoutingStatus:<status>         | routing_<status>_sum (the five routing statuses) |
-- | tSystemPresence:<presence>           | presence_<presence>_sum (the ten system ones)    |
--
-- `interval_end` is stored only when it is not `interval_start` plus the granularity's length (a
-- P1D bucket on a day that changes the UTC offset); the views give it whole.

CREATE FUNCTION interval_grain_length(granularity text) RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE granularity
        WHEN 'PT15M' THEN interval '15 minutes'
        WHEN 'PT30M' THEN interval '30 minutes'
        WHEN 'PT1H' THEN interval '1 hour'
        WHEN 'P1D' THEN interval '24 hours'
    END
$$;

-- Columns in an order that leaves no alignment padding: 8-byte values, then 4-byte, then the rest.
CREATE TABLE interval_grains (
    interval_start             timestamptz NOT NULL,
    fetched_at                 timestamptz NOT NULL,
    handle_sum                 float8,
    handle_min                 float8,
    handle_max                 float8,
    acw_sum                    float8,
    acw_min                    float8,
    acw_max                    float8,
    held_complete_sum          float8,
    held_complete_min          float8,
    held_complete_max          float8,
    talk_complete_sum          float8,
    talk_complete_min          float8,
    talk_complete_max          float8,
    routing_idle_sum           float8,
    routing_interacting_sum    float8,
    routing_communicating_sum  float8,
    routing_not_responding_sum float8,
    routing_off_queue_sum      float8,
    presence_available_sum     float8,
    presence_away_sum          float8,
    presence_busy_sum          float8,
    presence_offline_sum       float8,
    presence_idle_sum          float8,
    presence_on_queue_sum      float8,
    presence_meal_sum          float8,
    presence_training_sum      float8,
    presence_meeting_sum       float8,
    presence_break_sum         float8,
    interval_end               timestamptz,
    handle_count               int4,
    acw_count                  int4,
    held_complete_count        int4,
    talk_complete_count        int4,
    connected_count            int4,
    user_id                    uuid        NOT NULL,
    queue_id                   uuid        NOT NULL,
    org                        text        NOT NULL,
    granularity                text        NOT NULL,
    media_type                 text        NOT NULL,
    other_metrics              jsonb,
    -- Time first, as before: a window replace is one range scan, new windows append at the end.
    CONSTRAINT interval_grains_pkey PRIMARY KEY (org, granularity, interval_start, user_id, media_type, queue_id),
    CONSTRAINT interval_grains_other_metrics_is_object CHECK (jsonb_typeof(other_metrics) = 'object')
) WITH (fillfactor = 85); -- room for HOT updates when a lookback re-read corrects values

-- One agent's time series (an agent's id is unique across orgs and granularities in practice; the
-- others filter in the heap). Two columns instead of four: a third smaller.
CREATE INDEX interval_grains_by_agent ON interval_grains (user_id, interval_start);

-- The conversion of the grains stored so far: a key moves to its typed columns when all its
-- statistics fit them, else it stays in other_metrics.
CREATE FUNCTION pg_temp.fits(v jsonb, allowed text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN v IS NULL OR jsonb_typeof(v) <> 'object' OR v = '{}'::jsonb OR (v - allowed) <> '{}'::jsonb THEN false
        WHEN coalesce(jsonb_typeof(v -> 'count'), 'number') <> 'number'
             OR coalesce(jsonb_typeof(v -> 'sum'), 'number') <> 'number'
             OR coalesce(jsonb_typeof(v -> 'min'), 'number') <> 'number'
             OR coalesce(jsonb_typeof(v -> 'max'), 'number') <> 'number' THEN false
        WHEN v ? 'count' THEN (v ->> 'count')::numeric BETWEEN 0 AND 2147483647
             AND (v ->> 'count')::numeric = trunc((v ->> 'count')::numeric)
        ELSE true
    END
$$;

INSERT INTO interval_grains (
    interval_start, fetched_at,
    handle_sum, handle_min, handle_max, acw_sum, acw_min, acw_max,
    held_complete_sum, held_complete_min, held_complete_max, talk_complete_sum, talk_complete_min, talk_complete_max,
    routing_idle_sum, routing_interacting_sum, routing_communicating_sum, routing_not_responding_sum,
    routing_off_queue_sum,
    presence_available_sum, presence_away_sum, presence_busy_sum, presence_offline_sum, presence_idle_sum,
    presence_on_queue_sum, presence_meal_sum, presence_training_sum, presence_meeting_sum, presence_break_sum,
    interval_end,
    handle_count, acw_count, held_complete_count, talk_complete_count, connected_count,
    user_id, queue_id, org, granularity, media_type, other_metrics)
SELECT a.interval_start, a.fetched_at,
       CASE WHEN f.handle THEN (a.metrics #>> '{tHandle,sum}')::float8 END,
       CASE WHEN f.handle THEN (a.metrics #>> '{tHandle,min}')::float8 END,
       CASE WHEN f.handle THEN (a.metrics #>> '{tHandle,max}')::float8 END,
       CASE WHEN f.acw THEN (a.metrics #>> '{tAcw,sum}')::float8 END,
       CASE WHEN f.acw THEN (a.metrics #>> '{tAcw,min}')::float8 END,
       CASE WHEN f.acw THEN (a.metrics #>> '{tAcw,max}')::float8 END,
       CASE WHEN f.held_complete THEN (a.metrics #>> '{tHeldComplete,sum}')::float8 END,
       CASE WHEN f.held_complete THEN (a.metrics #>> '{tHeldComplete,min}')::float8 END,
       CASE WHEN f.held_complete THEN (a.metrics #>> '{tHeldComplete,max}')::float8 END,
       CASE WHEN f.talk_complete THEN (a.metrics #>> '{tTalkComplete,sum}')::float8 END,
       CASE WHEN f.talk_complete THEN (a.metrics #>> '{tTalkComplete,min}')::float8 END,
       CASE WHEN f.talk_complete THEN (a.metrics #>> '{tTalkComplete,max}')::float8 END,
       CASE WHEN f.routing_idle THEN (a.metrics #>> '{tAgentRoutingStatus:IDLE,sum}')::float8 END,
       CASE WHEN f.routing_interacting THEN (a.metrics #>> '{tAgentRoutingStatus:INTERACTING,sum}')::float8 END,
       CASE WHEN f.routing_communicating THEN (a.metrics #>> '{tAgentRoutingStatus:COMMUNICATING,sum}')::float8 END,
       CASE WHEN f.routing_not_responding THEN (a.metrics #>> '{tAgentRoutingStatus:NOT_RESPONDING,sum}')::float8 END,
       CASE WHEN f.routing_off_queue THEN (a.metrics #>> '{tAgentRoutingStatus:OFF_QUEUE,sum}')::float8 END,
       CASE WHEN f.presence_available THEN (a.metrics #>> '{tSystemPresence:AVAILABLE,sum}')::float8 END,
       CASE WHEN f.presence_away THEN (a.metrics #>> '{tSystemPresence:AWAY,sum}')::float8 END,
       CASE WHEN f.presence_busy THEN (a.metrics #>> '{tSystemPresence:BUSY,sum}')::float8 END,
       CASE WHEN f.presence_offline THEN (a.metrics #>> '{tSystemPresence:OFFLINE,sum}')::float8 END,
       CASE WHEN f.presence_idle THEN (a.metrics #>> '{tSystemPresence:IDLE,sum}')::float8 END,
       CASE WHEN f.presence_on_queue THEN (a.metrics #>> '{tSystemPresence:ON_QUEUE,sum}')::float8 END,
       CASE WHEN f.presence_meal THEN (a.metrics #>> '{tSystemPresence:MEAL,sum}')::float8 END,
       CASE WHEN f.presence_training THEN (a.metrics #>> '{tSystemPresence:TRAINING,sum}')::float8 END,
       CASE WHEN f.presence_meeting THEN (a.metrics #>> '{tSystemPresence:MEETING,sum}')::float8 END,
       CASE WHEN f.presence_break THEN (a.metrics #>> '{tSystemPresence:BREAK,sum}')::float8 END,
       nullif(a.interval_end, a.interval_start + interval_grain_length(a.granularity)),
       CASE WHEN f.handle THEN (a.metrics #>> '{tHandle,count}')::int4 END,
       CASE WHEN f.acw THEN (a.metrics #>> '{tAcw,count}')::int4 END,
       CASE WHEN f.held_complete THEN (a.metrics #>> '{tHeldComplete,count}')::int4 END,
       CASE WHEN f.talk_complete THEN (a.metrics #>> '{tTalkComplete,count}')::int4 END,
       CASE WHEN f.connected THEN (a.metrics #>> '{nConnected,count}')::int4 END,
       a.user_id, a.queue_id, a.org, a.granularity, a.media_type,
       nullif(a.metrics - ARRAY[
           CASE WHEN f.handle THEN 'tHandle' END, CASE WHEN f.acw THEN 'tAcw' END,
           CASE WHEN f.held_complete THEN 'tHeldComplete' END, CASE WHEN f.talk_complete THEN 'tTalkComplete' END,
           CASE WHEN f.connected THEN 'nConnected' END,
           CASE WHEN f.routing_idle THEN 'tAgentRoutingStatus:IDLE' END,
           CASE WHEN f.routing_interacting THEN 'tAgentRoutingStatus:INTERACTING' END,
           CASE WHEN f.routing_communicating THEN 'tAgentRoutingStatus:COMMUNICATING' END,
           CASE WHEN f.routing_not_responding THEN 'tAgentRoutingStatus:NOT_RESPONDING' END,
           CASE WHEN f.routing_off_queue THEN 'tAgentRoutingStatus:OFF_QUEUE' END,
           CASE WHEN f.presence_available THEN 'tSystemPresence:AVAILABLE' END,
           CASE WHEN f.presence_away THEN 'tSystemPresence:AWAY' END,
           CASE WHEN f.presence_busy THEN 'tSystemPresence:BUSY' END,
           CASE WHEN f.presence_offline THEN 'tSystemPresence:OFFLINE' END,
           CASE WHEN f.presence_idle THEN 'tSystemPresence:IDLE' END,
           CASE WHEN f.presence_on_queue THEN 'tSystemPresence:ON_QUEUE' END,
           CASE WHEN f.presence_meal THEN 'tSystemPresence:MEAL' END,
           CASE WHEN f.presence_training THEN 'tSystemPresence:TRAINING' END,
           CASE WHEN f.presence_meeting THEN 'tSystemPresence:MEETING' END,
           CASE WHEN f.presence_break THEN 'tSystemPresence:BREAK' END]::text[], '{}'::jsonb)
FROM agent_intervals AS a
CROSS JOIN LATERAL (
    SELECT pg_temp.fits(a.metrics -> 'tHandle', '{count,sum,min,max}') AS handle,
           pg_temp.fits(a.metrics -> 'tAcw', '{count,sum,min,max}') AS acw,
           pg_temp.fits(a.metrics -> 'tHeldComplete', '{count,sum,min,max}') AS held_complete,
           pg_temp.fits(a.metrics -> 'tTalkComplete', '{count,sum,min,max}') AS talk_complete,
           pg_temp.fits(a.metrics -> 'nConnected', '{count}') AS connected,
           pg_temp.fits(a.metrics -> 'tAgentRoutingStatus:IDLE', '{sum}') AS routing_idle,
           pg_temp.fits(a.metrics -> 'tAgentRoutingStatus:INTERACTING', '{sum}') AS routing_interacting,
           pg_temp.fits(a.metrics -> 'tAgentRoutingStatus:COMMUNICATING', '{sum}') AS routing_communicating,
           pg_temp.fits(a.metrics -> 'tAgentRoutingStatus:NOT_RESPONDING', '{sum}') AS routing_not_responding,
           pg_temp.fits(a.metrics -> 'tAgentRoutingStatus:OFF_QUEUE', '{sum}') AS routing_off_queue,
           pg_temp.fits(a.metrics -> 'tSystemPresence:AVAILABLE', '{sum}') AS presence_available,
           pg_temp.fits(a.metrics -> 'tSystemPresence:AWAY', '{sum}') AS presence_away,
           pg_temp.fits(a.metrics -> 'tSystemPresence:BUSY', '{sum}') AS presence_busy,
           pg_temp.fits(a.metrics -> 'tSystemPresence:OFFLINE', '{sum}') AS presence_offline,
           pg_temp.fits(a.metrics -> 'tSystemPresence:IDLE', '{sum}') AS presence_idle,
           pg_temp.fits(a.metrics -> 'tSystemPresence:ON_QUEUE', '{sum}') AS presence_on_queue,
           pg_temp.fits(a.metrics -> 'tSystemPresence:MEAL', '{sum}') AS presence_meal,
           pg_temp.fits(a.metrics -> 'tSystemPresence:TRAINING', '{sum}') AS presence_training,
           pg_temp.fits(a.metrics -> 'tSystemPresence:MEETING', '{sum}') AS presence_meeting,
           pg_temp.fits(a.metrics -> 'tSystemPresence:BREAK', '{sum}') AS presence_break
    OFFSET 0 -- once per grain, not once per use below
) AS f
ORDER BY a.org, a.granularity, a.interval_start, a.user_id, a.media_type, a.queue_id;

DROP VIEW agent_utilization;
DROP VIEW agent_interval_summary;
DROP VIEW interval_metrics;
DROP TABLE agent_intervals;

-- What `agent_intervals` was, as a view: one row per grain, every metric in `metrics` (keys
-- sorted, absent statistics left out).
CREATE VIEW agent_intervals AS
SELECT g.org, g.user_id, g.media_type, g.queue_id, g.granularity, g.interval_start,
       coalesce(g.interval_end, g.interval_start + interval_grain_length(g.granularity)) AS interval_end,
       jsonb_strip_nulls(jsonb_build_object(
           'nConnected', CASE WHEN g.connected_count IS NOT NULL THEN jsonb_build_object('count', g.connected_count) END,
           'tAcw', CASE WHEN num_nonnulls(g.acw_count, g.acw_sum, g.acw_min, g.acw_max) > 0 THEN jsonb_build_object(
               'count', g.acw_count, 'sum', g.acw_sum, 'min', g.acw_min, 'max', g.acw_max) END,
           'tHandle', CASE WHEN num_nonnulls(g.handle_count, g.handle_sum, g.handle_min, g.handle_max) > 0 THEN jsonb_build_object(
               'count', g.handle_count, 'sum', g.handle_sum, 'min', g.handle_min, 'max', g.handle_max) END,
           'tHeldComplete', CASE WHEN num_nonnulls(g.held_complete_count, g.held_complete_sum, g.held_complete_min,
               g.held_complete_max) > 0 THEN jsonb_build_object('count', g.held_complete_count, 'sum', g.held_complete_sum,
               'min', g.held_complete_min, 'max', g.held_complete_max) END,
           'tTalkComplete', CASE WHEN num_nonnulls(g.talk_complete_count, g.talk_complete_sum, g.talk_complete_min,
               g.talk_complete_max) > 0 THEN jsonb_build_object('count', g.talk_complete_count, 'sum', g.talk_complete_sum,
               'min', g.talk_complete_min, 'max', g.talk_complete_max) END,
           'tAgentRoutingStatus:IDLE', CASE WHEN g.routing_idle_sum IS NOT NULL THEN jsonb_build_object('sum', g.routing_idle_sum) END,
           'tAgentRoutingStatus:INTERACTING', CASE WHEN g.routing_interacting_sum IS NOT NULL THEN jsonb_build_object('sum', g.routing_interacting_sum) END,
           'tAgentRoutingStatus:COMMUNICATING', CASE WHEN g.routing_communicating_sum IS NOT NULL THEN jsonb_build_object('sum', g.routing_communicating_sum) END,
           'tAgentRoutingStatus:NOT_RESPONDING', CASE WHEN g.routing_not_responding_sum IS NOT NULL THEN jsonb_build_object('sum', g.routing_not_responding_sum) END,
           'tAgentRoutingStatus:OFF_QUEUE', CASE WHEN g.routing_off_queue_sum IS NOT NULL THEN jsonb_build_object('sum', g.routing_off_queue_sum) END,
           'tSystemPresence:AVAILABLE', CASE WHEN g.presence_available_sum IS NOT NULL THEN jsonb_build_object('sum', g.presence_available_sum) END,
           'tSystemPresence:AWAY', CASE WHEN g.presence_away_sum IS NOT NULL THEN jsonb_build_object('sum', g.presence_away_sum) END,
           'tSystemPresence:BUSY', CASE WHEN g.presence_busy_sum IS NOT NULL THEN jsonb_build_object('sum', g.presence_busy_sum) END,
           'tSystemPresence:OFFLINE', CASE WHEN g.presence_offline_sum IS NOT NULL THEN jsonb_build_object('sum', g.presence_offline_sum) END,
           'tSystemPresence:IDLE', CASE WHEN g.presence_idle_sum IS NOT NULL THEN jsonb_build_object('sum', g.presence_idle_sum) END,
           'tSystemPresence:ON_QUEUE', CASE WHEN g.presence_on_queue_sum IS NOT NULL THEN jsonb_build_object('sum', g.presence_on_queue_sum) END,
           'tSystemPresence:MEAL', CASE WHEN g.presence_meal_sum IS NOT NULL THEN jsonb_build_object('sum', g.presence_meal_sum) END,
           'tSystemPresence:TRAINING', CASE WHEN g.presence_training_sum IS NOT NULL THEN jsonb_build_object('sum', g.presence_training_sum) END,
           'tSystemPresence:MEETING', CASE WHEN g.presence_meeting_sum IS NOT NULL THEN jsonb_build_object('sum', g.presence_meeting_sum) END,
           'tSystemPresence:BREAK', CASE WHEN g.presence_break_sum IS NOT NULL THEN jsonb_build_object('sum', g.presence_break_sum) END
       )) || coalesce(g.other_metrics, '{}'::jsonb) AS metrics,
       g.fetched_at
FROM interval_grains AS g;

-- The long contract: one row per metric. Typed values become numeric through their shortest text
-- (what the jsonb of before held), so the numbers are the ones stored before. Status columns and
-- other_metrics are only looked at in grains that have some.
CREATE VIEW interval_metrics AS
SELECT g.org, g.user_id, g.media_type, g.queue_id, g.granularity, g.interval_start,
       coalesce(g.interval_end, g.interval_start + interval_grain_length(g.granularity)) AS interval_end,
       m.metric, m.count, m.sum, m.min, m.max,
       g.fetched_at
FROM interval_grains AS g
CROSS JOIN LATERAL (
    SELECT v.metric, v.count::bigint AS count, v.sum::text::numeric AS sum, v.min::text::numeric AS min,
           v.max::text::numeric AS max
    FROM (VALUES
        ('nConnected', g.connected_count, NULL::float8, NULL::float8, NULL::float8),
        ('tAcw', g.acw_count, g.acw_sum, g.acw_min, g.acw_max),
        ('tHandle', g.handle_count, g.handle_sum, g.handle_min, g.handle_max),
        ('tHeldComplete', g.held_complete_count, g.held_complete_sum, g.held_complete_min, g.held_complete_max),
        ('tTalkComplete', g.talk_complete_count, g.talk_complete_sum, g.talk_complete_min, g.talk_complete_max)
    ) AS v(metric, count, sum, min, max)
    WHERE num_nonnulls(v.count, v.sum, v.min, v.max) > 0
    UNION ALL
    SELECT v.metric, NULL::bigint, v.sum::text::numeric, NULL::numeric, NULL::numeric
    FROM (VALUES
        ('tAgentRoutingStatus:IDLE', g.routing_idle_sum),
        ('tAgentRoutingStatus:INTERACTING', g.routing_interacting_sum),
        ('tAgentRoutingStatus:COMMUNICATING', g.routing_communicating_sum),
        ('tAgentRoutingStatus:NOT_RESPONDING', g.routing_not_responding_sum),
        ('tAgentRoutingStatus:OFF_QUEUE', g.routing_off_queue_sum),
        ('tSystemPresence:AVAILABLE', g.presence_available_sum),
        ('tSystemPresence:AWAY', g.presence_away_sum),
        ('tSystemPresence:BUSY', g.presence_busy_sum),
        ('tSystemPresence:OFFLINE', g.presence_offline_sum),
        ('tSystemPresence:IDLE', g.presence_idle_sum),
        ('tSystemPresence:ON_QUEUE', g.presence_on_queue_sum),
        ('tSystemPresence:MEAL', g.presence_meal_sum),
        ('tSystemPresence:TRAINING', g.presence_training_sum),
        ('tSystemPresence:MEETING', g.presence_meeting_sum),
        ('tSystemPresence:BREAK', g.presence_break_sum)
    ) AS v(metric, sum)
    WHERE num_nonnulls(g.routing_idle_sum, g.routing_interacting_sum, g.routing_communicating_sum,
                       g.routing_not_responding_sum, g.routing_off_queue_sum, g.presence_available_sum,
                       g.presence_away_sum, g.presence_busy_sum, g.presence_offline_sum, g.presence_idle_sum,
                       g.presence_on_queue_sum, g.presence_meal_sum, g.presence_training_sum,
                       g.presence_meeting_sum, g.presence_break_sum) > 0
      AND v.sum IS NOT NULL
    UNION ALL
    SELECT e.key, (e.value ->> 'count')::bigint, (e.value ->> 'sum')::numeric, (e.value ->> 'min')::numeric,
           (e.value ->> 'max')::numeric
    FROM jsonb_each(g.other_metrics) AS e
    WHERE g.other_metrics IS NOT NULL
) AS m;

-- The classic columns, one row per grain; NULL where the metric was not read. hold and talk
-- prefer the per-session metrics. A typed key may sit in other_metrics (a statistic its columns
-- do not hold), so each value is looked for in both.
CREATE VIEW agent_interval_summary AS
SELECT g.org, g.user_id, g.media_type, g.queue_id, g.granularity, g.interval_start,
       coalesce(g.interval_end, g.interval_start + interval_grain_length(g.granularity)) AS interval_end,
       coalesce(g.handle_sum::text, g.other_metrics #>> '{tHandle,sum}')::numeric AS handle_ms,
       coalesce(g.handle_count::bigint, (g.other_metrics #>> '{tHandle,count}')::bigint) AS handle_count,
       coalesce(g.acw_sum::text, g.other_metrics #>> '{tAcw,sum}')::numeric AS acw_ms,
       coalesce(g.held_complete_sum::text, g.other_metrics #>> '{tHeldComplete,sum}',
                g.other_metrics #>> '{tHeld,sum}')::numeric AS hold_ms,
       coalesce(g.talk_complete_sum::text, g.other_metrics #>> '{tTalkComplete,sum}',
                g.other_metrics #>> '{tTalk,sum}')::numeric AS talk_ms,
       g.fetched_at,
       u.name AS user_name
FROM interval_grains AS g
LEFT JOIN users AS u ON u.org = g.org AND u.id = g.user_id;

-- As in schema v3, over the typed columns: one row per agent and bucket with status time, the
-- status time next to the agent's conversation sums of the bucket (all media types and queues).
CREATE VIEW agent_utilization AS
SELECT org, user_id, granularity, interval_start, interval_end,
       on_queue_ms, idle_ms, interacting_ms, communicating_ms, not_responding_ms, off_queue_ms,
       handle_ms, handle_count, acw_ms, hold_ms, talk_ms,
       interacting_ms / nullif(interacting_ms + communicating_ms + idle_ms, 0) AS occupancy,
       handle_ms / nullif(on_queue_ms, 0) AS handle_per_on_queue
FROM (
    SELECT g.org, g.user_id, g.granularity, g.interval_start,
           max(coalesce(g.interval_end, g.interval_start + interval_grain_length(g.granularity))) AS interval_end,
           coalesce(sum(coalesce(g.presence_on_queue_sum,
               (g.other_metrics #>> '{tSystemPresence:ON_QUEUE,sum}')::float8)), 0) AS on_queue_ms,
           coalesce(sum(coalesce(g.routing_idle_sum,
               (g.other_metrics #>> '{tAgentRoutingStatus:IDLE,sum}')::float8)), 0) AS idle_ms,
           coalesce(sum(coalesce(g.routing_interacting_sum,
               (g.other_metrics #>> '{tAgentRoutingStatus:INTERACTING,sum}')::float8)), 0) AS interacting_ms,
           coalesce(sum(coalesce(g.routing_communicating_sum,
               (g.other_metrics #>> '{tAgentRoutingStatus:COMMUNICATING,sum}')::float8)), 0) AS communicating_ms,
           coalesce(sum(coalesce(g.routing_not_responding_sum,
               (g.other_metrics #>> '{tAgentRoutingStatus:NOT_RESPONDING,sum}')::float8)), 0) AS not_responding_ms,
           coalesce(sum(coalesce(g.routing_off_queue_sum,
               (g.other_metrics #>> '{tAgentRoutingStatus:OFF_QUEUE,sum}')::float8)), 0) AS off_queue_ms,
           coalesce(sum(coalesce(g.handle_sum, (g.other_metrics #>> '{tHandle,sum}')::float8)), 0) AS handle_ms,
           coalesce(sum(coalesce(g.handle_count::bigint, (g.other_metrics #>> '{tHandle,count}')::bigint)), 0)::bigint
               AS handle_count,
           coalesce(sum(coalesce(g.acw_sum, (g.other_metrics #>> '{tAcw,sum}')::float8)), 0) AS acw_ms,
           coalesce(sum(coalesce(g.held_complete_sum, (g.other_metrics #>> '{tHeldComplete,sum}')::float8,
               (g.other_metrics #>> '{tHeld,sum}')::float8)), 0) AS hold_ms,
           coalesce(sum(coalesce(g.talk_complete_sum, (g.other_metrics #>> '{tTalkComplete,sum}')::float8,
               (g.other_metrics #>> '{tTalk,sum}')::float8)), 0) AS talk_ms,
           bool_or(g.media_type = '' AND g.queue_id = '00000000-0000-0000-0000-000000000000'
                   AND (num_nonnulls(g.routing_idle_sum, g.routing_interacting_sum, g.routing_communicating_sum,
                                     g.routing_not_responding_sum, g.routing_off_queue_sum,
                                     g.presence_available_sum, g.presence_away_sum, g.presence_busy_sum,
                                     g.presence_offline_sum, g.presence_idle_sum, g.presence_on_queue_sum,
                                     g.presence_meal_sum, g.presence_training_sum, g.presence_meeting_sum,
                                     g.presence_break_sum) > 0
                        OR g.other_metrics ?| (SELECT array_agg(k.key) FROM qualified_metric_keys AS k
                                               WHERE split_part(k.key, ':', 1) IN ('tAgentRoutingStatus', 'tSystemPresence'))))
               AS has_status
    FROM interval_grains AS g
    WHERE g.user_id <> '00000000-0000-0000-0000-000000000000'
    GROUP BY g.org, g.granularity, g.interval_start, g.user_id
) AS s
WHERE has_status;

ANALYZE interval_grains;
