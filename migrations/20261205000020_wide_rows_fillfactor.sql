-- Room for HOT updates in the wide views (issue 13), as `20261202000030_counter_fillfactor`
-- gave the narrow counter views. Every trace batch rewrites the wide rows of the days it
-- touches (`apply::wide`), yet the two tables were created at fillfactor 100: a rewrite's new
-- version then lands on another page, inserts into the primary key and leaves a dead tuple
-- that only VACUUM reclaims. With room on its page the new version stays there (a heap-only
-- tuple) and the next access prunes the old one. A batch rewrites every row of a page at once
-- (all offers of a day), so a page needs room for all its rows' new versions: a
-- `beaten_by_offer_daily` row is ~0.6 KB and grows through its day, hence 30. Measured over a
-- 1M-trace fill (BENCHMARKS.md, "Write path, seventh pass"): HOT updates of
-- `beaten_by_offer_daily` 5 % at 100, 74 % at 50, 84 % at 30; its heap 467 → 274 MB.
-- Existing pages keep their rows as they are: the setting applies to pages filled from now on,
-- so no data moves.
ALTER TABLE selection_flow_daily SET (fillfactor = 50);
ALTER TABLE beaten_by_offer_daily SET (fillfactor = 30);
