-- Where each stored raw trace is, by id (issue 12). `decision_traces` is partitioned by day and
-- its id index is per partition, so "does the tenant have trace X" probed every daily
-- partition: ~0.9 ms of PostgreSQL per SHAP request on the bench's database (BENCHMARKS.md,
-- "SHAP latency", third pass), growing with the retention horizon. This table answers it with
-- one index probe. Ingest writes it in the transaction that stores the trace; the janitor
-- deletes a day's rows before it drops that day's partition. Not partitioned: a partitioned
-- table would bring the per-partition probes back. Existing traces carry over.
CREATE TABLE decision_trace_ids (
    tenant_id text COLLATE "C" NOT NULL,
    id        text COLLATE "C" NOT NULL,
    day       date NOT NULL,
    PRIMARY KEY (tenant_id, id, day)
);
CREATE INDEX decision_trace_ids_day ON decision_trace_ids (day);
INSERT INTO decision_trace_ids (tenant_id, id, day)
SELECT tenant_id, id, day FROM decision_traces
ON CONFLICT DO NOTHING;
