-- Dedup keys kept per event day, for the whole retention horizon (issue 13).
--
-- Before: one table of every key applied in the last DV_DEDUP_HORIZON_DAYS (7), keyed by a
-- random 16-byte hash, so every insert landed on a random leaf of one B-tree that outgrows
-- shared_buffers as the horizon lengthens (the largest single statement of a trace batch,
-- BENCHMARKS.md), and was deleted 10,000 rows a statement. An event resent after 7 days counted
-- twice although events up to 400 days old are accepted.
--
-- Now: one partition per UTC date of the events' own time, created by ingest when a batch
-- first needs it and dropped whole by the janitor once that date leaves the retention horizon
-- (DV_RETENTION_DAYS), when any copy of its events is refused as too old anyway. A stream in
-- event-time order inserts into the partitions of its last days, which stay in memory, and a
-- resent event is recognized as long as it can be accepted at all. A copy of an event whose
-- event time falls on another UTC date is taken as another event (docs/guarantees.md 3).
--
-- The text columns (topic, event_id) go: dedup_key() below computes the key from them, for
-- people and tests reading the table.

CREATE FUNCTION dedup_key(tenant_id text, topic int2, event_id text) RETURNS bytea
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    -- As ingest computes it (consumers/src/apply/dedup.rs) and migration 20261202000050 did.
    RETURN substring(sha256(convert_to(tenant_id, 'UTF8') || '\x00'::bytea || int2send(topic)
                            || '\x00'::bytea || convert_to(event_id, 'UTF8')) FROM 1 FOR 16);

-- The keys stored before keep recognizing their events: the table stays, renamed, and ingest
-- also looks there for events whose time is before `legacy_dedup_bound.probe_before` (no key
-- in it can belong to a later event: an event time is at most 1 hour ahead of its ingest).
-- The janitor deletes its keys past the retention horizon and then empties the bound.
ALTER TABLE dedup_keys RENAME TO legacy_dedup_keys;
ALTER INDEX dedup_keys_pkey RENAME TO legacy_dedup_keys_pkey;
ALTER INDEX dedup_keys_applied_at RENAME TO legacy_dedup_keys_applied_at;

CREATE TABLE legacy_dedup_bound (probe_before timestamptz NOT NULL);
INSERT INTO legacy_dedup_bound SELECT now() + interval '1 hour' WHERE EXISTS (SELECT 1 FROM legacy_dedup_keys);

CREATE TABLE dedup_keys (
    tenant_id text COLLATE "C" NOT NULL,
    day       date             NOT NULL,
    key       bytea            NOT NULL,
    PRIMARY KEY (tenant_id, day, key)
) PARTITION BY RANGE (day);
