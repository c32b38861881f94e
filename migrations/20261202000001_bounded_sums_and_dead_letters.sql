-- Money sums become numeric (issue 10, SPEC 2.8: no counter may overflow within the retention
-- horizon). A bigint of micro-units holds 9.2 × 10^12 currency units: ten interactions at the
-- largest accepted amount (10^12) overflowed it, and at SPEC 7's rate no per-event amount that
-- is useful as money keeps a day's row inside it. numeric holds any sum exactly; the columns
-- keep their micro-unit scale, so every stored value carries over unchanged.
ALTER TABLE interaction_daily
    ALTER COLUMN revenue_micros TYPE numeric, ALTER COLUMN cost_micros TYPE numeric;
ALTER TABLE interaction_segment_daily
    ALTER COLUMN revenue_micros TYPE numeric, ALTER COLUMN cost_micros TYPE numeric;
ALTER TABLE interaction_rollup_day
    ALTER COLUMN revenue_micros TYPE numeric, ALTER COLUMN cost_micros TYPE numeric;
ALTER TABLE interaction_rollup_offer
    ALTER COLUMN revenue_micros TYPE numeric, ALTER COLUMN cost_micros TYPE numeric;
ALTER TABLE interaction_rollup_channel
    ALTER COLUMN revenue_micros TYPE numeric, ALTER COLUMN cost_micros TYPE numeric;
-- All-time spend per offer: no horizon at all.
ALTER TABLE offer_spend ALTER COLUMN cost_micros TYPE numeric;
ALTER TABLE attribution_daily ALTER COLUMN value_micros TYPE numeric;

-- Dead letters (SPEC 2.8): a range of offsets the Kafka client could not deliver is one row
-- (`offset` .. `last_offset`); a payload may be cut to its first 64 KiB, so its size and
-- SHA-256 are kept. Existing rows are single whole messages.
ALTER TABLE dead_letters
    ADD COLUMN last_offset bigint,
    ADD COLUMN payload_size bigint,
    ADD COLUMN payload_sha256 bytea;
UPDATE dead_letters
   SET last_offset = "offset",
       payload_size = octet_length(payload),
       payload_sha256 = CASE WHEN payload IS NULL THEN NULL ELSE sha256(payload) END;
ALTER TABLE dead_letters ALTER COLUMN last_offset SET NOT NULL;
-- The janitor deletes dead letters past DV_DEAD_LETTER_RETENTION_DAYS by time.
CREATE INDEX dead_letters_received_at ON dead_letters (received_at);
