-- The segments' chains of per-(offer, channel) interaction running totals as one wide row per
-- (checkpoint, channel) (issue 14; issue 13: the write path).
--
-- offer_performance_grouped by channel with a segmentId read two rows per (offer, channel) the
-- segment ever saw from interaction_offer_channel_totals' segment chains: 2,236 rows at 10M
-- traces, a number that grows with the data (p50 ×2.6-3.5 from 100k to 10M traces,
-- BENCHMARKS.md "Reads, sixth pass"), and a batch upserted one row per (segment, offer,
-- channel) at every checkpoint it reached. Here each checkpoint of a segment's chain holds one
-- row per channel seen up to that day, its value every offer's counters in the wide encoding
-- (consumers/src/units/wide.rs), as interaction_segment_totals does per segment: a window reads
-- two rows per channel of the segment, a batch rewrites one per (segment, channel, checkpoint).
--
-- An entry's 12 counters (consumers/src/units/wide/interaction_counts.rs): impressions,
-- clicks, accepts, converts, rejects, dismisses, then revenue_micros and cost_micros each as
-- three int8 limbs a·2^64 + b·2^32 + c (b and c in [0, 2^32) as written here), which add as the
-- numeric sums do.
--
-- interaction_offer_channel_totals keeps the chain of all customers (segment ''). The segment
-- chains move here, and interaction_chain_daily (so interaction_segment_daily) reads them
-- decoded, with the same columns and types as before.
CREATE TABLE interaction_segment_channel_totals (
    tenant_id  text COLLATE "C" NOT NULL,
    segment_id text COLLATE "C" NOT NULL,
    day        date             NOT NULL,
    channel_id text COLLATE "C" NOT NULL,
    offers     bytea COMPRESSION lz4 NOT NULL,
    PRIMARY KEY (tenant_id, segment_id, day, channel_id)
) WITH (fillfactor = 50);

INSERT INTO running_total_days (view, tenant_id, segment_id, day)
SELECT 'interaction_segment_channel_totals', tenant_id, segment_id, day
  FROM running_total_days
 WHERE view = 'interaction_offer_channel_totals' AND segment_id <> ''
ON CONFLICT DO NOTHING;

-- Backfill in the fixed encoding (int2send of the id's length, the id, int8send of each
-- counter), entries in id byte order; ingest reads it as it is and rewrites a row compact the
-- next time a batch merges into it. A checkpoint of the narrow chain holds a row for every
-- (offer, channel) seen up to it, so each checkpoint gets a row per channel seen up to it, as
-- ingest's copies of a chain's latest checkpoint give it.
INSERT INTO interaction_segment_channel_totals (tenant_id, segment_id, day, channel_id, offers)
SELECT t.tenant_id, t.segment_id, t.day, t.channel_id,
       string_agg(int2send(octet_length(convert_to(t.offer_id, 'UTF8'))::int2) || convert_to(t.offer_id, 'UTF8')
                  || int8send(t.impressions) || int8send(t.clicks) || int8send(t.accepts) || int8send(t.converts)
                  || int8send(t.rejects) || int8send(t.dismisses)
                  || int8send(div(rq.q - rb.b, 4294967296)::int8) || int8send(rb.b::int8) || int8send(rc.c::int8)
                  || int8send(div(cq.q - cb.b, 4294967296)::int8) || int8send(cb.b::int8) || int8send(cc.c::int8),
                  ''::bytea ORDER BY t.offer_id COLLATE "C")
  FROM interaction_offer_channel_totals t
  -- c = sum mod 2^32, q = floor(sum / 2^32), b = q mod 2^32, a = floor(q / 2^32): numeric's %
  -- keeps the dividend's sign, so the remainders are brought into [0, 2^32).
  CROSS JOIN LATERAL (SELECT (t.revenue_micros % 4294967296 + 4294967296) % 4294967296 AS c) rc
  CROSS JOIN LATERAL (SELECT div(t.revenue_micros - rc.c, 4294967296) AS q) rq
  CROSS JOIN LATERAL (SELECT (rq.q % 4294967296 + 4294967296) % 4294967296 AS b) rb
  CROSS JOIN LATERAL (SELECT (t.cost_micros % 4294967296 + 4294967296) % 4294967296 AS c) cc
  CROSS JOIN LATERAL (SELECT div(t.cost_micros - cc.c, 4294967296) AS q) cq
  CROSS JOIN LATERAL (SELECT (cq.q % 4294967296 + 4294967296) % 4294967296 AS b) cb
 WHERE t.segment_id <> ''
 GROUP BY t.tenant_id, t.segment_id, t.day, t.channel_id;

DELETE FROM interaction_offer_channel_totals WHERE segment_id <> '';
DELETE FROM running_total_days WHERE view = 'interaction_offer_channel_totals' AND segment_id <> '';

-- Every chain's daily rows, as migration `daily_tables_from_totals` defined them: all
-- customers' from the narrow rows, the segments' from the wide ones decoded (`dv_wide_entries`,
-- migration `wide_selection_offer_totals`). Same columns and types, so interaction_daily and
-- interaction_segment_daily, which select from it, stay as they are.
CREATE OR REPLACE VIEW interaction_chain_daily AS
SELECT tenant_id, segment_id, day, offer_id, channel_id, impressions, clicks, accepts, converts, rejects,
       dismisses, revenue_micros, cost_micros
  FROM (SELECT tenant_id, segment_id, day, offer_id, channel_id,
               impressions - COALESCE(lag(impressions) OVER w, 0) AS impressions,
               clicks - COALESCE(lag(clicks) OVER w, 0) AS clicks,
               accepts - COALESCE(lag(accepts) OVER w, 0) AS accepts,
               converts - COALESCE(lag(converts) OVER w, 0) AS converts,
               rejects - COALESCE(lag(rejects) OVER w, 0) AS rejects,
               dismisses - COALESCE(lag(dismisses) OVER w, 0) AS dismisses,
               revenue_micros - COALESCE(lag(revenue_micros) OVER w, 0) AS revenue_micros,
               cost_micros - COALESCE(lag(cost_micros) OVER w, 0) AS cost_micros
          FROM (SELECT tenant_id, segment_id, day, offer_id, channel_id, impressions, clicks, accepts, converts,
                       rejects, dismisses, revenue_micros, cost_micros
                  FROM interaction_offer_channel_totals
                 UNION ALL
                SELECT t.tenant_id, t.segment_id, t.day, e.entry_id COLLATE "C", t.channel_id,
                       e.c[1], e.c[2], e.c[3], e.c[4], e.c[5], e.c[6],
                       e.c[7]::numeric * 18446744073709551616 + e.c[8]::numeric * 4294967296 + e.c[9],
                       e.c[10]::numeric * 18446744073709551616 + e.c[11]::numeric * 4294967296 + e.c[12]
                  FROM interaction_segment_channel_totals t
                 CROSS JOIN LATERAL dv_wide_entries(t.offers, 12) e) r
        WINDOW w AS (PARTITION BY tenant_id, segment_id, offer_id, channel_id ORDER BY day)) d
 WHERE (impressions, clicks, accepts, converts, rejects, dismisses, revenue_micros, cost_micros)
       IS DISTINCT FROM (0, 0, 0, 0, 0, 0, 0, 0);
