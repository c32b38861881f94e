-- Rollups of the interaction counters at the grain each dashboard read groups by, so that a
-- window read touches O(days) or O(days x offers) rows instead of every (day, offer, channel):
-- SPEC 7 wants reads flat as traffic grows, and at 1M traces over 90 days interaction_daily
-- holds ~108k rows per tenant for a 90-day window.
--
--   interaction_rollup_day      (tenant, segment, day)           daily_trend, revenue_trend, anomalies (overall)
--   interaction_rollup_offer    (tenant, segment, day, offer)    acceptance_rate, offer_performance,
--                                                                offer_performance_grouped by category/segment,
--                                                                anomalies per offer
--   interaction_rollup_channel  (tenant, segment, day, channel)  channel_effectiveness, anomalies per channel
--
-- segment_id '' holds all customers (segment ids are non-empty: the decoder rejects empty
-- ones); any other value is that segment's customers (memberships at processing time, as in
-- interaction_segment_daily). Ingest maintains them in the batch transaction, beside the base
-- tables, which stay the source for the (offer, channel) grain.
CREATE TABLE interaction_rollup_day (
    tenant_id      text COLLATE "C" NOT NULL,
    segment_id     text COLLATE "C" NOT NULL,
    day            date   NOT NULL,
    impressions    bigint NOT NULL DEFAULT 0,
    clicks         bigint NOT NULL DEFAULT 0,
    accepts        bigint NOT NULL DEFAULT 0,
    converts       bigint NOT NULL DEFAULT 0,
    rejects        bigint NOT NULL DEFAULT 0,
    dismisses      bigint NOT NULL DEFAULT 0,
    revenue_micros bigint NOT NULL DEFAULT 0,
    cost_micros    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, segment_id, day)
);

CREATE TABLE interaction_rollup_offer (LIKE interaction_rollup_day INCLUDING DEFAULTS);
ALTER TABLE interaction_rollup_offer
    ADD COLUMN offer_id text COLLATE "C" NOT NULL,
    ADD PRIMARY KEY (tenant_id, segment_id, day, offer_id);

CREATE TABLE interaction_rollup_channel (LIKE interaction_rollup_day INCLUDING DEFAULTS);
ALTER TABLE interaction_rollup_channel
    ADD COLUMN channel_id text COLLATE "C" NOT NULL,
    ADD PRIMARY KEY (tenant_id, segment_id, day, channel_id);

-- Backfill from the base tables, so an existing deployment's rollups are exact from the start.
WITH base AS (
    SELECT '' AS segment_id, * FROM interaction_daily
    UNION ALL
    SELECT segment_id, tenant_id, day, offer_id, channel_id, impressions, clicks, accepts, converts, rejects,
           dismisses, revenue_micros, cost_micros
      FROM interaction_segment_daily
), by_day AS (
    INSERT INTO interaction_rollup_day
    SELECT tenant_id, segment_id, day, sum(impressions), sum(clicks), sum(accepts), sum(converts), sum(rejects),
           sum(dismisses), sum(revenue_micros), sum(cost_micros)
      FROM base GROUP BY tenant_id, segment_id, day
), by_offer AS (
    INSERT INTO interaction_rollup_offer
    SELECT tenant_id, segment_id, day, sum(impressions), sum(clicks), sum(accepts), sum(converts), sum(rejects),
           sum(dismisses), sum(revenue_micros), sum(cost_micros), offer_id
      FROM base GROUP BY tenant_id, segment_id, day, offer_id
)
INSERT INTO interaction_rollup_channel
SELECT tenant_id, segment_id, day, sum(impressions), sum(clicks), sum(accepts), sum(converts), sum(rejects),
       sum(dismisses), sum(revenue_micros), sum(cost_micros), channel_id
  FROM base GROUP BY tenant_id, segment_id, day, channel_id;
