-- Running totals of the interaction counters (issue 14): a window's sums read two rows per key,
-- whatever its length.
--
-- The daily rollups make a read O(days x keys): a 90-day acceptance_rate reads 90 rows per
-- offer, offer_performance_grouped by channel 90 per (channel, offer), 10-70 ms at SPEC 7's
-- sizes. Here each (tenant, segment) chain keeps checkpoints: for every day it had
-- interactions, one row per key ever seen in the chain up to that day (dense), holding the
-- counters summed over all days up to and including it. The sums of a window [a, b] are the
-- row at the latest checkpoint <= b minus the row at the latest checkpoint < a (0 without
-- one): two rows per key, exact (integers and numeric, no rounding), for every window and
-- `asOf`.
--
--   running_total_days                (view, tenant, segment, day)  the checkpoints of each chain
--   interaction_offer_totals          (tenant, segment, day, offer)           from interaction_rollup_offer,
--                                                                             with the daily revenue's squares
--   interaction_offer_channel_totals  (tenant, segment, day, offer, channel)  from interaction_daily and
--                                                                             interaction_segment_daily
--
-- segment_id '' holds all customers, as in the rollups. Ingest maintains them in the batch
-- transaction: a batch's first event of a day in a chain copies the chain's latest earlier
-- checkpoint to that day, then every delta row is added to its day's checkpoint and to every
-- later one (a late event touches the checkpoints after it; a stream in time order touches
-- one). Nothing deletes rows: the view tables keep every day too (no retention on views).
CREATE TABLE running_total_days (
    view       text COLLATE "C" NOT NULL,
    tenant_id  text COLLATE "C" NOT NULL,
    segment_id text COLLATE "C" NOT NULL,
    day        date NOT NULL,
    PRIMARY KEY (view, tenant_id, segment_id, day)
);

CREATE TABLE interaction_offer_totals (
    tenant_id      text COLLATE "C" NOT NULL,
    segment_id     text COLLATE "C" NOT NULL,
    day            date    NOT NULL,
    offer_id       text COLLATE "C" NOT NULL,
    impressions    bigint  NOT NULL DEFAULT 0,
    clicks         bigint  NOT NULL DEFAULT 0,
    accepts        bigint  NOT NULL DEFAULT 0,
    converts       bigint  NOT NULL DEFAULT 0,
    rejects        bigint  NOT NULL DEFAULT 0,
    dismisses      bigint  NOT NULL DEFAULT 0,
    revenue_micros numeric NOT NULL DEFAULT 0,
    cost_micros    numeric NOT NULL DEFAULT 0,
    -- The sum over days of (that day's revenue_micros)^2: with revenue_micros, a window's
    -- mean and deviation of the daily revenue (anomaly_candidates' revenue z-score) without
    -- its daily series. Ingest adds new^2 - old^2 when a day's revenue changes.
    revenue_sq_micros numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, segment_id, day, offer_id)
) WITH (fillfactor = 60);

CREATE TABLE interaction_offer_channel_totals (
    tenant_id      text COLLATE "C" NOT NULL,
    segment_id     text COLLATE "C" NOT NULL,
    day            date    NOT NULL,
    offer_id       text COLLATE "C" NOT NULL,
    channel_id     text COLLATE "C" NOT NULL,
    impressions    bigint  NOT NULL DEFAULT 0,
    clicks         bigint  NOT NULL DEFAULT 0,
    accepts        bigint  NOT NULL DEFAULT 0,
    converts       bigint  NOT NULL DEFAULT 0,
    rejects        bigint  NOT NULL DEFAULT 0,
    dismisses      bigint  NOT NULL DEFAULT 0,
    revenue_micros numeric NOT NULL DEFAULT 0,
    cost_micros    numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, segment_id, day, offer_id, channel_id)
) WITH (fillfactor = 60);

-- Backfill from the daily tables, so an existing deployment's totals are exact from the start:
-- the checkpoints are the days with rows; each key gets a row at every checkpoint from its
-- first day on, holding its counters summed up to that day.
INSERT INTO running_total_days (view, tenant_id, segment_id, day)
SELECT DISTINCT 'interaction_offer_totals', tenant_id, segment_id, day FROM interaction_rollup_offer;

