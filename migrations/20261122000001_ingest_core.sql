-- Ingest bookkeeping: consumed offsets, dedup keys, dead letters. All three are written in the
-- same transaction as the view deltas of a batch (exactly-once, SPEC 3).

-- PostgreSQL is the only source of truth for consumed offsets. `next_offset` is the offset of
-- the next message to read; a batch commits only if the row still holds the value the batch
-- started from (compare-and-set), which fences a zombie consumer after a rebalance.
CREATE TABLE consumer_offsets (
    topic                text        NOT NULL,
    partition            integer     NOT NULL,
    next_offset          bigint      NOT NULL,
    -- Largest event time applied from this partition (freshness of the views).
    event_time_watermark timestamptz,
    last_commit_at       timestamptz NOT NULL DEFAULT now(),
    -- The ingest instance that made the last commit (who owns the partition, for operators).
    owner                text,
    PRIMARY KEY (topic, partition)
);

-- (tenant, topic, id) of every applied event within the dedup horizon (SPEC 3, default 7 days).
-- `topic` is a small code, not the name: this is the hottest index of ingest.
CREATE TABLE dedup_keys (
    tenant_id  text        NOT NULL,
    topic      smallint    NOT NULL,
    event_id   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, topic, event_id)
);
-- Rows arrive in applied_at order, so a BRIN index makes the retention delete cheap and costs
-- next to nothing on insert.
CREATE INDEX dedup_keys_applied_at ON dedup_keys USING brin (applied_at);

-- Bad input (SPEC 2.8), with its raw bytes. tenant_id is '' when it could not be read.
CREATE TABLE dead_letters (
    tenant_id   text        NOT NULL,
    id          bigserial   NOT NULL,
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    "offset"    bigint      NOT NULL,
    key         bytea,
    payload     bytea,
    reason      text        NOT NULL,
    detail      text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, topic, partition, "offset")
);
CREATE INDEX dead_letters_topic_reason ON dead_letters (tenant_id, topic, reason, id);

-- Dead letters per topic (all time), kept as a counter so the status endpoint never scans.
CREATE TABLE dead_letter_counts (
    tenant_id text   NOT NULL,
    topic     text   NOT NULL,
    reason    text   NOT NULL,
    count     bigint NOT NULL,
    PRIMARY KEY (tenant_id, topic, reason)
);

-- API keys: only a SHA-256 of the key is stored (keys are 32 random bytes, so a slow hash
-- adds nothing). A system table looked up by hash; on Citus it would be a reference table.
CREATE TABLE api_keys (
    key_hash   bytea       PRIMARY KEY,
    tenant_id  text        NOT NULL,
    role       text        NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
    name       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
