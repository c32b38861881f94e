-- why_not_ranked: per offer and day, each miss (eligible, not selected) under the first rule
-- that holds (qualification failed, contact policy blocked, scored too low, not ranked), and
-- the offer's scoringResults score sum (micro-units) and count. Kept next to the selection
-- counters, so that one row per (day, offer) answers both types.
ALTER TABLE selection_daily
    ADD COLUMN miss_qualification bigint NOT NULL DEFAULT 0, ADD COLUMN miss_contact bigint NOT NULL DEFAULT 0,
    ADD COLUMN miss_too_low bigint NOT NULL DEFAULT 0, ADD COLUMN miss_not_ranked bigint NOT NULL DEFAULT 0,
    ADD COLUMN score_sum_micros bigint NOT NULL DEFAULT 0, ADD COLUMN score_n bigint NOT NULL DEFAULT 0;
ALTER TABLE selection_dims_daily
    ADD COLUMN miss_qualification bigint NOT NULL DEFAULT 0, ADD COLUMN miss_contact bigint NOT NULL DEFAULT 0,
    ADD COLUMN miss_too_low bigint NOT NULL DEFAULT 0, ADD COLUMN miss_not_ranked bigint NOT NULL DEFAULT 0,
    ADD COLUMN score_sum_micros bigint NOT NULL DEFAULT 0, ADD COLUMN score_n bigint NOT NULL DEFAULT 0;
ALTER TABLE selection_segment_daily
    ADD COLUMN miss_qualification bigint NOT NULL DEFAULT 0, ADD COLUMN miss_contact bigint NOT NULL DEFAULT 0,
    ADD COLUMN miss_too_low bigint NOT NULL DEFAULT 0, ADD COLUMN miss_not_ranked bigint NOT NULL DEFAULT 0,
    ADD COLUMN score_sum_micros bigint NOT NULL DEFAULT 0, ADD COLUMN score_n bigint NOT NULL DEFAULT 0;

-- Scored-too-low misses by the decision's winner (the selectedOffers entry with the lowest rank).
CREATE TABLE beaten_by_daily (
    tenant_id text   NOT NULL,
    day       date   NOT NULL,
    offer_id  text   NOT NULL,
    winner_id text   NOT NULL,
    count     bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day, offer_id, winner_id)
);

CREATE TABLE beaten_by_segment_daily (
    tenant_id  text   NOT NULL,
    segment_id text   NOT NULL,
    day        date   NOT NULL,
    offer_id   text   NOT NULL,
    winner_id  text   NOT NULL,
    count      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, segment_id, day, offer_id, winner_id)
);
