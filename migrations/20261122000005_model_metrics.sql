-- model_metrics_trend. AUC is summed as integer micro-units: the daily mean is exact and does
-- not depend on the order evaluations arrive in.
CREATE TABLE model_eval_daily (
    tenant_id  text   NOT NULL,
    day        date   NOT NULL,
    model_id   text   NOT NULL,
    auc_micros bigint NOT NULL DEFAULT 0,
    evals      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day, model_id)
);

-- The latest evaluation of each model (by evaluatedAt, then event id).
CREATE TABLE model_latest (
    tenant_id          text        NOT NULL,
    model_id           text        NOT NULL,
    model_name         text        NOT NULL,
    evaluated_at       timestamptz NOT NULL,
    event_id           text        NOT NULL,
    feature_importance jsonb       NOT NULL,
    PRIMARY KEY (tenant_id, model_id)
);
