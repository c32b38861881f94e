-- Running totals of the wide selection rows (issue 14): selection_frequency with channelId or
-- decisionFlowId read one wide row per (day, channel, flow) of its window, every candidate
-- offer's 15 counters in each (450 rows at 1M traces over 90 days, 17-22 ms p99). Here, as
-- `running_totals` does for the interaction counters, the tenant's chain (segment '') keeps
-- checkpoints: at every day with traces, one row per (channel, flow) ever seen up to that day
-- (dense), its value holding every offer's counters summed over all days up to and including
-- it. A window reads two rows per (channel, flow): the checkpoint at its last day minus the one
-- before its first day, whatever its length.
--
-- selection_flow_daily had no other reader, and writing both would write each row twice per
-- batch, so it is replaced: its rows are summed into the checkpoints here and it is dropped.
-- The values keep the wide encoding (consumers/src/units/wide.rs); the backfill writes the
-- fixed one (int2send / int8send, as `wide_selection_rows` did), which ingest reads as it is
-- and rewrites compact the next time a batch merges into the row.
CREATE TABLE selection_flow_totals (
    tenant_id        text COLLATE "C" NOT NULL,
    day              date             NOT NULL,
    channel_id       text COLLATE "C" NOT NULL,
    decision_flow_id text COLLATE "C" NOT NULL,
    offers           bytea COMPRESSION lz4 NOT NULL,
    PRIMARY KEY (tenant_id, day, channel_id, decision_flow_id)
) WITH (fillfactor = 50);

-- The entries of a stored value, either encoding: compact (first byte 0xFF, then per entry a
-- LEB128 id length, the id, 15 zigzag LEB128 counters) or fixed (per entry an int2 BE id
-- length, the id, 15 int8 BE counters). Only for this backfill: dropped below.
CREATE FUNCTION dv_wide_selection_entries(value bytea)
RETURNS TABLE (offer_id text, c int8[])
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    compact boolean := length(value) > 0 AND get_byte(value, 0) = 255;
    at int := CASE WHEN length(value) > 0 AND get_byte(value, 0) = 255 THEN 1 ELSE 0 END;
    len int;
    b int;
    z numeric;
    shift int;
    counters int8[];
BEGIN
    WHILE at < length(value) LOOP
        IF compact THEN
            len := 0;
            shift := 0;
            LOOP
                b := get_byte(value, at);
                at := at + 1;
                len := len + ((b & 127) << shift);
                EXIT WHEN b < 128;
                shift := shift + 7;
            END LOOP;
        ELSE
            len := (get_byte(value, at) << 8) | get_byte(value, at + 1);
            at := at + 2;
        END IF;
        offer_id := convert_from(substring(value FROM at + 1 FOR len), 'UTF8');
        at := at + len;
        counters := '{}';
        FOR i IN 1..15 LOOP
            IF compact THEN
                z := 0;
                shift := 0;
                LOOP
                    b := get_byte(value, at);
                    at := at + 1;
                    z := z + (b & 127) * (2::numeric ^ shift);
                    EXIT WHEN b < 128;
                    shift := shift + 7;
                END LOOP;
                -- zigzag: 0, 1, 2, 3, ... <-> 0, -1, 1, -2, ...
                counters := counters || (CASE WHEN z % 2 = 0 THEN z / 2 ELSE -(z + 1) / 2 END)::int8;
            ELSE
                counters := counters || ('x' || encode(substring(value FROM at + 1 FOR 8), 'hex'))::bit(64)::int8;
                at := at + 8;
            END IF;
        END LOOP;
        c := counters;
        RETURN NEXT;
    END LOOP;
END
$$;

INSERT INTO running_total_days (view, tenant_id, segment_id, day)
SELECT DISTINCT 'selection_flow_totals', tenant_id, '', day FROM selection_flow_daily
ON CONFLICT DO NOTHING;

CREATE TEMPORARY TABLE selection_flow_entries ON COMMIT DROP AS
SELECT f.tenant_id, f.day, f.channel_id, f.decision_flow_id, e.offer_id COLLATE "C" AS offer_id, e.c
  FROM selection_flow_daily f, dv_wide_selection_entries(f.offers) e;

-- Each (channel, flow, offer) at every checkpoint from its first day on, its counters summed
-- up to that day; then one value per (day, channel, flow), entries in id byte order.
WITH keys AS (
    SELECT tenant_id, channel_id, decision_flow_id, offer_id, min(day) AS first_day
      FROM selection_flow_entries
     GROUP BY tenant_id, channel_id, decision_flow_id, offer_id),
running AS (
    SELECT k.tenant_id, d.day, k.channel_id, k.decision_flow_id, k.offer_id,
           sum(COALESCE(r.c[1], 0)) OVER w AS c1, sum(COALESCE(r.c[2], 0)) OVER w AS c2,
           sum(COALESCE(r.c[3], 0)) OVER w AS c3, sum(COALESCE(r.c[4], 0)) OVER w AS c4,
           sum(COALESCE(r.c[5], 0)) OVER w AS c5, sum(COALESCE(r.c[6], 0)) OVER w AS c6,
           sum(COALESCE(r.c[7], 0)) OVER w AS c7, sum(COALESCE(r.c[8], 0)) OVER w AS c8,
           sum(COALESCE(r.c[9], 0)) OVER w AS c9, sum(COALESCE(r.c[10], 0)) OVER w AS c10,
           sum(COALESCE(r.c[11], 0)) OVER w AS c11, sum(COALESCE(r.c[12], 0)) OVER w AS c12,
           sum(COALESCE(r.c[13], 0)) OVER w AS c13, sum(COALESCE(r.c[14], 0)) OVER w AS c14,
           sum(COALESCE(r.c[15], 0)) OVER w AS c15
      FROM keys k
      JOIN running_total_days d
        ON d.view = 'selection_flow_totals' AND d.tenant_id = k.tenant_id AND d.segment_id = ''
       AND d.day >= k.first_day
      LEFT JOIN selection_flow_entries r
        ON r.tenant_id = k.tenant_id AND r.day = d.day AND r.channel_id = k.channel_id
       AND r.decision_flow_id = k.decision_flow_id AND r.offer_id = k.offer_id
    WINDOW w AS (PARTITION BY k.tenant_id, k.channel_id, k.decision_flow_id, k.offer_id ORDER BY d.day))
INSERT INTO selection_flow_totals (tenant_id, day, channel_id, decision_flow_id, offers)
SELECT tenant_id, day, channel_id, decision_flow_id,
       string_agg(int2send(octet_length(offer_id)::int2) || convert_to(offer_id, 'UTF8')
                  || int8send(c1::int8) || int8send(c2::int8) || int8send(c3::int8) || int8send(c4::int8)
                  || int8send(c5::int8) || int8send(c6::int8) || int8send(c7::int8) || int8send(c8::int8)
                  || int8send(c9::int8) || int8send(c10::int8) || int8send(c11::int8) || int8send(c12::int8)
                  || int8send(c13::int8) || int8send(c14::int8) || int8send(c15::int8),
                  ''::bytea ORDER BY offer_id)
  FROM running
 GROUP BY tenant_id, day, channel_id, decision_flow_id;

DROP FUNCTION dv_wide_selection_entries(bytea);
DROP TABLE selection_flow_daily;
