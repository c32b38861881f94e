-- interaction_daily, interaction_segment_daily and selection_daily become views over the
-- running totals (issue 13: the write path).
--
-- Since migration `running_totals` no dashboard type reads the interaction tables: every
-- (offer, channel) read goes to interaction_offer_channel_totals, which ingest keeps in the
-- same batch transaction from the same delta rows. selection_daily was read by why_not_ranked
-- alone, which now reads selection_offer_totals. Writing both cost each batch a second upsert
-- of the same keys (pg_stat_statements, per batch at 1M traces: 76 ms for interaction_daily
-- against 74 ms for the totals' add; 29 ms for selection_daily). The totals hold everything
-- the tables held: a checkpoint's row minus the key's row at the chain's previous checkpoint
-- is that day's counters. The views give operators and tests the daily rows as before (same
-- names, columns and types), computed that way; a key's checkpoint on a day it had no events
-- differs by zero and is left out, as the tables never held such a row (every interaction
-- counts in one of the counts; every selection row counts a candidate as eligible, or a score).
--
-- Existing data carries over: the totals were backfilled from these tables by `running_totals`
-- and `selection_offer_totals` and maintained beside them since, so dropping the tables loses
-- nothing.
DROP TABLE interaction_daily;
DROP TABLE interaction_segment_daily;

-- Every chain's daily rows: segment '' for all customers, then each segment's.
CREATE VIEW interaction_chain_daily AS
SELECT tenant_id, segment_id, day, offer_id, channel_id, impressions, clicks, accepts, converts, rejects,
       dismisses, revenue_micros, cost_micros
  FROM (SELECT tenant_id, segment_id, day, offer_id, channel_id,
               impressions - COALESCE(lag(impressions) OVER w, 0) AS impressions,
               clicks - COALESCE(lag(clicks) OVER w, 0) AS clicks,
               accepts - COALESCE(lag(accepts) OVER w, 0) AS accepts,
               converts - COALESCE(lag(converts) OVER w, 0) AS converts,
               rejects - COALESCE(lag(rejects) OVER w, 0) AS rejects,
               dismisses - COALESCE(lag(dismisses) OVER w, 0) AS dismisses,
               revenue_micros - COALESCE(lag(revenue_micros) OVER w, 0) AS revenue_micros,
               cost_micros - COALESCE(lag(cost_micros) OVER w, 0) AS cost_micros
          FROM interaction_offer_channel_totals
        WINDOW w AS (PARTITION BY tenant_id, segment_id, offer_id, channel_id ORDER BY day)) d
 WHERE (impressions, clicks, accepts, converts, rejects, dismisses, revenue_micros, cost_micros)
       IS DISTINCT FROM (0, 0, 0, 0, 0, 0, 0, 0);

-- The two tables' rows, as they held them. (The window's partitions are whole chains, so the
-- planner pushes the segment condition below it and reads only the chains asked for.)
CREATE VIEW interaction_daily AS
SELECT tenant_id, day, offer_id, channel_id, impressions, clicks, accepts, converts, rejects, dismisses,
       revenue_micros, cost_micros
  FROM interaction_chain_daily
 WHERE segment_id = '';

CREATE VIEW interaction_segment_daily AS
SELECT * FROM interaction_chain_daily WHERE segment_id <> '';

-- selection_daily's score sum was a bigint: a day's sum still fits (the totals' column is
-- numeric because it never restarts).
DROP TABLE selection_daily;

CREATE VIEW selection_daily AS
SELECT tenant_id, day, offer_id, eligible, scored, selected, rank_sum, rank_n, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, miss_qualification, miss_contact, miss_too_low, miss_not_ranked, score_sum_micros, score_n, b0, b1, b2, b3, b4, b5, b6, b7, b8, b9
  FROM (SELECT tenant_id, day, offer_id,
               (eligible - COALESCE(lag(eligible) OVER w, 0))::int8 AS eligible,
               (scored - COALESCE(lag(scored) OVER w, 0))::int8 AS scored,
               (selected - COALESCE(lag(selected) OVER w, 0))::int8 AS selected,
               (rank_sum - COALESCE(lag(rank_sum) OVER w, 0))::int8 AS rank_sum,
               (rank_n - COALESCE(lag(rank_n) OVER w, 0))::int8 AS rank_n,
               (r1 - COALESCE(lag(r1) OVER w, 0))::int8 AS r1,
               (r2 - COALESCE(lag(r2) OVER w, 0))::int8 AS r2,
               (r3 - COALESCE(lag(r3) OVER w, 0))::int8 AS r3,
               (r4 - COALESCE(lag(r4) OVER w, 0))::int8 AS r4,
               (r5 - COALESCE(lag(r5) OVER w, 0))::int8 AS r5,
               (r6 - COALESCE(lag(r6) OVER w, 0))::int8 AS r6,
               (r7 - COALESCE(lag(r7) OVER w, 0))::int8 AS r7,
               (r8 - COALESCE(lag(r8) OVER w, 0))::int8 AS r8,
               (r9 - COALESCE(lag(r9) OVER w, 0))::int8 AS r9,
               (r10 - COALESCE(lag(r10) OVER w, 0))::int8 AS r10,
               (miss_qualification - COALESCE(lag(miss_qualification) OVER w, 0))::int8 AS miss_qualification,
               (miss_contact - COALESCE(lag(miss_contact) OVER w, 0))::int8 AS miss_contact,
               (miss_too_low - COALESCE(lag(miss_too_low) OVER w, 0))::int8 AS miss_too_low,
               (miss_not_ranked - COALESCE(lag(miss_not_ranked) OVER w, 0))::int8 AS miss_not_ranked,
               (score_sum_micros - COALESCE(lag(score_sum_micros) OVER w, 0))::int8 AS score_sum_micros,
               (score_n - COALESCE(lag(score_n) OVER w, 0))::int8 AS score_n,
               (b0 - COALESCE(lag(b0) OVER w, 0))::int8 AS b0,
               (b1 - COALESCE(lag(b1) OVER w, 0))::int8 AS b1,
               (b2 - COALESCE(lag(b2) OVER w, 0))::int8 AS b2,
               (b3 - COALESCE(lag(b3) OVER w, 0))::int8 AS b3,
               (b4 - COALESCE(lag(b4) OVER w, 0))::int8 AS b4,
               (b5 - COALESCE(lag(b5) OVER w, 0))::int8 AS b5,
               (b6 - COALESCE(lag(b6) OVER w, 0))::int8 AS b6,
               (b7 - COALESCE(lag(b7) OVER w, 0))::int8 AS b7,
               (b8 - COALESCE(lag(b8) OVER w, 0))::int8 AS b8,
               (b9 - COALESCE(lag(b9) OVER w, 0))::int8 AS b9
          FROM selection_offer_totals
         WHERE segment_id = ''
        WINDOW w AS (PARTITION BY tenant_id, offer_id ORDER BY day)) d
 WHERE (eligible, scored, selected, rank_sum, rank_n, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, miss_qualification, miss_contact, miss_too_low, miss_not_ranked, score_sum_micros, score_n, b0, b1, b2, b3, b4, b5, b6, b7, b8, b9)
       IS DISTINCT FROM (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
