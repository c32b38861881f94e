-- Raw decision traces stored as the published bytes, zstd-compressed by ingest (issue 13): a
-- jsonb body cost PostgreSQL a JSON parse and a pglz compression per trace, a quarter of a
-- trace batch's commit (0.75 s of ~3 s for 2,500 traces, measured here). The API decompresses.
-- Rows stored before keep their jsonb body and are read as they are: a row has one of the two.
ALTER TABLE decision_traces ALTER COLUMN body DROP NOT NULL;
ALTER TABLE decision_traces ADD COLUMN body_zstd bytea;
-- Already compressed: never again by pglz; out of line only past the TOAST threshold.
ALTER TABLE decision_traces ALTER COLUMN body_zstd SET STORAGE EXTERNAL;
ALTER TABLE decision_traces
    ADD CONSTRAINT decision_traces_one_body CHECK ((body IS NULL) <> (body_zstd IS NULL));
