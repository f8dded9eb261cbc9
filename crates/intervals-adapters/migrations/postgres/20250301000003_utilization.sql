-- genesys-intervals, PostgreSQL schema v3: agent utilization. Applied by the tool on connect (sqlx
-- migrate); do not edit an applied migration, add a new file instead.

-- agent_interval_summary gains the agent's name (NULL until `genesys-intervals users` has stored
-- the agent, and for grains not grouped by user), as its last column: the others keep their order.
CREATE OR REPLACE VIEW agent_interval_summary AS
SELECT a.org, a.user_id, a.media_type, a.queue_id, a.granularity, a.interval_start, a.interval_end,
       (a.metrics #>> '{tHandle,sum}')::numeric AS handle_ms,
       (a.metrics #>> '{tHandle,count}')::bigint AS handle_count,
       (a.metrics #>> '{tAcw,sum}')::numeric AS acw_ms,
       coalesce(a.metrics #>> '{tHeldComplete,sum}', a.metrics #>> '{tHeld,sum}')::numeric AS hold_ms,
       coalesce(a.metrics #>> '{tTalkComplete,sum}', a.metrics #>> '{tTalk,sum}')::numeric AS talk_ms,
       a.fetched_at,
       u.name AS user_name
FROM agent_intervals AS a
LEFT JOIN users AS u ON u.org = a.org AND u.id = a.user_id;

-- One row per agent and bucket with status time: the status metrics (on the agent's grain,
-- media_type = '' and queue_id nil) next to the agent's conversation metrics of the same bucket,
-- summed over media types and queues. Each column reads only its own metric's keys, so a
-- conversation query grouped by userId alone (whose grain is the status grain) is counted once.
--
-- One pass over the agent's grains of each bucket, grouped on a prefix of the primary key; a
-- filter on org, user_id, granularity or interval_start is pushed below the grouping and uses the
-- primary key or agent_intervals_by_agent. "Has status time" is one `?|` test against the status
-- keys ever stored (qualified_metric_keys, read once per query), not a scan of each grain's keys.
-- Times are double precision (exact for whole milliseconds; summing them is much cheaper than
-- numeric), handle_count bigint.
CREATE VIEW agent_utilization AS
SELECT org, user_id, granularity, interval_start, interval_end,
       on_queue_ms, idle_ms, interacting_ms, communicating_ms, not_responding_ms, off_queue_ms,
       handle_ms, handle_count, acw_ms, hold_ms, talk_ms,
       interacting_ms / nullif(interacting_ms + communicating_ms + idle_ms, 0) AS occupancy,
       handle_ms / nullif(on_queue_ms, 0) AS handle_per_on_queue
FROM (
    SELECT a.org, a.user_id, a.granularity, a.interval_start, max(a.interval_end) AS interval_end,
           coalesce(sum((a.metrics #>> '{tSystemPresence:ON_QUEUE,sum}')::float8), 0) AS on_queue_ms,
           coalesce(sum((a.metrics #>> '{tAgentRoutingStatus:IDLE,sum}')::float8), 0) AS idle_ms,
           coalesce(sum((a.metrics #>> '{tAgentRoutingStatus:INTERACTING,sum}')::float8), 0) AS interacting_ms,
           coalesce(sum((a.metrics #>> '{tAgentRoutingStatus:COMMUNICATING,sum}')::float8), 0) AS communicating_ms,
           coalesce(sum((a.metrics #>> '{tAgentRoutingStatus:NOT_RESPONDING,sum}')::float8), 0) AS not_responding_ms,
           coalesce(sum((a.metrics #>> '{tAgentRoutingStatus:OFF_QUEUE,sum}')::float8), 0) AS off_queue_ms,
           coalesce(sum((a.metrics #>> '{tHandle,sum}')::float8), 0) AS handle_ms,
           coalesce(sum((a.metrics #>> '{tHandle,count}')::bigint), 0)::bigint AS handle_count,
           coalesce(sum((a.metrics #>> '{tAcw,sum}')::float8), 0) AS acw_ms,
           coalesce(sum(coalesce(a.metrics #>> '{tHeldComplete,sum}', a.metrics #>> '{tHeld,sum}')::float8), 0)
               AS hold_ms,
           coalesce(sum(coalesce(a.metrics #>> '{tTalkComplete,sum}', a.metrics #>> '{tTalk,sum}')::float8), 0)
               AS talk_ms,
           bool_or(a.media_type = '' AND a.queue_id = '00000000-0000-0000-0000-000000000000'
                   AND a.metrics ?| (SELECT array_agg(k.key) FROM qualified_metric_keys AS k
                                     WHERE split_part(k.key, ':', 1) IN ('tAgentRoutingStatus', 'tSystemPresence')))
               AS has_status
    FROM agent_intervals AS a
    WHERE a.user_id <> '00000000-0000-0000-0000-000000000000'
    GROUP BY a.org, a.granularity, a.interval_start, a.user_id
) AS g
WHERE has_status;
