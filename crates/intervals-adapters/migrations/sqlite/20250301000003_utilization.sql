-- genesys-intervals, SQLite schema v3: agent utilization. Applied by the tool (sqlx migrate); do
-- not edit an applied migration, add a new file instead.

-- agent_interval_summary gains the agent's name (NULL until `genesys-intervals users` has stored
-- the agent, and for grains not grouped by user). Its other columns keep their order.
DROP VIEW agent_interval_summary;
CREATE VIEW agent_interval_summary AS
SELECT a.org, a.user_id, a.media_type, a.queue_id, a.granularity, a.interval_start, a.interval_end,
       json_extract(a.metrics, '$.tHandle.sum') AS handle_ms,
       json_extract(a.metrics, '$.tHandle.count') AS handle_count,
       json_extract(a.metrics, '$.tAcw.sum') AS acw_ms,
       coalesce(json_extract(a.metrics, '$.tHeldComplete.sum'), json_extract(a.metrics, '$.tHeld.sum')) AS hold_ms,
       coalesce(json_extract(a.metrics, '$.tTalkComplete.sum'), json_extract(a.metrics, '$.tTalk.sum')) AS talk_ms,
       a.fetched_at,
       u.name AS user_name
FROM agent_intervals AS a
LEFT JOIN users AS u ON u.org = a.org AND u.id = a.user_id;

-- One row per agent and bucket with status time: the status metrics (on the agent's grain,
-- media_type = queue_id = '') next to the agent's conversation metrics of the same bucket, summed
-- over media types and queues. Each column reads only its own metric's keys, so a conversation
-- query grouped by userId alone (whose grain is the status grain) is counted once. One pass over
-- the agent's grains of each bucket in primary-key order, grouped without sorting; a filter on
-- org, user_id, granularity or interval_start is applied before the grouping.
CREATE VIEW agent_utilization AS
SELECT org, user_id, granularity, interval_start, interval_end,
       on_queue_ms, idle_ms, interacting_ms, communicating_ms, not_responding_ms, off_queue_ms,
       handle_ms, handle_count, acw_ms, hold_ms, talk_ms,
       CAST(interacting_ms AS REAL) / nullif(interacting_ms + communicating_ms + idle_ms, 0) AS occupancy,
       CAST(handle_ms AS REAL) / nullif(on_queue_ms, 0) AS handle_per_on_queue
FROM (
    SELECT org, user_id, granularity, interval_start, max(interval_end) AS interval_end,
           coalesce(sum(json_extract(metrics, '$."tSystemPresence:ON_QUEUE".sum')), 0) AS on_queue_ms,
           coalesce(sum(json_extract(metrics, '$."tAgentRoutingStatus:IDLE".sum')), 0) AS idle_ms,
           coalesce(sum(json_extract(metrics, '$."tAgentRoutingStatus:INTERACTING".sum')), 0) AS interacting_ms,
           coalesce(sum(json_extract(metrics, '$."tAgentRoutingStatus:COMMUNICATING".sum')), 0) AS communicating_ms,
           coalesce(sum(json_extract(metrics, '$."tAgentRoutingStatus:NOT_RESPONDING".sum')), 0) AS not_responding_ms,
           coalesce(sum(json_extract(metrics, '$."tAgentRoutingStatus:OFF_QUEUE".sum')), 0) AS off_queue_ms,
           coalesce(sum(json_extract(metrics, '$.tHandle.sum')), 0) AS handle_ms,
           coalesce(sum(json_extract(metrics, '$.tHandle.count')), 0) AS handle_count,
           coalesce(sum(json_extract(metrics, '$.tAcw.sum')), 0) AS acw_ms,
           coalesce(sum(coalesce(json_extract(metrics, '$.tHeldComplete.sum'),
                                 json_extract(metrics, '$.tHeld.sum'))), 0) AS hold_ms,
           coalesce(sum(coalesce(json_extract(metrics, '$.tTalkComplete.sum'),
                                 json_extract(metrics, '$.tTalk.sum'))), 0) AS talk_ms,
           -- Status keys are stored on the agent's grain only; a key is '"metric:qualifier":'.
           max(media_type = '' AND queue_id = ''
               AND (instr(metrics, '"tAgentRoutingStatus:') > 0 OR instr(metrics, '"tSystemPresence:') > 0))
               AS has_status
    FROM agent_intervals
    WHERE user_id <> ''
    GROUP BY org, granularity, interval_start, user_id
)
WHERE has_status;