INSERT INTO interaction_offer_totals
SELECT k.tenant_id, k.segment_id, d.day, k.offer_id,
       (sum(COALESCE(r.impressions, 0)) OVER w)::int8, (sum(COALESCE(r.clicks, 0)) OVER w)::int8,
       (sum(COALESCE(r.accepts, 0)) OVER w)::int8, (sum(COALESCE(r.converts, 0)) OVER w)::int8,
       (sum(COALESCE(r.rejects, 0)) OVER w)::int8, (sum(COALESCE(r.dismisses, 0)) OVER w)::int8,
       sum(COALESCE(r.revenue_micros, 0)) OVER w, sum(COALESCE(r.cost_micros, 0)) OVER w,
       sum(COALESCE(r.revenue_micros * r.revenue_micros, 0)) OVER w
  FROM (SELECT tenant_id, segment_id, offer_id, min(day) AS first_day
          FROM interaction_rollup_offer GROUP BY tenant_id, segment_id, offer_id) k
  JOIN running_total_days d
    ON d.view = 'interaction_offer_totals' AND d.tenant_id = k.tenant_id AND d.segment_id = k.segment_id
   AND d.day >= k.first_day
  LEFT JOIN interaction_rollup_offer r
    ON r.tenant_id = k.tenant_id AND r.segment_id = k.segment_id AND r.day = d.day AND r.offer_id = k.offer_id
WINDOW w AS (PARTITION BY k.tenant_id, k.segment_id, k.offer_id ORDER BY d.day);

CREATE TEMPORARY TABLE offer_channel_base ON COMMIT DROP AS
SELECT tenant_id, ''::text COLLATE "C" AS segment_id, day, offer_id COLLATE "C" AS offer_id,
       channel_id COLLATE "C" AS channel_id, impressions, clicks, accepts, converts, rejects, dismisses,
       revenue_micros, cost_micros
  FROM interaction_daily
UNION ALL
SELECT tenant_id, segment_id, day, offer_id, channel_id, impressions, clicks, accepts, converts, rejects,
       dismisses, revenue_micros, cost_micros
  FROM interaction_segment_daily;

INSERT INTO running_total_days (view, tenant_id, segment_id, day)
SELECT DISTINCT 'interaction_offer_channel_totals', tenant_id, segment_id, day FROM offer_channel_base;

INSERT INTO interaction_offer_channel_totals
SELECT k.tenant_id, k.segment_id, d.day, k.offer_id, k.channel_id,
       (sum(COALESCE(r.impressions, 0)) OVER w)::int8, (sum(COALESCE(r.clicks, 0)) OVER w)::int8,
       (sum(COALESCE(r.accepts, 0)) OVER w)::int8, (sum(COALESCE(r.converts, 0)) OVER w)::int8,
       (sum(COALESCE(r.rejects, 0)) OVER w)::int8, (sum(COALESCE(r.dismisses, 0)) OVER w)::int8,
       sum(COALESCE(r.revenue_micros, 0)) OVER w, sum(COALESCE(r.cost_micros, 0)) OVER w
  FROM (SELECT tenant_id, segment_id, offer_id, channel_id, min(day) AS first_day
          FROM offer_channel_base GROUP BY tenant_id, segment_id, offer_id, channel_id) k
  JOIN running_total_days d
    ON d.view = 'interaction_offer_channel_totals' AND d.tenant_id = k.tenant_id
   AND d.segment_id = k.segment_id AND d.day >= k.first_day
  LEFT JOIN offer_channel_base r
    ON r.tenant_id = k.tenant_id AND r.segment_id = k.segment_id AND r.day = d.day
   AND r.offer_id = k.offer_id AND r.channel_id = k.channel_id
WINDOW w AS (PARTITION BY k.tenant_id, k.segment_id, k.offer_id, k.channel_id ORDER BY d.day);
