-- selection_frequency (and later why_not_ranked's rank figures): per offer and day, how often
-- it was a candidate of a trace (eligible), scored, selected, its rank sum and count, and the
-- counts of ranks 1..10. Three tables, so that every filter combination reads O(days x offers)
-- rows: no filter -> selection_daily; channel and/or flow -> selection_dims_daily; segment
-- (with or without channel/flow) -> selection_segment_daily.
CREATE TABLE selection_daily (
    tenant_id text   NOT NULL,
    day       date   NOT NULL,
    offer_id  text   NOT NULL,
    eligible  bigint NOT NULL DEFAULT 0,
    scored    bigint NOT NULL DEFAULT 0,
    selected  bigint NOT NULL DEFAULT 0,
    rank_sum  bigint NOT NULL DEFAULT 0,
    rank_n    bigint NOT NULL DEFAULT 0,
    r1 bigint NOT NULL DEFAULT 0, r2 bigint NOT NULL DEFAULT 0, r3 bigint NOT NULL DEFAULT 0,
    r4 bigint NOT NULL DEFAULT 0, r5 bigint NOT NULL DEFAULT 0, r6 bigint NOT NULL DEFAULT 0,
    r7 bigint NOT NULL DEFAULT 0, r8 bigint NOT NULL DEFAULT 0, r9 bigint NOT NULL DEFAULT 0,
    r10 bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day, offer_id)
);

CREATE TABLE selection_dims_daily (LIKE selection_daily INCLUDING DEFAULTS);
ALTER TABLE selection_dims_daily
    ADD COLUMN channel_id text NOT NULL DEFAULT '',
    ADD COLUMN decision_flow_id text NOT NULL DEFAULT '',
    ADD PRIMARY KEY (tenant_id, day, channel_id, decision_flow_id, offer_id);

CREATE TABLE selection_segment_daily (LIKE selection_dims_daily INCLUDING DEFAULTS);
ALTER TABLE selection_segment_daily
    ADD COLUMN segment_id text NOT NULL DEFAULT '',
    ADD PRIMARY KEY (tenant_id, segment_id, day, channel_id, decision_flow_id, offer_id);

-- Traces per segment (memberships at processing time), for totalTraces with a segment filter.
CREATE TABLE trace_segment_daily (
    tenant_id        text   NOT NULL,
    segment_id       text   NOT NULL,
    day              date   NOT NULL,
    channel_id       text   NOT NULL,
    decision_flow_id text   NOT NULL,
    traces           bigint NOT NULL DEFAULT 0,
    degraded         bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, segment_id, day, channel_id, decision_flow_id)
);
