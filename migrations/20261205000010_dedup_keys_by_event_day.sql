-- Dedup keys kept per event day (issue 13).
--
-- Before: one table of every key applied in the last DV_DEDUP_HORIZON_DAYS, keyed by a random
-- 16-byte hash, so every insert landed on a random leaf of one B-tree that outgrows
-- shared_buffers as the table grows (the largest single statement of a trace batch,
-- BENCHMARKS.md), and expired keys were deleted 10,000 rows a statement.
--
-- Now: one partition per UTC date of the events' own time, created by ingest when a batch
-- first needs it (consumers/src/apply/partitions.rs). A stream in event-time order inserts
-- into the partitions of its last days, which stay in memory however long the horizon, and
-- the janitor drops a partition whole once no key in it was applied within the horizon, or
-- once its date is past the retention horizon (no copy of its events can be accepted then).
-- A copy of an event whose event time falls on another UTC date is taken as another event
-- (docs/guarantees.md 3).
--
-- applied_at (BRIN: rows arrive in its order) is what the janitor checks before dropping a
-- day. The text columns (topic, event_id) go: dedup_key() below computes the key from them,
-- for people and tests reading the table.

CREATE FUNCTION dedup_key(tenant_id text, topic int2, event_id text) RETURNS bytea
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    -- As ingest computes it (consumers/src/apply/dedup.rs) and migration 20261202000050 did.
    RETURN substring(sha256(convert_to(tenant_id, 'UTF8') || '\x00'::bytea || int2send(topic)
                            || '\x00'::bytea || convert_to(event_id, 'UTF8')) FROM 1 FOR 16);

-- The keys stored before keep recognizing their events: the table stays, renamed, and ingest
-- also looks there for events whose time is before `legacy_dedup_bound.probe_before` (no key
-- in it can belong to a later event: an event time is at most 1 hour ahead of its ingest).
-- The janitor deletes its keys past the dedup horizon, as before, and then empties the bound.
ALTER TABLE dedup_keys RENAME TO legacy_dedup_keys;
ALTER INDEX dedup_keys_pkey RENAME TO legacy_dedup_keys_pkey;
ALTER INDEX dedup_keys_applied_at RENAME TO legacy_dedup_keys_applied_at;

CREATE TABLE legacy_dedup_bound (probe_before timestamptz NOT NULL);
INSERT INTO legacy_dedup_bound SELECT now() + interval '1 hour' WHERE EXISTS (SELECT 1 FROM legacy_dedup_keys);

CREATE TABLE dedup_keys (
    tenant_id  text COLLATE "C" NOT NULL,
    day        date             NOT NULL,
    key        bytea            NOT NULL,
    applied_at timestamptz      NOT NULL DEFAULT now(),
    -- The random key first: almost every comparison ends on it. With tenant_id first, every
    -- comparison went through the tenant's text and the day first, and an insert of 20,000
    -- keys into a partition of 1M cost 45 % more (BENCHMARKS.md). tenant_id stays in the key
    -- (a distributed engine needs the distribution column in every unique key), and day must
    -- be in it (a partitioned table's unique key holds its partition key).
    PRIMARY KEY (key, day, tenant_id)
) PARTITION BY RANGE (day);
CREATE INDEX dedup_keys_applied_at ON dedup_keys USING brin (applied_at);
