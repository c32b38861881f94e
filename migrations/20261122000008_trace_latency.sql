-- latency_trend: one HdrHistogram (3 significant digits, 1 ms .. 1 h) of totalDurationMs per
-- tenant and day, V2-serialized. Writers merge into it under the row lock (SELECT … FOR
-- UPDATE, add, write back), so several ingest processes can feed the same day; a read merges
-- one row per day of the window.
CREATE TABLE trace_latency_daily (
    tenant_id text  NOT NULL,
    day       date  NOT NULL,
    hist      bytea NOT NULL,
    PRIMARY KEY (tenant_id, day)
);
