-- Trace counts as running totals per chain (issue 14).
--
-- why_not_ranked's sampleSize and selection_frequency's totalTraces (without a channel or flow)
-- summed trace_daily or trace_segment_daily over the window: one row per (day, channel, flow),
-- a number that grows with the window and the traffic (1,724 rows for a segment over 90 days
-- at 10M traces; why_not_ranked with a segment ×1.71 by p50 from 100k to 10M, selection_frequency
-- with a segment ×1.85 at 7 days, BENCHMARKS.md "Reads, sixth pass"). Here each chain (segment
-- '' for all customers, then each segment) has a checkpoint at every day it had traces, holding
-- its traces and degraded traces summed over channels and flows up to that day: a window reads
-- two rows, as the other running totals do (migration `running_totals`).
--
-- trace_daily and trace_segment_daily stay: they answer a channel or a flow, and the daily
-- series of anomaly_candidates and degraded_scoring.
CREATE TABLE trace_totals (
    tenant_id  text COLLATE "C" NOT NULL,
    segment_id text COLLATE "C" NOT NULL,
    day        date             NOT NULL,
    traces     int8             NOT NULL,
    degraded   int8             NOT NULL,
    PRIMARY KEY (tenant_id, segment_id, day)
) WITH (fillfactor = 60);

-- Backfill: a checkpoint at each (chain, day) with traces, holding the chain's counts summed
-- up to that day.
CREATE TEMPORARY TABLE trace_chain_days ON COMMIT DROP AS
SELECT tenant_id COLLATE "C" AS tenant_id, '' COLLATE "C" AS segment_id, day,
       sum(traces) AS traces, sum(degraded) AS degraded
  FROM trace_daily
 GROUP BY 1, 2, 3
 UNION ALL
SELECT tenant_id COLLATE "C", segment_id COLLATE "C", day, sum(traces), sum(degraded)
  FROM trace_segment_daily
 WHERE segment_id <> ''
 GROUP BY 1, 2, 3;

INSERT INTO running_total_days (view, tenant_id, segment_id, day)
SELECT 'trace_totals', tenant_id, segment_id, day FROM trace_chain_days
ON CONFLICT DO NOTHING;

INSERT INTO trace_totals (tenant_id, segment_id, day, traces, degraded)
SELECT tenant_id, segment_id, day,
       (sum(traces) OVER w)::int8, (sum(degraded) OVER w)::int8
  FROM trace_chain_days
WINDOW w AS (PARTITION BY tenant_id, segment_id ORDER BY day);
