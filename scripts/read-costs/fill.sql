-- tenant_0 = the large tenant of SPEC 7 over 90 days; tenant_1..9 a tenth each (fewer offers).
INSERT INTO catalog_entities (tenant_id, entity, entity_id, status, name, priority, category_id, budget_allocated_micros, updated_at)
SELECT 'tenant_'||t, 'offer', 'off_'||o, CASE WHEN o % 4 = 0 THEN 'draft' ELSE 'active' END, 'Offer '||o, o % 100,
       'cat_'||(o % 10), CASE WHEN o % 3 = 0 THEN 10000000000 END, now()
  FROM generate_series(0,9) t, generate_series(0,199) o;
INSERT INTO catalog_entities (tenant_id, entity, entity_id, offer_id, name, updated_at)
SELECT 'tenant_'||t, 'creative', 'cr_'||o||'_'||k, 'off_'||o, 'C', now() FROM generate_series(0,9) t, generate_series(0,199) o, generate_series(0,1) k;
INSERT INTO catalog_entities (tenant_id, entity, entity_id, status, name, updated_at)
SELECT 'tenant_'||t, e, e||'_'||i, 'active', e||' '||i, now() FROM generate_series(0,9) t,
  (VALUES ('channel', 6), ('category', 10), ('segment', 20), ('experiment', 2), ('journey', 3), ('trigger', 5), ('approval', 2)) v(e, n), generate_series(0,19) i WHERE i < n;
INSERT INTO segments_materialized SELECT 'tenant_'||t, 'segment_'||s FROM generate_series(0,9) t, generate_series(0,19) s;
-- interactions: every (day, offer, channel) for tenant_0; 20 offers for the small tenants
INSERT INTO interaction_daily SELECT 'tenant_'||t, current_date - d, 'off_'||o, 'channel_'||c,
       50 + (d*7+o*3+c) % 450, (o+c+d) % 7, 2 + (o*d) % 9, (o+d) % 5, (c+d) % 4, (o+c) % 3,
       ((o*d) % 9) * 12340000, ((o+c+d) % 50) * 10000
  FROM generate_series(0,9) t, generate_series(0,89) d, generate_series(0,199) o, generate_series(0,5) c
 WHERE t = 0 OR o < 20;
INSERT INTO interaction_segment_daily SELECT 'tenant_0', 'segment_'||s, current_date - d, 'off_'||o, 'channel_'||(o % 6),
       5 + (d+o) % 40, 1, 1, 0, 1, 0, 12340000, 10000
  FROM generate_series(0,19) s, generate_series(0,89) d, generate_series(0,59) o;
INSERT INTO offer_spend SELECT 'tenant_'||t, 'off_'||o, (o*7919) % 20000000000 FROM generate_series(0,9) t, generate_series(0,199) o;
INSERT INTO trace_daily SELECT 'tenant_'||t, current_date - d, 'channel_'||c, 'df_'||f, 1000 + d % 90, 20 + c
  FROM generate_series(0,9) t, generate_series(0,89) d, generate_series(0,5) c, generate_series(0,4) f;
INSERT INTO selection_daily (tenant_id, day, offer_id, eligible, scored, selected, rank_sum, rank_n, r1, r2, r3, miss_qualification, miss_too_low, score_sum_micros, score_n, b0, b5)
SELECT 'tenant_'||t, current_date - d, 'off_'||o, 500, 400, 60, 2000, 400, 60, 80, 90, 50, 300, 200000000, 400, 100, 300
  FROM generate_series(0,9) t, generate_series(0,89) d, generate_series(0,199) o WHERE t = 0 OR o < 20;
