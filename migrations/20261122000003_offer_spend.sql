-- All-time spend per offer (budget_burn): Σ cost of every interaction of the offer, whatever
-- its date. Kept as its own counter so a read is one row per offer, not a sum over all days.
CREATE TABLE offer_spend (
    tenant_id   text   NOT NULL,
    offer_id    text   NOT NULL,
    cost_micros bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, offer_id)
);
