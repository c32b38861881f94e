-- Raw decision traces for the traces API, stored only when the tenant's settings sample them
-- in (SPEC 3). Partitioned by the trace's UTC date: retention drops whole partitions, so it
-- costs nothing on the hot path. Partitions are created by ingest on first use.
CREATE TABLE decision_traces (
    tenant_id   text        NOT NULL,
    day         date        NOT NULL,
    id          text        NOT NULL,
    customer_id text        NOT NULL,
    request_id  text        NOT NULL,
    created_at  timestamptz NOT NULL,
    body        jsonb       NOT NULL,
    PRIMARY KEY (tenant_id, day, id)
) PARTITION BY RANGE (day);
CREATE INDEX decision_traces_by_id ON decision_traces (tenant_id, id);
CREATE INDEX decision_traces_newest ON decision_traces (tenant_id, created_at DESC, id DESC);
CREATE INDEX decision_traces_customer ON decision_traces (tenant_id, customer_id, created_at DESC);
CREATE INDEX decision_traces_request ON decision_traces (tenant_id, request_id);
