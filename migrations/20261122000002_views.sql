-- The materialized views read by the dashboard API. Every key starts with tenant_id (Citus
-- distribution column) and then the day, so a window read is an index range scan touching
-- O(days x keys) rows whatever the traffic.

-- Interaction counters per UTC day of event time, offer and channel. One column per outcome;
-- money in micro-units (exact, order-independent sums).
CREATE TABLE interaction_daily (
    tenant_id      text   NOT NULL,
    day            date   NOT NULL,
    offer_id       text   NOT NULL,
    channel_id     text   NOT NULL,
    impressions    bigint NOT NULL DEFAULT 0,
    clicks         bigint NOT NULL DEFAULT 0,
    accepts        bigint NOT NULL DEFAULT 0,
    converts       bigint NOT NULL DEFAULT 0,
    rejects        bigint NOT NULL DEFAULT 0,
    dismisses      bigint NOT NULL DEFAULT 0,
    revenue_micros bigint NOT NULL DEFAULT 0,
    cost_micros    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day, offer_id, channel_id)
);

-- The same counters for customers in a segment, with memberships at processing time.
CREATE TABLE interaction_segment_daily (
    tenant_id      text   NOT NULL,
    segment_id     text   NOT NULL,
    day            date   NOT NULL,
    offer_id       text   NOT NULL,
    channel_id     text   NOT NULL,
    impressions    bigint NOT NULL DEFAULT 0,
    clicks         bigint NOT NULL DEFAULT 0,
    accepts        bigint NOT NULL DEFAULT 0,
    converts       bigint NOT NULL DEFAULT 0,
    rejects        bigint NOT NULL DEFAULT 0,
    dismisses      bigint NOT NULL DEFAULT 0,
    revenue_micros bigint NOT NULL DEFAULT 0,
    cost_micros    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, segment_id, day, offer_id, channel_id)
);

-- Decision trace counters per day, channel and decision flow ('' when the trace has none).
CREATE TABLE trace_daily (
    tenant_id        text   NOT NULL,
    day              date   NOT NULL,
    channel_id       text   NOT NULL,
    decision_flow_id text   NOT NULL,
    traces           bigint NOT NULL DEFAULT 0,
    degraded         bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day, channel_id, decision_flow_id)
);

-- Current state of every catalog entity. Deletes keep a tombstone so that an older change
-- arriving late cannot resurrect the entity (versions only move forward).
CREATE TABLE catalog_entities (
    tenant_id               text        NOT NULL,
    entity                  text        NOT NULL,
    entity_id               text        NOT NULL,
    version                 bigint,
    deleted                 boolean     NOT NULL DEFAULT false,
    name                    text,
    status                  text,
    priority                bigint,
    category_id             text,
    budget_allocated_micros bigint,
    offer_id                text,
    data                    jsonb,
    updated_at              timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, entity, entity_id)
);

-- Segment membership now. The hot lookup is "segments of these customers", hence the key order.
CREATE TABLE segment_members (
    tenant_id   text NOT NULL,
    customer_id text NOT NULL,
    segment_id  text NOT NULL,
    PRIMARY KEY (tenant_id, customer_id, segment_id)
);

-- A segment is materialized once one membership event for it has been processed (SPEC 2.4).
CREATE TABLE segments_materialized (
    tenant_id     text        NOT NULL,
    segment_id    text        NOT NULL,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, segment_id)
);

-- Suppressions by id; a lift is sticky and a create fills the fields whatever the order.
CREATE TABLE suppressions (
    tenant_id      text        NOT NULL,
    suppression_id text        NOT NULL,
    customer_id    text,
    offer_id       text,
    channel_id     text,
    policy_id      text,
    policy_type    text,
    created_at     timestamptz,
    expires_at     timestamptz,
    lifted         boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, suppression_id)
);