-- Wide rows (migration 20261203000010): every offer's 15 counters in one value per (day, channel, flow).
INSERT INTO selection_flow_daily (tenant_id, day, channel_id, decision_flow_id, offers)
SELECT 'tenant_0', current_date - d, 'channel_'||c, 'df_'||f,
       (SELECT string_agg(int2send(octet_length('off_'||o)::int2) || convert_to('off_'||o, 'UTF8')
                          || int8send(17) || int8send(13) || int8send(2) || int8send(60) || int8send(13)
                          || decode(repeat('00', 80), 'hex'), ''::bytea ORDER BY ('off_'||o) COLLATE "C")
          FROM generate_series(0,199) o)
  FROM generate_series(0,89) d, generate_series(0,5) c, generate_series(0,4) f;
INSERT INTO selection_segment_daily (tenant_id, segment_id, day, channel_id, decision_flow_id, offer_id, eligible, scored, selected, rank_sum, rank_n)
SELECT 'tenant_0', 'segment_'||s, current_date - d, 'channel_'||(o % 6), 'df_'||(o % 5), 'off_'||o, 3, 2, 1, 5, 2
  FROM generate_series(0,19) s, generate_series(0,89) d, generate_series(0,59) o;
INSERT INTO beaten_by_offer_daily (tenant_id, offer_id, day, winners)
SELECT 'tenant_0', 'off_'||o, current_date - d,
       (SELECT string_agg(int2send(octet_length('off_'||w)::int2) || convert_to('off_'||w, 'UTF8') || int8send(3),
                          ''::bytea ORDER BY ('off_'||w) COLLATE "C")
          FROM generate_series(0,14) w WHERE w <> o)
  FROM generate_series(0,89) d, generate_series(0,199) o;
INSERT INTO score_daily (tenant_id, day, b0, b5, b9, score_sum_micros, n) SELECT 'tenant_'||t, current_date - d, 100, 500, 40, 300000000, 640 FROM generate_series(0,9) t, generate_series(0,89) d;
INSERT INTO score_channel_daily (tenant_id, day, channel_id, b0, b5, score_sum_micros, n) SELECT 'tenant_0', current_date - d, 'channel_'||c, 20, 80, 50000000, 100 FROM generate_series(0,89) d, generate_series(0,5) c;
INSERT INTO attribution_daily SELECT 'tenant_0', current_date - d, m, 2000, 600000000000 FROM generate_series(0,89) d, unnest(ARRAY['last_touch','first_touch','linear']) m;
INSERT INTO attribution_first_days SELECT 'tenant_0', current_date - d, CASE WHEN k = 0 THEN '0001-01-01'::date ELSE current_date - d - k END, 1500 / (k+1)
  FROM generate_series(0,89) d, generate_series(0,3) k;
INSERT INTO model_eval_daily SELECT 'tenant_0', current_date - d, 'm'||m, 4 * 820000, 4 FROM generate_series(0,89) d, generate_series(0,2) m;
INSERT INTO model_latest SELECT 'tenant_0', 'm'||m, 'Model '||m, now() - (m||' hours')::interval, 'e'||m,
       (SELECT jsonb_agg(jsonb_build_object('name', 'f'||f, 'value', f / 30.0)) FROM generate_series(0,29) f) FROM generate_series(0,2) m;
INSERT INTO suppressions (tenant_id, suppression_id, customer_id, policy_type, created_at, expires_at, lifted, counted)
SELECT 'tenant_0', 's'||i, 'c'||i, 'type_'||(i % 4), now() - interval '10 days',
       CASE WHEN i % 5 = 0 THEN now() - interval '1 hour' WHEN i % 2 = 0 THEN now() + interval '30 days' END,
       i % 10 < 3, NOT (i % 10 < 3) AND i % 5 <> 0
  FROM generate_series(1,100000) i;
-- a few expired ones not yet swept
UPDATE suppressions SET expires_at = now() - interval '1 minute' WHERE tenant_id = 'tenant_0' AND suppression_id IN ('s2','s4','s6');
INSERT INTO suppression_active_counts SELECT tenant_id, policy_type, count(*) FILTER (WHERE counted) FROM suppressions GROUP BY 1, 2;
ANALYZE;
