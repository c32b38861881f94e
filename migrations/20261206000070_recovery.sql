-- Recovery (issue 17).
--
-- Dead-letter replay: a replayed dead letter stays (an audit of what was refused and what was
-- done about it), marked with when and how its last replay ended: `applied` (its events are in
-- the views now, or were already: a duplicate) or `rejected` (refused again; `replay_detail`
-- says why). Only letters not applied are replayed again.
ALTER TABLE dead_letters
    ADD COLUMN replayed_at    timestamptz,
    ADD COLUMN replay_outcome text CHECK (replay_outcome IN ('applied', 'rejected')),
    ADD COLUMN replay_detail  text;

-- Rebuilds: one row per `decision-views rebuild` (a system table, like consumer_offsets: no
-- tenant; a reference table on a distributed engine), its progress written about once a second by
-- the rebuilding process and read by GET /api/v1/ingest/status. Not rebuilt itself (nor are
-- api_keys and audit_log): a rebuild replaces only what the Kafka log determines.
CREATE TABLE rebuilds (
    id                bigserial   PRIMARY KEY,
    -- The schema the views are built in while live ingest keeps serving the current ones.
    schema_name       text        NOT NULL,
    -- building → swapping → done; failed (with detail) or abandoned (superseded, resumed).
    state             text        NOT NULL CHECK (state IN ('building', 'swapping', 'done', 'failed', 'abandoned')),
    started_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz,
    -- Messages applied to the shadow views so far, and still to apply to reach the log's end.
    applied           bigint      NOT NULL DEFAULT 0,
    remaining         bigint,
    events_per_second double precision,
    eta_seconds       double precision,
    -- [{topic, partition, position, end}]: where the rebuild stands in each partition.
    partitions        jsonb       NOT NULL DEFAULT '[]',
    detail            text
);

-- Changes to the views that move no offset (a replayed dead letter, a rebuild's swap) bump
-- this in their transaction. The API's data version, which keys its response cache, is the
-- offsets' sum plus this: both only grow, and every change to the views grows one of them.
-- Kept by a rebuild.
CREATE TABLE view_generation (
    one        boolean PRIMARY KEY DEFAULT true CHECK (one),
    generation bigint  NOT NULL
);
INSERT INTO view_generation VALUES (true, 0);
