-- attribution_summary.
-- Per day and attribution model: attribution events and their value (micro-units).
CREATE TABLE attribution_daily (
    tenant_id    text   NOT NULL,
    day          date   NOT NULL,
    model        text   NOT NULL,
    events       bigint NOT NULL DEFAULT 0,
    value_micros bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day, model)
);

-- Exact distinct conversions over any window [a, b]: a conversion counts once, at its first
-- date d inside the window, i.e. the date whose predecessor p (the conversion's previous date,
-- or 0001-01-01 when none) is before a. Ingest keeps, per (d, p), how many conversions have
-- date d preceded by p; a read sums rows with d in [a, b] and p < a: O(days x predecessors).
CREATE TABLE attribution_conversion_days (
    tenant_id     text NOT NULL,
    conversion_id text NOT NULL,
    day           date NOT NULL,
    PRIMARY KEY (tenant_id, conversion_id, day)
);

CREATE TABLE attribution_first_days (
    tenant_id   text   NOT NULL,
    day         date   NOT NULL,
    prev_day    date   NOT NULL,
    conversions bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day, prev_day)
);
