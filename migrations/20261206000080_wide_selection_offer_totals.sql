-- selection_offer_totals as one wide row per checkpoint (issue 13: the write path; issue 14).
--
-- selection_offer_totals held one row per (tenant, segment, day, offer) at every checkpoint of
-- a chain, each offer's selection counters and score buckets summed up to that day. A batch
-- added each offer it saw to its day's checkpoint and every later one: the largest statement
-- of a trace batch end to end (31.5 ms a call, 87,187 rows written for 30,000 traces; without
-- it the processor ceiling rose 35-59 %, BENCHMARKS.md "Write path, ninth pass"). A read with a
-- segment read two rows per offer the segment ever saw, a number that grows with the data.
--
-- Here each checkpoint of a chain (segment '' for all customers, then each segment) is one row
-- whose value holds every offer's counters up to that day, in the wide encoding
-- (consumers/src/units/wide.rs), as selection_flow_totals and interaction_segment_totals do: a
-- batch rewrites one row per (chain, checkpoint) it reaches, and a window reads two rows per
-- chain. The checkpoints stay the ones `running_total_days` lists, under this table's name.
--
-- An entry's 33 counters (consumers/src/units/wide/offer_selection.rs): eligible, scored,
-- selected, rank_sum, rank_n, r1-r10, miss_qualification, miss_contact, miss_too_low,
-- miss_not_ranked; the score sum in micro-units as three int8 limbs a·2^64 + b·2^32 + c (b and
-- c in [0, 2^32) as written here), which add as the sum does, so the running sum stays
-- unbounded as the numeric column was; score_n; the buckets b0-b9 (zero in a segment's chain).
CREATE TABLE selection_chain_totals (
    tenant_id  text COLLATE "C" NOT NULL,
    segment_id text COLLATE "C" NOT NULL,
    day        date             NOT NULL,
    offers     bytea COMPRESSION lz4 NOT NULL,
    PRIMARY KEY (tenant_id, segment_id, day)
) WITH (fillfactor = 50);

INSERT INTO running_total_days (view, tenant_id, segment_id, day)
SELECT 'selection_chain_totals', tenant_id, segment_id, day
  FROM running_total_days
 WHERE view = 'selection_offer_totals'
ON CONFLICT DO NOTHING;

-- Backfill in the fixed encoding (int2send of the id's length, the id, int8send of each
-- counter), entries in id byte order; ingest reads it as it is and rewrites a row compact the
-- next time a batch merges into it. Every checkpoint of the narrow table holds a row for each
-- offer seen up to it, so each checkpoint gets its wide row.
INSERT INTO selection_chain_totals (tenant_id, segment_id, day, offers)
SELECT t.tenant_id, t.segment_id, t.day,
       string_agg(int2send(octet_length(convert_to(t.offer_id, 'UTF8'))::int2) || convert_to(t.offer_id, 'UTF8')
                  || int8send(t.eligible) || int8send(t.scored) || int8send(t.selected) || int8send(t.rank_sum) || int8send(t.rank_n) || int8send(t.r1) || int8send(t.r2) || int8send(t.r3) || int8send(t.r4) || int8send(t.r5) || int8send(t.r6) || int8send(t.r7) || int8send(t.r8) || int8send(t.r9) || int8send(t.r10) || int8send(t.miss_qualification) || int8send(t.miss_contact) || int8send(t.miss_too_low) || int8send(t.miss_not_ranked)
                  || int8send(div(q.q - b.b, 4294967296)::int8) || int8send(b.b::int8) || int8send(c.c::int8)
                  || int8send(t.score_n)
                  || int8send(t.b0) || int8send(t.b1) || int8send(t.b2) || int8send(t.b3) || int8send(t.b4) || int8send(t.b5) || int8send(t.b6) || int8send(t.b7) || int8send(t.b8) || int8send(t.b9),
                  ''::bytea ORDER BY t.offer_id COLLATE "C")
  FROM selection_offer_totals t
  -- c = sum mod 2^32, q = floor(sum / 2^32), b = q mod 2^32, a = floor(q / 2^32): numeric's %
  -- keeps the dividend's sign, so the remainders are brought into [0, 2^32).
  CROSS JOIN LATERAL (SELECT (t.score_sum_micros % 4294967296 + 4294967296) % 4294967296 AS c) c
  CROSS JOIN LATERAL (SELECT div(t.score_sum_micros - c.c, 4294967296) AS q) q
  CROSS JOIN LATERAL (SELECT (q.q % 4294967296 + 4294967296) % 4294967296 AS b) b
 GROUP BY t.tenant_id, t.segment_id, t.day;

DELETE FROM running_total_days WHERE view = 'selection_offer_totals';

-- The entries of a stored wide value with `counters` counters each, either encoding: compact
-- (first byte 0xFF, then per entry a LEB128 id length, the id, zigzag LEB128 counters) or fixed
-- (per entry an int2 BE id length, the id, int8 BE counters). For the views below, which give
-- operators and tests the narrow rows as before; no dashboard read uses it.
CREATE FUNCTION dv_wide_entries(value bytea, counters int)
RETURNS TABLE (entry_id text, c int8[])
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    compact boolean := length(value) > 0 AND get_byte(value, 0) = 255;
    at int := CASE WHEN length(value) > 0 AND get_byte(value, 0) = 255 THEN 1 ELSE 0 END;
    len int;
    b int;
    z numeric;
    shift int;
    out int8[];
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
        entry_id := convert_from(substring(value FROM at + 1 FOR len), 'UTF8');
        at := at + len;
        out := '{}';
        FOR i IN 1..counters LOOP
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
                out := out || (CASE WHEN z % 2 = 0 THEN z / 2 ELSE -(z + 1) / 2 END)::int8;
            ELSE
                out := out || ('x' || encode(substring(value FROM at + 1 FOR 8), 'hex'))::bit(64)::int8;
                at := at + 8;
            END IF;
        END LOOP;
        c := out;
        RETURN NEXT;
    END LOOP;
END
$$;

-- selection_daily is a view of selection_offer_totals (migration `daily_tables_from_totals`):
-- dropped with it, then both come back with the same names, columns and types, read from the
-- wide rows.
DROP VIEW selection_daily;
DROP TABLE selection_offer_totals;

CREATE VIEW selection_offer_totals AS
SELECT t.tenant_id, t.day, e.entry_id COLLATE "C" AS offer_id,
       e.c[1] AS eligible,
       e.c[2] AS scored,
       e.c[3] AS selected,
       e.c[4] AS rank_sum,
       e.c[5] AS rank_n,
       e.c[6] AS r1,
       e.c[7] AS r2,
       e.c[8] AS r3,
       e.c[9] AS r4,
       e.c[10] AS r5,
       e.c[11] AS r6,
       e.c[12] AS r7,
       e.c[13] AS r8,
       e.c[14] AS r9,
       e.c[15] AS r10,
       e.c[16] AS miss_qualification,
       e.c[17] AS miss_contact,
       e.c[18] AS miss_too_low,
       e.c[19] AS miss_not_ranked,
       e.c[20]::numeric * 18446744073709551616 + e.c[21]::numeric * 4294967296 + e.c[22] AS score_sum_micros,
       e.c[23] AS score_n,
       e.c[24] AS b0,
       e.c[25] AS b1,
       e.c[26] AS b2,
       e.c[27] AS b3,
       e.c[28] AS b4,
       e.c[29] AS b5,
       e.c[30] AS b6,
       e.c[31] AS b7,
       e.c[32] AS b8,
       e.c[33] AS b9,
       t.segment_id
  FROM selection_chain_totals t
 CROSS JOIN LATERAL dv_wide_entries(t.offers, 33) e;

CREATE VIEW selection_daily AS
SELECT tenant_id, day, offer_id, eligible, scored, selected, rank_sum, rank_n, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, miss_qualification, miss_contact, miss_too_low, miss_not_ranked, score_sum_micros, score_n, b0, b1, b2, b3, b4, b5, b6, b7, b8, b9
  FROM (SELECT tenant_id, day, offer_id,
               (eligible - COALESCE(lag(eligible) OVER w, 0))::int8 AS eligible,
               (scored - COALESCE(lag(scored) OVER w, 0))::int8 AS scored,
               (selected - COALESCE(lag(selected) OVER w, 0))::int8 AS selected,
               (rank_sum - COALESCE(lag(rank_sum) OVER w, 0))::int8 AS rank_sum,
               (rank_n - COALESCE(lag(rank_n) OVER w, 0))::int8 AS rank_n,
               (r1 - COALESCE(lag(r1) OVER w, 0))::int8 AS r1,
               (r2 - COALESCE(lag(r2) OVER w, 0))::int8 AS r2,
               (r3 - COALESCE(lag(r3) OVER w, 0))::int8 AS r3,
               (r4 - COALESCE(lag(r4) OVER w, 0))::int8 AS r4,
               (r5 - COALESCE(lag(r5) OVER w, 0))::int8 AS r5,
               (r6 - COALESCE(lag(r6) OVER w, 0))::int8 AS r6,
               (r7 - COALESCE(lag(r7) OVER w, 0))::int8 AS r7,
               (r8 - COALESCE(lag(r8) OVER w, 0))::int8 AS r8,
               (r9 - COALESCE(lag(r9) OVER w, 0))::int8 AS r9,
               (r10 - COALESCE(lag(r10) OVER w, 0))::int8 AS r10,
               (miss_qualification - COALESCE(lag(miss_qualification) OVER w, 0))::int8 AS miss_qualification,
               (miss_contact - COALESCE(lag(miss_contact) OVER w, 0))::int8 AS miss_contact,
               (miss_too_low - COALESCE(lag(miss_too_low) OVER w, 0))::int8 AS miss_too_low,
               (miss_not_ranked - COALESCE(lag(miss_not_ranked) OVER w, 0))::int8 AS miss_not_ranked,
               (score_sum_micros - COALESCE(lag(score_sum_micros) OVER w, 0))::int8 AS score_sum_micros,
               (score_n - COALESCE(lag(score_n) OVER w, 0))::int8 AS score_n,
               (b0 - COALESCE(lag(b0) OVER w, 0))::int8 AS b0,
               (b1 - COALESCE(lag(b1) OVER w, 0))::int8 AS b1,
               (b2 - COALESCE(lag(b2) OVER w, 0))::int8 AS b2,
               (b3 - COALESCE(lag(b3) OVER w, 0))::int8 AS b3,
               (b4 - COALESCE(lag(b4) OVER w, 0))::int8 AS b4,
               (b5 - COALESCE(lag(b5) OVER w, 0))::int8 AS b5,
               (b6 - COALESCE(lag(b6) OVER w, 0))::int8 AS b6,
               (b7 - COALESCE(lag(b7) OVER w, 0))::int8 AS b7,
               (b8 - COALESCE(lag(b8) OVER w, 0))::int8 AS b8,
               (b9 - COALESCE(lag(b9) OVER w, 0))::int8 AS b9
          FROM selection_offer_totals
         WHERE segment_id = ''
        WINDOW w AS (PARTITION BY tenant_id, offer_id ORDER BY day)) d
 WHERE (eligible, scored, selected, rank_sum, rank_n, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, miss_qualification, miss_contact, miss_too_low, miss_not_ranked, score_sum_micros, score_n, b0, b1, b2, b3, b4, b5, b6, b7, b8, b9)
       IS DISTINCT FROM (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
