-- Each segment's chain of per-offer selection running totals (issue 14).
--
-- selection_frequency and why_not_ranked with a segmentId (and no channel or flow) summed
-- selection_segment_daily over the window: one row per (day, channel, flow, offer) of the
-- segment, a number that grows with the traffic (p99 18-55 ms at 10M traces over 90 days,
-- against 4-7 ms at 1M). selection_offer_totals already has a segment column and held chain ''
-- (all customers) only; here each segment gets its chain, as interaction_offer_totals has:
-- checkpoints at the days the segment had candidates, each holding every offer's counters,
-- summed over channels and flows, up to that day. A window reads two rows per offer.
--
-- The score buckets (b0-b9) are zero in a segment's chain, written as such rather than left to
-- the columns' defaults: score_distribution has no segment filter, and the segment's daily rows
-- never held them. selection_segment_daily stays: it answers a segment combined with a channel
-- or flow, and ingest keeps writing it.
--
-- Backfill from selection_segment_daily, so an existing deployment's chains are exact from the
-- start: a checkpoint at each (segment, day) with rows, and each offer a row at every
-- checkpoint of its segment from its first day on.
CREATE TEMPORARY TABLE segment_offer_days ON COMMIT DROP AS
SELECT tenant_id, segment_id, day, offer_id,
       sum(eligible) AS eligible, sum(scored) AS scored, sum(selected) AS selected,
       sum(rank_sum) AS rank_sum, sum(rank_n) AS rank_n,
       sum(r1) AS r1, sum(r2) AS r2, sum(r3) AS r3, sum(r4) AS r4, sum(r5) AS r5,
       sum(r6) AS r6, sum(r7) AS r7, sum(r8) AS r8, sum(r9) AS r9, sum(r10) AS r10,
       sum(miss_qualification) AS miss_qualification, sum(miss_contact) AS miss_contact,
       sum(miss_too_low) AS miss_too_low, sum(miss_not_ranked) AS miss_not_ranked,
       sum(score_sum_micros) AS score_sum_micros, sum(score_n) AS score_n
  FROM selection_segment_daily
 WHERE segment_id <> ''
 GROUP BY tenant_id, segment_id, day, offer_id;

INSERT INTO running_total_days (view, tenant_id, segment_id, day)
SELECT DISTINCT 'selection_offer_totals', tenant_id, segment_id, day FROM segment_offer_days
ON CONFLICT DO NOTHING;

INSERT INTO selection_offer_totals (tenant_id, segment_id, day, offer_id, eligible, scored, selected,
                                    rank_sum, rank_n, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10,
                                    miss_qualification, miss_contact, miss_too_low, miss_not_ranked,
                                    score_sum_micros, score_n, b0, b1, b2, b3, b4, b5, b6, b7, b8, b9)
SELECT k.tenant_id, k.segment_id, d.day, k.offer_id,
       (sum(COALESCE(r.eligible, 0)) OVER w)::int8, (sum(COALESCE(r.scored, 0)) OVER w)::int8,
       (sum(COALESCE(r.selected, 0)) OVER w)::int8, (sum(COALESCE(r.rank_sum, 0)) OVER w)::int8,
       (sum(COALESCE(r.rank_n, 0)) OVER w)::int8,
       (sum(COALESCE(r.r1, 0)) OVER w)::int8, (sum(COALESCE(r.r2, 0)) OVER w)::int8,
       (sum(COALESCE(r.r3, 0)) OVER w)::int8, (sum(COALESCE(r.r4, 0)) OVER w)::int8,
       (sum(COALESCE(r.r5, 0)) OVER w)::int8, (sum(COALESCE(r.r6, 0)) OVER w)::int8,
       (sum(COALESCE(r.r7, 0)) OVER w)::int8, (sum(COALESCE(r.r8, 0)) OVER w)::int8,
       (sum(COALESCE(r.r9, 0)) OVER w)::int8, (sum(COALESCE(r.r10, 0)) OVER w)::int8,
       (sum(COALESCE(r.miss_qualification, 0)) OVER w)::int8, (sum(COALESCE(r.miss_contact, 0)) OVER w)::int8,
       (sum(COALESCE(r.miss_too_low, 0)) OVER w)::int8, (sum(COALESCE(r.miss_not_ranked, 0)) OVER w)::int8,
       sum(COALESCE(r.score_sum_micros, 0)) OVER w, (sum(COALESCE(r.score_n, 0)) OVER w)::int8,
       0, 0, 0, 0, 0, 0, 0, 0, 0, 0
  FROM (SELECT tenant_id, segment_id, offer_id, min(day) AS first_day
          FROM segment_offer_days GROUP BY tenant_id, segment_id, offer_id) k
  JOIN running_total_days d
    ON d.view = 'selection_offer_totals' AND d.tenant_id = k.tenant_id AND d.segment_id = k.segment_id
   AND d.day >= k.first_day
  LEFT JOIN segment_offer_days r
    ON r.tenant_id = k.tenant_id AND r.segment_id = k.segment_id AND r.day = d.day AND r.offer_id = k.offer_id
WINDOW w AS (PARTITION BY k.tenant_id, k.segment_id, k.offer_id ORDER BY d.day);
