-- Wide rows for the two candidate-keyed views (issue 13).
--
-- `selection_dims_daily` (one row per tenant, day, channel, flow and offer) and
-- `beaten_by_daily` (one per tenant, day, offer and winner) were two thirds of a trace batch's
-- database time: ~24 of its ~26 view rows per trace, and their keys stay mostly distinct
-- however large the batch (BENCHMARKS.md, "Write path"). Each becomes one row per coarser key
-- holding every offer's (every winner's) counters in one `bytea`, merged by ingest (read, add,
-- write back, under the row lock) and summed by the API:
--
--   selection_flow_daily (tenant, day, channel, flow) -> offers: per candidate offer, the 15
--     counters selection_frequency reads (eligible, scored, selected, rank_sum, rank_n, r1..r10);
--   beaten_by_offer_daily (tenant, offer, day) -> winners: per winner, its count. Keyed offer
--     before day: why_not_ranked reads one offer's days.
--
-- The encoding (consumers/src/wide.rs) is entries sorted by id bytes, each
-- int2 BE byte length of the id | the id's UTF-8 bytes | the counters as int8 BE,
-- which SQL writes with int2send/int8send, so the existing rows carry over below exactly.
-- Ids are at most 256 bytes (decode limits). lz4: the counters are mostly small and the
-- value is rewritten every batch; pglz was a hot symbol of the earlier profile.

CREATE TABLE selection_flow_daily (
    tenant_id        text COLLATE "C" NOT NULL,
    day              date             NOT NULL,
    channel_id       text COLLATE "C" NOT NULL,
    decision_flow_id text COLLATE "C" NOT NULL,
    offers           bytea COMPRESSION lz4 NOT NULL,
    PRIMARY KEY (tenant_id, day, channel_id, decision_flow_id)
);

INSERT INTO selection_flow_daily (tenant_id, day, channel_id, decision_flow_id, offers)
SELECT tenant_id, day, channel_id, decision_flow_id,
       string_agg(int2send(octet_length(offer_id)::int2) || convert_to(offer_id, 'UTF8')
                  || int8send(eligible) || int8send(scored) || int8send(selected)
                  || int8send(rank_sum) || int8send(rank_n)
                  || int8send(r1) || int8send(r2) || int8send(r3) || int8send(r4) || int8send(r5)
                  || int8send(r6) || int8send(r7) || int8send(r8) || int8send(r9) || int8send(r10),
                  ''::bytea ORDER BY offer_id COLLATE "C")
  FROM selection_dims_daily
 GROUP BY tenant_id, day, channel_id, decision_flow_id;

DROP TABLE selection_dims_daily;

CREATE TABLE beaten_by_offer_daily (
    tenant_id text COLLATE "C" NOT NULL,
    offer_id  text COLLATE "C" NOT NULL,
    day       date             NOT NULL,
    winners   bytea COMPRESSION lz4 NOT NULL,
    PRIMARY KEY (tenant_id, offer_id, day)
);

INSERT INTO beaten_by_offer_daily (tenant_id, offer_id, day, winners)
SELECT tenant_id, offer_id, day,
       string_agg(int2send(octet_length(winner_id)::int2) || convert_to(winner_id, 'UTF8') || int8send(count),
                  ''::bytea ORDER BY winner_id COLLATE "C")
  FROM beaten_by_daily
 GROUP BY tenant_id, offer_id, day;

DROP TABLE beaten_by_daily;
