-- The per-offer score buckets join the per-offer selection counters (issue 13).
--
-- `selection_daily` and `score_offer_daily` share their key (tenant, day, offer), and every
-- trace batch upserted both: two statements of ~2,300 rows each, 16.7 and 13.4 ms of a
-- ~85 ms batch (BENCHMARKS.md, "Write path, seventh pass"). An offer is scored only if it is
-- a candidate, so every `score_offer_daily` row has its `selection_daily` row; the bucket
-- counters become ten more columns of it, and one upsert writes both. The score sum and count
-- were already there twice: `selection_daily.score_sum_micros` / `score_n` count the same
-- scoringResults entries as `score_offer_daily.score_sum_micros` / `n` (both since
-- migrations 20261122000010 and 20261122000011); `score_distribution` now reads them from
-- `selection_daily`, offers with `score_n` > 0 (those that had a `score_offer_daily` row).
--
-- Existing data carries over: each row's buckets are copied, and a `score_offer_daily` row
-- without its `selection_daily` row (none is expected) is kept as a row with only its scores.
-- Where a row's two score sums differ (none is expected either), the score table's are kept:
-- score_distribution answers as before, and why_not_ranked's average score takes the same
-- figures.
ALTER TABLE selection_daily
    ADD COLUMN b0 bigint NOT NULL DEFAULT 0, ADD COLUMN b1 bigint NOT NULL DEFAULT 0,
    ADD COLUMN b2 bigint NOT NULL DEFAULT 0, ADD COLUMN b3 bigint NOT NULL DEFAULT 0,
    ADD COLUMN b4 bigint NOT NULL DEFAULT 0, ADD COLUMN b5 bigint NOT NULL DEFAULT 0,
    ADD COLUMN b6 bigint NOT NULL DEFAULT 0, ADD COLUMN b7 bigint NOT NULL DEFAULT 0,
    ADD COLUMN b8 bigint NOT NULL DEFAULT 0, ADD COLUMN b9 bigint NOT NULL DEFAULT 0;

UPDATE selection_daily s
   SET b0 = o.b0, b1 = o.b1, b2 = o.b2, b3 = o.b3, b4 = o.b4,
       b5 = o.b5, b6 = o.b6, b7 = o.b7, b8 = o.b8, b9 = o.b9,
       score_sum_micros = o.score_sum_micros, score_n = o.n
  FROM score_offer_daily o
 WHERE s.tenant_id = o.tenant_id AND s.day = o.day AND s.offer_id = o.offer_id;

INSERT INTO selection_daily (tenant_id, day, offer_id, b0, b1, b2, b3, b4, b5, b6, b7, b8, b9,
                             score_sum_micros, score_n)
SELECT tenant_id, day, offer_id, b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, score_sum_micros, n
  FROM score_offer_daily
ON CONFLICT DO NOTHING;

DROP TABLE score_offer_daily;
