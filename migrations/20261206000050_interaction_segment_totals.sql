-- Each segment's chain of per-offer interaction running totals as one wide row per checkpoint
-- (issue 14).
--
-- offer_performance_grouped by segment lists the top offers of every active segment. It read
-- interaction_offer_totals' segment chains: two rows per (segment, offer), hash-joined and
-- ranked per segment, ~6,400 rows for 20 segments at 10M traces, 4.6-4.8 ms in PostgreSQL
-- and p99 10.7-15.5 ms through the API. Here each checkpoint of a segment's chain is also one
-- row whose value holds every offer's counters up to that day, in the wide encoding
-- (consumers/src/units/wide.rs): a window reads two rows per segment.
--
-- An entry's counters (consumers/src/units/wide/offer_interactions.rs): impressions,
-- accepts + converts, rejects + dismisses, interactions of every type, and revenue_micros as
-- three int8 limbs a·2^64 + b·2^32 + c (b and c in [0, 2^32) as written here), which add as
-- the sum does. acceptance_rate and offer_performance with a segmentId read them too (one
-- segment's two rows, where they read two rows per offer).
--
-- interaction_offer_totals keeps its segment chains: the anomaly baselines with a segmentId
-- need its revenue squares.
CREATE TABLE interaction_segment_totals (
    tenant_id  text COLLATE "C" NOT NULL,
    segment_id text COLLATE "C" NOT NULL,
    day        date             NOT NULL,
    offers     bytea COMPRESSION lz4 NOT NULL,
    PRIMARY KEY (tenant_id, segment_id, day)
) WITH (fillfactor = 50);

-- Backfill: the same checkpoints as the segment chains of interaction_offer_totals, each
-- holding what their rows hold, in the fixed encoding (int2send of the id's length, the id,
-- int8send of each counter), entries in id byte order. Ingest reads it as it is and rewrites
-- a row compact the next time a batch merges into it.
INSERT INTO running_total_days (view, tenant_id, segment_id, day)
SELECT 'interaction_segment_totals', tenant_id, segment_id, day
  FROM running_total_days
 WHERE view = 'interaction_offer_totals' AND segment_id <> ''
ON CONFLICT DO NOTHING;

INSERT INTO interaction_segment_totals (tenant_id, segment_id, day, offers)
SELECT t.tenant_id, t.segment_id, t.day,
       string_agg(int2send(octet_length(convert_to(t.offer_id, 'UTF8'))::int2) || convert_to(t.offer_id, 'UTF8')
                  || int8send(t.impressions) || int8send(t.accepts + t.converts) || int8send(t.rejects + t.dismisses)
                  || int8send(t.impressions + t.clicks + t.accepts + t.converts + t.rejects + t.dismisses)
                  || int8send(div(q.q - b.b, 4294967296)::int8) || int8send(b.b::int8) || int8send(c.c::int8),
                  ''::bytea ORDER BY t.offer_id COLLATE "C")
  FROM interaction_offer_totals t
  -- c = revenue mod 2^32, q = floor(revenue / 2^32), b = q mod 2^32, a = floor(q / 2^32):
  -- numeric's % keeps the dividend's sign, so the remainders are brought into [0, 2^32).
  CROSS JOIN LATERAL (SELECT (t.revenue_micros % 4294967296 + 4294967296) % 4294967296 AS c) c
  CROSS JOIN LATERAL (SELECT div(t.revenue_micros - c.c, 4294967296) AS q) q
  CROSS JOIN LATERAL (SELECT (q.q % 4294967296 + 4294967296) % 4294967296 AS b) b
 WHERE t.segment_id <> ''
 GROUP BY t.tenant_id, t.segment_id, t.day;
