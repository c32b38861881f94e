-- Room for HOT updates in the counter views (issue 13). Every batch adds to rows written by
-- the batches before it (today's rows, again and again): with full pages (fillfactor 100) the
-- new version of a row lands on another page, so each update also inserts into every index
-- and leaves the old page with a dead tuple that only VACUUM reclaims. With 40 % of each page
-- free, the new version stays on its page (a heap-only tuple, no index write) and the next
-- access prunes the old one. Measured here on an upsert of 30,000 rows of the selection shape,
-- one transaction per batch as ingest runs them: 0.95 s per update batch at fillfactor 100,
-- 0.50 s at 60 (91 % of updates HOT), 0.62 s at 70, 0.68 s at 80; after six batches the
-- table was 5,291 pages at 100 and 2,142 at 60 (no autovacuum on this machine).
-- Existing pages keep their rows as they are: the setting applies to pages filled from now on.
ALTER TABLE trace_daily SET (fillfactor = 60);
ALTER TABLE trace_segment_daily SET (fillfactor = 60);
ALTER TABLE selection_daily SET (fillfactor = 60);
ALTER TABLE selection_dims_daily SET (fillfactor = 60);
ALTER TABLE selection_segment_daily SET (fillfactor = 60);
ALTER TABLE beaten_by_daily SET (fillfactor = 60);
ALTER TABLE beaten_by_segment_daily SET (fillfactor = 60);
ALTER TABLE score_daily SET (fillfactor = 60);
ALTER TABLE score_channel_daily SET (fillfactor = 60);
ALTER TABLE score_offer_daily SET (fillfactor = 60);
ALTER TABLE interaction_daily SET (fillfactor = 60);
ALTER TABLE interaction_segment_daily SET (fillfactor = 60);
ALTER TABLE interaction_rollup_day SET (fillfactor = 60);
ALTER TABLE interaction_rollup_offer SET (fillfactor = 60);
ALTER TABLE interaction_rollup_channel SET (fillfactor = 60);
ALTER TABLE offer_spend SET (fillfactor = 60);
ALTER TABLE attribution_daily SET (fillfactor = 60);
ALTER TABLE model_eval_daily SET (fillfactor = 60);
ALTER TABLE trace_latency_daily SET (fillfactor = 60);
ALTER TABLE consumer_offsets SET (fillfactor = 50);
