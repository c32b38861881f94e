-- policy_impact: suppressions active now, without scanning every suppression ever made.
-- `counted`: the suppression is in suppression_active_counts (created, not lifted, not yet
-- swept as expired). Ingest keeps the counters in step with each create/lift; the janitor
-- sweeps expired ones out; a read subtracts the expired-but-not-yet-swept rows, found through
-- the partial index below, so the answer is exact at any moment.
ALTER TABLE suppressions ADD COLUMN counted boolean NOT NULL DEFAULT false;
CREATE INDEX suppressions_counted_expiry ON suppressions (tenant_id, expires_at) WHERE counted;

CREATE TABLE suppression_active_counts (
    tenant_id   text   NOT NULL,
    policy_type text   NOT NULL,
    active      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, policy_type)
);
