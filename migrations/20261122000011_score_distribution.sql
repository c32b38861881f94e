-- score_distribution: scoringResults entries per score bucket (min(floor(clamp(score) x 10), 9))
-- as ten columns, with the raw score sum (micro-units) and count for averages. Per day (data
-- without filter), per day and channel, per day and offer (groupBy/filterId channel, offer,
-- category via the catalog): a read is O(days x dimension values) rows.
CREATE TABLE score_daily (
    tenant_id        text   NOT NULL,
    day              date   NOT NULL,
    b0 bigint NOT NULL DEFAULT 0, b1 bigint NOT NULL DEFAULT 0, b2 bigint NOT NULL DEFAULT 0,
    b3 bigint NOT NULL DEFAULT 0, b4 bigint NOT NULL DEFAULT 0, b5 bigint NOT NULL DEFAULT 0,
    b6 bigint NOT NULL DEFAULT 0, b7 bigint NOT NULL DEFAULT 0, b8 bigint NOT NULL DEFAULT 0,
    b9 bigint NOT NULL DEFAULT 0,
    score_sum_micros bigint NOT NULL DEFAULT 0,
    n                bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day)
);
CREATE TABLE score_channel_daily (LIKE score_daily INCLUDING DEFAULTS);
ALTER TABLE score_channel_daily ADD COLUMN channel_id text NOT NULL DEFAULT '',
    ADD PRIMARY KEY (tenant_id, day, channel_id);
CREATE TABLE score_offer_daily (LIKE score_daily INCLUDING DEFAULTS);
ALTER TABLE score_offer_daily ADD COLUMN offer_id text NOT NULL DEFAULT '',
    ADD PRIMARY KEY (tenant_id, day, offer_id);
