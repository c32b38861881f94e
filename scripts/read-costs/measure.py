"""EXPLAIN (ANALYZE, BUFFERS) of each dashboard type's read SQL for a 90-day window, on view
tables filled to SPEC 7's shape by fill.sql. Run through scripts/read-costs/run.sh.
The SQL mirrors src/api/dashboard/<type>.rs; keep them in step when a read changes."""
import os
DB = os.environ.get("DV_READ_COSTS_DB", "dv_read_costs")
import json, subprocess
T="'tenant_0'"; S="current_date - 89"; E="current_date"
SRC_ALL=f"FROM interaction_daily WHERE tenant_id = {T} AND NULL::text IS NULL AND day BETWEEN {S} AND {E}"
SRC_SEG=f"FROM interaction_segment_daily WHERE tenant_id = {T} AND segment_id = 'segment_3' AND day BETWEEN {S} AND {E}"
SUMS="ARRAY[sum(r1), sum(r2), sum(r3), sum(r4), sum(r5), sum(r6), sum(r7), sum(r8), sum(r9), sum(r10)]"
Q = {
 "summary": f"SELECT entity, status, count(*) FROM catalog_entities WHERE tenant_id = {T} AND NOT deleted AND entity IN ('offer','channel','experiment','journey','trigger','approval') GROUP BY entity, status",
 "funnel": f"SELECT (SELECT count(*) FROM catalog_entities WHERE tenant_id = {T} AND entity = 'offer' AND NOT deleted), (SELECT count(*) FROM catalog_entities WHERE tenant_id = {T} AND entity = 'offer' AND NOT deleted AND status = 'active'), (SELECT count(*) FROM catalog_entities o WHERE o.tenant_id = {T} AND o.entity = 'offer' AND NOT o.deleted AND o.status = 'active' AND EXISTS (SELECT 1 FROM catalog_entities c WHERE c.tenant_id = {T} AND c.entity = 'creative' AND NOT c.deleted AND c.offer_id = o.entity_id)), (SELECT count(*) FROM catalog_entities WHERE tenant_id = {T} AND entity = 'creative' AND NOT deleted)",
 "acceptance_rate": f"SELECT offer_id, sum(impressions), sum(accepts + converts), sum(rejects + dismisses) {SRC_ALL} GROUP BY offer_id",
 "acceptance_rate (segmentId)": f"SELECT offer_id, sum(impressions), sum(accepts + converts), sum(rejects + dismisses) {SRC_SEG} GROUP BY offer_id",
 "offer_performance": f"WITH stats AS (SELECT offer_id, sum(impressions) AS imp, sum(accepts + converts) AS conv, sum(revenue_micros) AS rev {SRC_ALL} GROUP BY offer_id) SELECT o.entity_id, o.name, o.priority, (SELECT count(*) FROM catalog_entities c WHERE c.tenant_id = {T} AND c.entity = 'creative' AND NOT c.deleted AND c.offer_id = o.entity_id), COALESCE(s.imp, 0), COALESCE(s.conv, 0), COALESCE(s.rev, 0) FROM catalog_entities o LEFT JOIN stats s ON s.offer_id = o.entity_id WHERE o.tenant_id = {T} AND o.entity = 'offer' AND NOT o.deleted AND o.status = 'active'",
 "channel_effectiveness": f"WITH stats AS (SELECT channel_id, sum(impressions) AS imp, sum(accepts + converts) AS conv {SRC_ALL} GROUP BY channel_id), active AS (SELECT entity_id AS channel_id FROM catalog_entities WHERE tenant_id = {T} AND entity = 'channel' AND NOT deleted AND status = 'active') SELECT k.channel_id, c.name, COALESCE(s.imp, 0), COALESCE(s.conv, 0) FROM (SELECT channel_id FROM stats UNION SELECT channel_id FROM active) k LEFT JOIN stats s USING (channel_id) LEFT JOIN catalog_entities c ON c.tenant_id = {T} AND c.entity = 'channel' AND c.entity_id = k.channel_id AND NOT c.deleted",
 "budget_burn": f"SELECT o.entity_id, o.name, o.budget_allocated_micros, COALESCE(s.cost_micros, 0) FROM catalog_entities o LEFT JOIN offer_spend s ON s.tenant_id = o.tenant_id AND s.offer_id = o.entity_id WHERE o.tenant_id = {T} AND o.entity = 'offer' AND NOT o.deleted AND o.budget_allocated_micros > 0",
 "attribution_summary (models)": f"SELECT model, sum(events), sum(value_micros) FROM attribution_daily WHERE tenant_id = {T} AND day BETWEEN {S} AND {E} GROUP BY model",
 "attribution_summary (distinct)": f"SELECT COALESCE(sum(conversions), 0) FROM attribution_first_days WHERE tenant_id = {T} AND day BETWEEN {S} AND {E} AND prev_day < {S}",
 "daily_trend": f"SELECT day, sum(impressions), sum(accepts + converts) {SRC_ALL} GROUP BY day",
 "daily_trend (segmentId)": f"SELECT day, sum(impressions), sum(accepts + converts) {SRC_SEG} GROUP BY day",
 "revenue_trend": f"SELECT day, sum(revenue_micros) {SRC_ALL} GROUP BY day",
 "offer_performance_grouped (channel)": f"SELECT channel_id, offer_id, sum(impressions), sum(accepts + converts), sum(revenue_micros) {SRC_ALL} GROUP BY channel_id, offer_id",
 "offer_performance_grouped (category)": f"WITH stats AS (SELECT offer_id, sum(impressions) AS imp, sum(accepts + converts) AS conv, sum(revenue_micros) AS rev {SRC_ALL} GROUP BY offer_id) SELECT COALESCE(o.category_id, 'uncategorized'), s.offer_id, s.imp, s.conv, s.rev FROM stats s LEFT JOIN catalog_entities o ON o.tenant_id = {T} AND o.entity = 'offer' AND o.entity_id = s.offer_id AND NOT o.deleted",
 "offer_performance_grouped (segment)": f"SELECT d.segment_id, d.offer_id, sum(d.impressions), sum(d.accepts + d.converts), sum(d.revenue_micros) FROM interaction_segment_daily d JOIN segments_materialized m ON m.tenant_id = d.tenant_id AND m.segment_id = d.segment_id JOIN catalog_entities c ON c.tenant_id = d.tenant_id AND c.entity = 'segment' AND c.entity_id = d.segment_id AND NOT c.deleted AND c.status = 'active' WHERE d.tenant_id = {T} AND d.day BETWEEN {S} AND {E} AND (NULL::text IS NULL OR d.segment_id = NULL) GROUP BY d.segment_id, d.offer_id",
 "policy_impact": f"SELECT c.policy_type, (c.active - COALESCE(x.expired, 0)) FROM suppression_active_counts c LEFT JOIN (SELECT policy_type, count(*) AS expired FROM suppressions WHERE tenant_id = {T} AND counted AND expires_at <= now() GROUP BY policy_type) x USING (policy_type) WHERE c.tenant_id = {T}",
 "model_metrics_trend (auc)": f"SELECT day, sum(auc_micros), sum(evals) FROM model_eval_daily WHERE tenant_id = {T} AND day BETWEEN {S} AND {E} AND (NULL::text IS NULL OR model_id = NULL) GROUP BY day ORDER BY day",
 "model_metrics_trend (latest)": f"SELECT model_name, feature_importance FROM model_latest WHERE tenant_id = {T} ORDER BY evaluated_at DESC, event_id DESC LIMIT 1",
 "segment_scope check": f"SELECT EXISTS (SELECT 1 FROM segments_materialized WHERE tenant_id = {T} AND segment_id = 'segment_3'), EXISTS (SELECT 1 FROM catalog_entities WHERE tenant_id = {T} AND entity = 'segment' AND entity_id = 'segment_3' AND NOT deleted)",
 "names (200 offers)": f"SELECT entity_id, name FROM catalog_entities WHERE tenant_id = {T} AND entity = 'offer' AND entity_id = ANY(ARRAY(SELECT 'off_'||g FROM generate_series(0,199) g)) AND NOT deleted AND name IS NOT NULL",
 "selection_frequency": f"SELECT offer_id, sum(eligible), sum(scored), sum(selected), sum(rank_sum), sum(rank_n), {SUMS} FROM selection_daily WHERE tenant_id = {T} AND day BETWEEN {S} AND {E} GROUP BY offer_id",
 "selection_frequency (channelId)": f"SELECT offers FROM selection_flow_daily WHERE tenant_id = {T} AND day BETWEEN {S} AND {E} AND channel_id = 'channel_1'",
 "why_not_ranked": f"SELECT sum(eligible), sum(selected), sum(miss_qualification), sum(miss_contact), sum(miss_too_low), sum(miss_not_ranked), sum(score_sum_micros), sum(score_n), {SUMS} FROM selection_daily WHERE tenant_id = {T} AND day BETWEEN {S} AND {E} AND offer_id = 'off_7'",
 "why_not_ranked (beatenBy)": f"SELECT winners FROM beaten_by_offer_daily WHERE tenant_id = {T} AND offer_id = 'off_7' AND day BETWEEN {S} AND {E}",
 "score_distribution": f"SELECT ARRAY[sum(b0), sum(b1), sum(b2), sum(b3), sum(b4), sum(b5), sum(b6), sum(b7), sum(b8), sum(b9)], sum(score_sum_micros), sum(n) FROM score_daily WHERE tenant_id = {T} AND day BETWEEN {S} AND {E}",
 "score_distribution (groupBy offer)": f"SELECT offer_id, sum(b0), sum(b5), sum(score_sum_micros), sum(score_n) FROM selection_daily WHERE tenant_id = {T} AND day BETWEEN {S} AND {E} GROUP BY offer_id HAVING sum(score_n) > 0",
 "degraded_scoring": f"SELECT COALESCE(sum(degraded), 0), COALESCE(sum(traces), 0) FROM trace_daily WHERE tenant_id = {T} AND day BETWEEN {S} AND {E}",
 "anomaly_candidates (interactions, 7+7 days)": f"SELECT day, offer_id, channel_id, sum(impressions), sum(accepts + converts), sum(revenue_micros) FROM interaction_daily WHERE tenant_id = {T} AND day BETWEEN current_date - 13 AND {E} GROUP BY day, offer_id, channel_id",
}
def scan_rows(node):
    n = 0
    if 'Scan' in node.get('Node Type', ''):
        n += node.get('Actual Rows', 0) * node.get('Actual Loops', 1) + node.get('Rows Removed by Filter', 0) * node.get('Actual Loops', 1)
    for c in node.get('Plans', []):
        n += scan_rows(c)
    return n
def scans(node, acc):
    if 'Scan' in node.get('Node Type', ''):
        acc.append(f"{node['Node Type']} {node.get('Index Name', node.get('Relation Name', ''))}")
    for c in node.get('Plans', []):
        scans(c, acc)
    return acc
print("| type / query | access | rows read | buffers | ms (best of 3) |\n|---|---|---|---|---|")
for name, sql in Q.items():
    best = None
    for _ in range(3):
        out = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", DB, "-tAc", f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}"], capture_output=True, text=True)
        if out.returncode != 0:
            print(name, "ERROR", out.stderr[:200]); break
        j = json.loads(out.stdout)[0]
        t = j['Execution Time']
        if best is None or t < best[0]:
            best = (t, j)
    if best:
        t, j = best
        p = j['Plan']
        acc = sorted(set(scans(p, [])))
        print(f"| {name} | {', '.join(acc)[:90]} | {int(scan_rows(p))} | {p.get('Shared Hit Blocks', 0)} hit / {p.get('Shared Read Blocks', 0)} read | {t:.2f} |")
