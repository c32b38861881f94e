//! The raw baseline of docs/guarantees.md 7: the same dashboard answers computed by SQL over raw event tables
//! in the same PostgreSQL, what a team without pre-aggregated views would run.
//!
//! Why it is fair: every event is stored once, as received (traces keep their full JSON as
//! jsonb, lz4-compressed so it mostly stays inline, plus the typed columns a team would pull
//! out), with the index such a team adds first, (tenant_id, event time); no primary keys or GIN
//! indexes, which no query here would use. Event times are UTC `timestamp`s, so a UTC date
//! window is a plain index range and `::date` is the UTC date. Money is `numeric`: its sums equal
//! the views' micro-unit sums for amounts with up to 6 decimals.
//! Each query computes the complete answer of the type's default request (the JSON document,
//! rounding, ordering and names included) in one statement, so nothing is left to the client;
//! the API also serializes JSON. Catalog facts (names, statuses, creatives, budgets) come from
//! the processed `catalog_entities` table, as a raw-table team would keep a catalog table; every
//! event-derived figure comes from `raw.*`. No default request is segment-scoped, so no query
//! reads memberships (`raw.segment_membership` is loaded for completeness only).
//!
//! Binds of every query: `$1` tenant, `$2` first and `$3` last date of the window (inclusive).
//! Run `DDL` with `sqlx::raw_sql`, then `ANALYZE` (or `VACUUM ANALYZE`) the raw tables after
//! loading, before timing: without statistics the planner picks poor plans.

mod load;

pub use load::load;

/// Schema `raw`: one append-only table per topic (catalog excepted), as received.
pub const DDL: &str = "
CREATE SCHEMA IF NOT EXISTS raw;
CREATE TABLE IF NOT EXISTS raw.traces (
    tenant_id text NOT NULL, id text NOT NULL, customer_id text NOT NULL, decision_flow_id text, channel_id text,
    degraded boolean NOT NULL, total_duration_ms float8 NOT NULL, created_at timestamp NOT NULL,
    doc jsonb COMPRESSION lz4 NOT NULL);
CREATE INDEX IF NOT EXISTS traces_tenant_time ON raw.traces (tenant_id, created_at);
CREATE TABLE IF NOT EXISTS raw.interactions (
    tenant_id text NOT NULL, id text NOT NULL, customer_id text NOT NULL, offer_id text NOT NULL,
    channel_id text NOT NULL, creative_id text, decision_trace_id text, outcome text NOT NULL,
    revenue numeric NOT NULL, cost numeric NOT NULL, occurred_at timestamp NOT NULL);
CREATE INDEX IF NOT EXISTS interactions_tenant_time ON raw.interactions (tenant_id, occurred_at);
-- seq: arrival order, which decides the fields of a suppression created more than once.
CREATE TABLE IF NOT EXISTS raw.suppressions (
    seq bigint GENERATED ALWAYS AS IDENTITY, tenant_id text NOT NULL, id text NOT NULL,
    suppression_id text NOT NULL, customer_id text NOT NULL, offer_id text, channel_id text,
    policy_id text NOT NULL, policy_type text NOT NULL, op text NOT NULL, created_at timestamp NOT NULL,
    expires_at timestamp);
CREATE INDEX IF NOT EXISTS suppressions_tenant_id ON raw.suppressions (tenant_id, suppression_id);
CREATE TABLE IF NOT EXISTS raw.attributions (
    tenant_id text NOT NULL, id text NOT NULL, conversion_id text NOT NULL, model text NOT NULL,
    value numeric NOT NULL, offer_id text, channel_id text, occurred_at timestamp NOT NULL);
CREATE INDEX IF NOT EXISTS attributions_tenant_time ON raw.attributions (tenant_id, occurred_at);
CREATE TABLE IF NOT EXISTS raw.model_metrics (
    tenant_id text NOT NULL, id text NOT NULL, model_id text NOT NULL, model_name text NOT NULL,
    auc numeric NOT NULL, feature_importance jsonb NOT NULL, evaluated_at timestamp NOT NULL);
CREATE INDEX IF NOT EXISTS model_metrics_tenant_time ON raw.model_metrics (tenant_id, evaluated_at);
CREATE TABLE IF NOT EXISTS raw.segment_membership (
    seq bigint GENERATED ALWAYS AS IDENTITY, tenant_id text NOT NULL, id text NOT NULL,
    segment_id text NOT NULL, customer_id text NOT NULL, op text NOT NULL, at timestamp NOT NULL);
CREATE INDEX IF NOT EXISTS segment_membership_customer ON raw.segment_membership (tenant_id, customer_id);
";

/// One dashboard type's raw query: binds `$1` tenant, `$2`/`$3` the window's first/last date;
/// returns one row holding the answer as jsonb.
pub struct RawQuery {
    pub kind: &'static str,
    pub sql: &'static str,
}

/// SQL fragments shared by the queries (`concat!` needs literals, hence a macro).
macro_rules! sql {
    // `tenant_id = $1` and an event time within the UTC dates [$2, $3].
    (window $col:literal) => {
        concat!("tenant_id = $1 AND ", $col, " >= $2::date AND ", $col, " < $3::date + 1")
    };
    // Impressions and conversions (accept + convert) of a set of interactions.
    (counts) => {
        "count(*) FILTER (WHERE outcome = 'impression') AS imp,
         count(*) FILTER (WHERE outcome IN ('accept', 'convert')) AS conv"
    };
    // n / d rounded half away from zero to the decimals of `f` (1e3: 3), 0 when d = 0. In float8
    // as the API computes in f64, so that decimal ties (0.00625) round the same on both sides.
    (rate $n:literal, $d:literal, $f:literal) => {
        concat!("CASE WHEN ", $d, " = 0 THEN 0 ELSE trunc(", $n, "::float8 / ", $d, " * ", $f, " + 0.5) / ", $f, " END")
    };
    // `ratio × 100` with one decimal as text, "0.0" for a zero denominator (docs/dashboard-types.md 4).
    (pct $n:literal, $d:literal) => {
        concat!("CASE WHEN ", $d, " = 0 THEN '0.0' ELSE to_char(", sql!(pct_value $n, $d), ", 'FM9999990.0') END")
    };
    (pct_value $n:literal, $d:literal) => {
        concat!("trunc(", $n, "::float8 / ", $d, " * 100 * 10 + 0.5) / 10")
    };
    // A signed float8 rounded half away from zero to the decimals of `f`.
    (round $x:literal, $f:literal) => {
        concat!("trunc(", $x, " * ", $f, " + sign(", $x, ") * 0.5) / ", $f)
    };
    // The catalog name of an entity, else its id (docs/dashboard-types.md 4). `id` must be qualified:
    // catalog_entities has an `offer_id` column of its own.
    (name $entity:literal, $id:literal) => {
        concat!("COALESCE((SELECT name FROM catalog_entities c WHERE ", sql!(catalog $entity, $id), "), ", $id, ")")
    };
    (catalog $entity:literal, $id:literal) => {
        concat!("c.tenant_id = $1 AND c.entity = '", $entity, "' AND c.entity_id = ", $id, " AND NOT c.deleted")
    };
    (since) => {
        "to_char($2::date, 'YYYY-MM-DD\"T00:00:00.000Z\"')"
    };
    (period) => {
        concat!("jsonb_build_object('days', $3::date - $2::date + 1, 'since', ", sql!(since), ")")
    };
    // Every date of the window, as rows `d`.
    (dates) => {
        "(SELECT $2::date + i AS d FROM generate_series(0, $3::date - $2::date) i)"
    };
    // Every entry of trace t's four arrays: k = 0 qualification, 1 contact policy, 2 scoring,
    // 3 selected; v the entry; r its rank when it is a scoring entry.
    (entries) => {
        "(SELECT 0 AS k, v, NULL::int AS r FROM jsonb_array_elements(COALESCE(t.doc->'qualificationResults', '[]')) v
          UNION ALL SELECT 1, v, NULL FROM jsonb_array_elements(COALESCE(t.doc->'contactPolicyResults', '[]')) v
          UNION ALL SELECT 2, v, (v->>'rank')::int FROM jsonb_array_elements(t.doc->'scoringResults') v
          UNION ALL SELECT 3, v, NULL FROM jsonb_array_elements(t.doc->'selectedOffers') v) e"
    };
    // Successes and trials of the current (from $2) and baseline windows: x1, n1, x0, n0.
    (split) => {
        "sum(conv) FILTER (WHERE d >= $2::date), sum(imp) FILTER (WHERE d >= $2::date),
         sum(conv) FILTER (WHERE d < $2::date), sum(imp) FILTER (WHERE d < $2::date)"
    };
    // N, the window's length in days (anomaly_candidates' baseline has the same length).
    (n) => {
        "($3::date - $2::date + 1)"
    };
}

/// One query per dashboard type, in `TYPES` order. (SQL laid out by hand: rustfmt would split
/// every `concat!` piece onto its own line.)
#[rustfmt::skip]
pub fn queries() -> Vec<RawQuery> {
    let q = |kind, sql| RawQuery { kind, sql };
    vec![
        // Catalog counts only: there is nothing event-derived to compute.
        q("summary", "SELECT jsonb_build_object(
            'activeOffers', count(*) FILTER (WHERE entity = 'offer' AND status = 'active'),
            'activeChannels', count(*) FILTER (WHERE entity = 'channel' AND status = 'active'),
            'activeExperiments', count(*) FILTER (WHERE entity = 'experiment' AND status = 'running'),
            'totalJourneys', count(*) FILTER (WHERE entity = 'journey'),
            'activeTriggers', count(*) FILTER (WHERE entity = 'trigger' AND status = 'active'),
            'pendingApprovals', count(*) FILTER (WHERE entity = 'approval' AND status = 'pending'))
          FROM catalog_entities WHERE tenant_id = $1 AND NOT deleted AND $2::date <= $3::date"),
        q("acceptance_rate", concat!("WITH s AS (
            SELECT offer_id, ", sql!(counts), ", count(*) FILTER (WHERE outcome IN ('reject', 'dismiss')) AS neg
              FROM raw.interactions WHERE ", sql!(window "occurred_at"), " GROUP BY offer_id)
          SELECT jsonb_build_object('data', COALESCE(jsonb_agg(jsonb_build_object('offerId', s.offer_id,
                   'offerName', ", sql!(name "offer", "s.offer_id"), ", 'impressions', imp, 'positive', conv,
                   'negative', neg, 'acceptanceRate', ", sql!(rate "conv", "imp", "1e4"), ")
                   ORDER BY imp DESC, s.offer_id), '[]'), 'total', count(*), 'period', ", sql!(period), ") FROM s")),
        q("offer_performance", concat!("WITH s AS (
            SELECT offer_id, ", sql!(counts), ", sum(revenue) AS rev
              FROM raw.interactions WHERE ", sql!(window "occurred_at"), " GROUP BY offer_id),
          top AS (
            SELECT o.entity_id AS id, COALESCE(o.name, o.entity_id) AS name, COALESCE(o.priority, 0) AS priority,
                   (SELECT count(*) FROM catalog_entities c WHERE c.tenant_id = $1 AND c.entity = 'creative'
                       AND NOT c.deleted AND c.offer_id = o.entity_id) AS creatives,
                   COALESCE(s.imp, 0) AS imp, COALESCE(s.conv, 0) AS conv, COALESCE(s.rev, 0) AS rev
              FROM catalog_entities o LEFT JOIN s ON s.offer_id = o.entity_id
             WHERE o.tenant_id = $1 AND o.entity = 'offer' AND NOT o.deleted AND o.status = 'active'
             ORDER BY conv DESC, imp DESC, id LIMIT 20)
          SELECT jsonb_build_object('data', COALESCE(jsonb_agg(jsonb_build_object('offerId', id, 'name', name,
                   'priority', priority, 'creativeCount', creatives, 'impressions', imp, 'conversions', conv,
                   'revenue', round(rev, 2), 'conversionRate', ", sql!(pct "conv", "imp"), ")
                   ORDER BY conv DESC, imp DESC, id), '[]')) FROM top")),
        q("channel_effectiveness", concat!("WITH s AS (
            SELECT channel_id, ", sql!(counts), " FROM raw.interactions
             WHERE ", sql!(window "occurred_at"), " GROUP BY channel_id),
          k AS (SELECT channel_id FROM s UNION SELECT entity_id FROM catalog_entities
                 WHERE tenant_id = $1 AND entity = 'channel' AND NOT deleted AND status = 'active'),
          r AS (SELECT k.channel_id, COALESCE(s.imp, 0) AS imp, COALESCE(s.conv, 0) AS conv
                  FROM k LEFT JOIN s USING (channel_id))
          SELECT jsonb_build_object('data', COALESCE(jsonb_agg(jsonb_build_object('channelId', r.channel_id,
                   'channelName', ", sql!(name "channel", "r.channel_id"), ", 'impressions', imp, 'conversions', conv,
                   'effectiveness', ", sql!(pct "conv", "imp"), ") ORDER BY imp DESC, r.channel_id), '[]')) FROM r")),
        // All-time spend: the window binds only take part in a trivial condition.
        q("budget_burn", concat!("WITH s AS (
            SELECT offer_id, sum(cost) AS spent FROM raw.interactions
             WHERE tenant_id = $1 AND $2::date <= $3::date GROUP BY offer_id),
          r AS (SELECT o.entity_id AS id, COALESCE(o.name, o.entity_id) AS name, o.budget_allocated_micros AS micros,
                       o.budget_allocated_micros / 1e6 AS alloc, COALESCE(s.spent, 0) AS spent
                  FROM catalog_entities o LEFT JOIN s ON s.offer_id = o.entity_id
                 WHERE o.tenant_id = $1 AND o.entity = 'offer' AND NOT o.deleted AND o.budget_allocated_micros > 0)
          SELECT jsonb_build_object('data', COALESCE(jsonb_agg(jsonb_build_object('offerId', id, 'offerName', name,
                   'allocated', round(alloc, 2), 'spent', round(spent, 2),
                   'remaining', round(greatest(alloc - spent, 0), 2),
                   'burnRate', ", sql!(pct "(spent * 1e6)", "micros"), ")
                   ORDER BY spent / alloc DESC, id), '[]')) FROM r")),
        // Catalog counts only.
        q("funnel", "SELECT jsonb_build_object('stages', jsonb_build_array(
            jsonb_build_object('label', 'Total Offers', 'count', count(*) FILTER (WHERE entity = 'offer')),
            jsonb_build_object('label', 'Active Offers', 'count', count(*) FILTER (WHERE active)),
            jsonb_build_object('label', 'With Creatives', 'count', count(*) FILTER (WHERE active AND has_creative)),
            jsonb_build_object('label', 'Creatives', 'count', count(*) FILTER (WHERE entity = 'creative'))))
          FROM (SELECT entity, entity = 'offer' AND status = 'active' AS active,
                       EXISTS (SELECT 1 FROM catalog_entities c WHERE c.tenant_id = $1 AND c.entity = 'creative'
                                  AND NOT c.deleted AND c.offer_id = o.entity_id) AS has_creative
                  FROM catalog_entities o WHERE tenant_id = $1 AND NOT deleted AND $2::date <= $3::date) x"),
        q("attribution_summary", concat!("WITH a AS (
            SELECT model, conversion_id, value FROM raw.attributions WHERE ", sql!(window "occurred_at"), "),
          m AS (SELECT model, count(*) AS n, sum(value) AS v FROM a GROUP BY model)
          SELECT jsonb_build_object(
            'data', (SELECT COALESCE(jsonb_agg(jsonb_build_object('model', model, 'conversions', n,
                       'totalValue', round(v, 2), 'avgValue', trunc((v * 1e6)::float8 / n / 1e6 * 1e2 + 0.5) / 1e2)
                       ORDER BY n DESC, model), '[]') FROM m),
            'totalConversions', (SELECT count(DISTINCT conversion_id) FROM a))")),
        q("daily_trend", concat!("WITH s AS (
            SELECT occurred_at::date AS d, ", sql!(counts), " FROM raw.interactions
             WHERE ", sql!(window "occurred_at"), " GROUP BY 1)
          SELECT jsonb_build_object('data', jsonb_agg(jsonb_build_object('name', to_char(d, 'Mon FMDD'),
                   'impressions', COALESCE(imp, 0), 'conversions', COALESCE(conv, 0)) ORDER BY d))
            FROM ", sql!(dates), " g LEFT JOIN s USING (d)")),
        // Default: no modelId. AUC per date over all models (mean of micro-units, as the views
        // keep it); the features of the latest evaluation.
        q("model_metrics_trend", concat!("WITH m AS (SELECT * FROM raw.model_metrics WHERE tenant_id = $1),
          latest AS (SELECT model_name, feature_importance FROM m ORDER BY evaluated_at DESC, id DESC LIMIT 1),
          auc AS (SELECT evaluated_at::date AS d, sum(round(auc * 1e6))::float8 / count(*) / 1e6 AS auc
                    FROM m WHERE ", sql!(window "evaluated_at"), " GROUP BY 1),
          f AS (SELECT f FROM latest, jsonb_array_elements(feature_importance) f
                 ORDER BY (f->>'value')::float8 DESC, f->>'name' LIMIT 20)
          SELECT jsonb_build_object(
            'aucTrend', (SELECT COALESCE(jsonb_agg(jsonb_build_object('name', to_char(d, 'Mon FMDD'),
                           'auc', trunc(auc * 1e4 + 0.5) / 1e4) ORDER BY d), '[]') FROM auc),
            'featureImportance', (SELECT COALESCE(jsonb_agg(f ORDER BY (f->>'value')::float8 DESC, f->>'name'), '[]')
                                    FROM f),
            'modelCount', (SELECT count(DISTINCT model_id) FROM m), 'modelName', (SELECT model_name FROM latest))")),
        // Exact percentile_disc of the rounded milliseconds. The views' HdrHistogram (3
        // significant digits) answers the same below 2048 ms; above, it reports the highest
        // value of the value's bucket (≤ 0.1 % higher). Both take rank ceil(q·n).
        q("latency_trend", concat!("WITH t AS (
            SELECT created_at::date AS d, floor(total_duration_ms + 0.5) AS ms FROM raw.traces
             WHERE ", sql!(window "created_at"), "),
          per_day AS (SELECT d, percentile_disc(0.5) WITHIN GROUP (ORDER BY ms) AS p50,
                             percentile_disc(0.99) WITHIN GROUP (ORDER BY ms) AS p99 FROM t GROUP BY d),
          o AS (SELECT count(*) AS n, max(ms) AS mx,
                       percentile_disc(ARRAY[0.5, 0.9, 0.99, 0.999]) WITHIN GROUP (ORDER BY ms) AS p FROM t)
          SELECT jsonb_build_object(
            'data', (SELECT jsonb_agg(jsonb_build_object('name',
                       CASE WHEN $3::date - $2::date < 7 THEN to_char(d, 'Dy') ELSE to_char(d, 'Mon FMDD') END,
                       'p50', COALESCE(p50, 0), 'p99', COALESCE(p99, 0)) ORDER BY d)
                       FROM ", sql!(dates), " g LEFT JOIN per_day USING (d)),
            'hasRealData', n > 0,
            'overall', jsonb_build_object('count', n, 'p50', COALESCE(p[1], 0), 'p90', COALESCE(p[2], 0),
                         'p99', COALESCE(p[3], 0), 'p999', COALESCE(p[4], 0), 'max', COALESCE(mx, 0))) FROM o")),
        // Default groupBy = channel: per channel its offers, top 20 by conversions, impressions.
        q("offer_performance_grouped", concat!("WITH s AS (
            SELECT channel_id AS g, offer_id, ", sql!(counts), ", sum(revenue) AS rev FROM raw.interactions
             WHERE ", sql!(window "occurred_at"), " GROUP BY 1, 2),
          r AS (SELECT s.*, sum(imp) OVER (PARTITION BY g) AS total,
                       row_number() OVER (PARTITION BY g ORDER BY conv DESC, imp DESC, offer_id) AS rn FROM s),
          grp AS (SELECT g, total, jsonb_agg(jsonb_build_object('offerId', r.offer_id,
                           'name', ", sql!(name "offer", "r.offer_id"), ", 'impressions', imp, 'conversions', conv,
                           'revenue', round(rev, 2), 'conversionRate', ", sql!(pct "conv", "imp"), ")
                           ORDER BY rn) AS offers
                    FROM r WHERE rn <= 20 GROUP BY g, total)
          SELECT jsonb_build_object('groups', COALESCE(jsonb_agg(jsonb_build_object(
                   'groupName', ", sql!(name "channel", "grp.g"), ", 'groupId', g, 'offers', offers)
                   ORDER BY total DESC, g), '[]'), 'groupBy', 'channel') FROM grp")),
        q("revenue_trend", concat!("WITH s AS (
            SELECT occurred_at::date AS d, sum(revenue) AS rev FROM raw.interactions
             WHERE ", sql!(window "occurred_at"), " GROUP BY 1)
          SELECT jsonb_build_object('data', jsonb_agg(jsonb_build_object('name', to_char(d, 'Mon FMDD'),
                   'revenue', round(COALESCE(rev, 0), 2)) ORDER BY d), 'hasRealData', count(s.d) > 0)
            FROM ", sql!(dates), " g LEFT JOIN s USING (d)")),
        // Active now: created, never lifted, not expired; the last create (arrival order) holds
        // the fields. `days` is ignored (trivial window condition).
        q("policy_impact", "WITH s AS (
            SELECT bool_or(op = 'create') AS created, bool_or(op = 'lift') AS lifted,
                   (array_agg(policy_type ORDER BY seq DESC) FILTER (WHERE op = 'create'))[1] AS policy_type,
                   (array_agg(expires_at ORDER BY seq DESC) FILTER (WHERE op = 'create'))[1] AS expires_at
              FROM raw.suppressions WHERE tenant_id = $1 AND $2::date <= $3::date GROUP BY suppression_id),
          a AS (SELECT policy_type, count(*) AS n FROM s
                 WHERE created AND NOT lifted AND (expires_at IS NULL OR expires_at > now() AT TIME ZONE 'UTC')
                 GROUP BY policy_type)
          SELECT jsonb_build_object('data', COALESCE(jsonb_agg(jsonb_build_object('policyType', policy_type,
                   'count', n) ORDER BY n DESC, policy_type), '[]'), 'totalActive', COALESCE(sum(n), 0)) FROM a"),
        // Default: no groupBy, so dimensionBuckets is empty.
        q("score_distribution", concat!("WITH b AS (
            SELECT least(floor(greatest(least((e->>'score')::float8, 1), 0) * 10), 9)::int AS b, count(*) AS n
              FROM raw.traces t, jsonb_array_elements(t.doc->'scoringResults') e
             WHERE ", sql!(window "t.created_at"), " GROUP BY 1)
          SELECT jsonb_build_object('data', jsonb_agg(jsonb_build_object(
                   'name', to_char(i / 10.0, 'FM0.0') || '-' || to_char((i + 1) / 10.0, 'FM0.0'),
                   'count', COALESCE(n, 0)) ORDER BY i),
                 'totalScores', COALESCE(sum(n), 0), 'hasRealData', COALESCE(sum(n), 0) > 0,
                 'groupBy', NULL::text, 'dimensionBuckets', '[]'::jsonb)
            FROM generate_series(0, 9) i LEFT JOIN b ON b.b = i")),
        q("degraded_scoring", concat!("SELECT jsonb_build_object('degradedCount', count(*) FILTER (WHERE degraded),
            'totalCount', count(*), 'days', $3::date - $2::date + 1, 'hasData', count(*) > 0)
          FROM raw.traces WHERE ", sql!(window "created_at"))),
        // Per trace, its candidates (any of the four arrays) with flags and rank counts; then
        // summed per offer.
        q("selection_frequency", concat!("WITH p AS (
            SELECT x.* FROM raw.traces t, LATERAL (
              SELECT e.v->>'offerId' AS o, bool_or(e.k = 2) AS scored, bool_or(e.k = 3) AS selected,
                     sum(e.r) AS rank_sum, count(e.r) AS rank_n,
                     count(*) FILTER (WHERE r = 1) AS r1, count(*) FILTER (WHERE r = 2) AS r2,
                     count(*) FILTER (WHERE r = 3) AS r3, count(*) FILTER (WHERE r = 4) AS r4,
                     count(*) FILTER (WHERE r = 5) AS r5, count(*) FILTER (WHERE r = 6) AS r6,
                     count(*) FILTER (WHERE r = 7) AS r7, count(*) FILTER (WHERE r = 8) AS r8,
                     count(*) FILTER (WHERE r = 9) AS r9, count(*) FILTER (WHERE r = 10) AS r10
                FROM ", sql!(entries), " GROUP BY 1) x
             WHERE ", sql!(window "t.created_at"), "),
          f AS (SELECT o, count(*) AS el, count(*) FILTER (WHERE scored) AS sc, count(*) FILTER (WHERE selected) AS sel,
                       sum(rank_sum) AS rank_sum, sum(rank_n) AS rank_n,
                       jsonb_build_array(sum(r1), sum(r2), sum(r3), sum(r4), sum(r5), sum(r6), sum(r7), sum(r8),
                                         sum(r9), sum(r10)) AS ranks
                  FROM p GROUP BY o)
          SELECT jsonb_build_object('data', COALESCE(jsonb_agg(jsonb_build_object('offerId', o,
                   'offerName', ", sql!(name "offer", "f.o"), ", 'eligibleCount', el, 'scoredCount', sc,
                   'selectedCount', sel, 'selectionRate', ", sql!(rate "sel", "el", "1e3"), ",
                   'avgRank', CASE WHEN rank_n > 0 THEN ", sql!(rate "rank_sum", "rank_n", "1e1"), " END,
                   'rankDistribution', ranks) ORDER BY sel DESC, el DESC, o), '[]'),
                 'totalTraces', (SELECT count(*) FROM raw.traces WHERE ", sql!(window "created_at"), "),
                 'period', ", sql!(period), ") FROM f")),
        // Baseline = the N dates before the window. Means and the two-pass sample deviation are
        // summed in date order in float8, as the API does in f64, so that equal |z| ties order
        // the same on both sides.
        q("anomaly_candidates", concat!("WITH i AS (
            SELECT occurred_at::date AS d, offer_id, channel_id, ", sql!(counts), ", sum(revenue) AS rev
              FROM raw.interactions WHERE tenant_id = $1 AND occurred_at >= $2::date - ", sql!(n), "
               AND occurred_at < $3::date + 1 GROUP BY 1, 2, 3),
          props (metric, dim, key, x1, n1, x0, n0) AS (
            SELECT 'acceptance_rate', 'overall', NULL, ", sql!(split), " FROM i
            UNION ALL SELECT 'acceptance_rate', 'offer', offer_id, ", sql!(split), " FROM i GROUP BY offer_id
            UNION ALL SELECT 'acceptance_rate', 'channel', channel_id, ", sql!(split), " FROM i GROUP BY channel_id
            UNION ALL SELECT 'degraded_scoring_rate', 'overall', NULL,
                count(*) FILTER (WHERE degraded AND created_at >= $2::date), count(*) FILTER (WHERE created_at >= $2),
                count(*) FILTER (WHERE degraded AND created_at < $2::date), count(*) FILTER (WHERE created_at < $2)
              FROM raw.traces WHERE tenant_id = $1 AND created_at >= $2::date - ", sql!(n), "
               AND created_at < $3::date + 1),
          pz AS (SELECT metric, dim, key, x0::float8 / n0::float8 AS base, x1::float8 / n1::float8 AS cur,
                        sqrt(p * (1 - p) * (1 / n1::float8 + 1 / n0::float8)) AS den
                   FROM props, LATERAL (SELECT (x1 + x0)::float8 / (n1 + n0)::float8 AS p) pooled
                  WHERE n1 >= 30 AND n0 >= 30),
          rs AS (SELECT o.offer_id, dd.d, COALESCE(sum(i.rev), 0)::float8 AS v
                   FROM (SELECT DISTINCT offer_id FROM i) o
                  CROSS JOIN (SELECT $2::date - ", sql!(n), " + k AS d
                                FROM generate_series(0, 2 * ", sql!(n), " - 1) k) dd
                   LEFT JOIN i ON i.offer_id = o.offer_id AND i.d = dd.d GROUP BY 1, 2),
          m AS (SELECT offer_id, sum(v ORDER BY d) FILTER (WHERE d < $2::date) / ", sql!(n), " AS base,
                       sum(v ORDER BY d) FILTER (WHERE d >= $2::date) / ", sql!(n), " AS cur FROM rs GROUP BY 1),
          rv AS (SELECT offer_id, base, cur, sqrt(sum((v - base) * (v - base) ORDER BY d) FILTER (WHERE d < $2::date)
                          / NULLIF(", sql!(n), " - 1, 0)) / sqrt(", sql!(n), "::float8) AS se
                   FROM m JOIN rs USING (offer_id) GROUP BY 1, 2, 3),
          c AS (SELECT metric, dim, key, base, cur, CASE WHEN den > 0 THEN (cur - base) / den END AS z FROM pz
                UNION ALL SELECT 'revenue', 'offer', offer_id, base, cur, CASE WHEN se > 0 THEN (cur - base) / se END
                  FROM rv WHERE base <> 0 OR cur <> 0),
          s AS (SELECT c.*, dp, CASE WHEN metric = 'revenue' THEN 1e2 ELSE 1e4 END::float8 AS f, greatest(
                   CASE WHEN abs(z) >= 4 THEN 3 WHEN abs(z) >= 3 THEN 2 WHEN abs(z) >= 2 THEN 1 ELSE 0 END,
                   CASE WHEN abs(dp) >= 50 THEN 3 WHEN abs(dp) >= 30 THEN 2 WHEN abs(dp) >= 15 THEN 1 ELSE 0 END) AS sev
                  FROM c, LATERAL (SELECT CASE WHEN base <> 0 THEN (cur - base) / base * 100 END AS dp) d)
          SELECT jsonb_build_object('data', COALESCE(jsonb_agg(jsonb_build_object('metric', metric, 'dimension', dim,
                   'dimensionKey', key, 'dimensionName', CASE WHEN key IS NOT NULL THEN COALESCE((SELECT name
                     FROM catalog_entities e WHERE e.tenant_id = $1 AND e.entity = dim AND e.entity_id = key
                      AND NOT e.deleted), key) END,
                   'baseline', ", sql!(round "base", "f"), ", 'current', ", sql!(round "cur", "f"), ",
                   'deltaPct', ", sql!(round "dp", "10"), ", 'zscore', ", sql!(round "z", "10"), ",
                   'severity', (ARRAY['info', 'warning', 'critical'])[sev])
                   ORDER BY sev DESC, abs(COALESCE(z, 0)) DESC, metric, dim, key NULLS FIRST), '[]'),
                 'period', jsonb_build_object('currentDays', ", sql!(n), ", 'baselineDays', ", sql!(n), ",
                   'since', ", sql!(since), ")) FROM s WHERE sev > 0")),
        // The bench's default offer: the standard workload's `off_007` (reads::WHY_NOT_OFFER).
        // Per trace: the offer's flags, its scoring entries, and the decision's winner (the
        // selected entry with the lowest rank) when it was scored but not selected.
        q("why_not_ranked", concat!("WITH p AS MATERIALIZED (
            SELECT x.*, CASE WHEN n = 0 OR selected THEN NULL WHEN q THEN 'q' WHEN c THEN 'c'
                             WHEN scored THEN 'low' ELSE 'nr' END AS miss
              FROM raw.traces t, LATERAL (
              SELECT count(*) AS n, bool_or(e.k = 0 AND NOT (e.v->>'passed')::bool) AS q,
                     bool_or(e.k = 1 AND (e.v->>'blocked')::bool) AS c, bool_or(e.k = 2) AS scored,
                     bool_or(e.k = 3) AS selected, array_agg(e.r) FILTER (WHERE e.k = 2) AS ranks,
                     array_agg((e.v->>'score')::numeric) FILTER (WHERE e.k = 2) AS scores,
                     CASE WHEN bool_or(e.k = 2) AND NOT bool_or(e.k = 3) THEN
                       (SELECT w.v->>'offerId'
                          FROM jsonb_array_elements(t.doc->'selectedOffers') WITH ORDINALITY w (v, i)
                         ORDER BY (w.v->>'rank')::int, w.i LIMIT 1) END AS winner
                FROM ", sql!(entries), " WHERE e.v->>'offerId' = 'off_007') x
             WHERE ", sql!(window "t.created_at"), "),
          beaten AS (SELECT winner, count(*) AS n FROM p WHERE miss = 'low' AND winner IS NOT NULL
                      GROUP BY winner ORDER BY n DESC, winner LIMIT 5)
          SELECT jsonb_build_object('offerId', 'off_007', 'offerName', ", sql!(name "offer", "'off_007'"), ",
            'timesEligible', count(*) FILTER (WHERE n > 0), 'timesSelected', count(*) FILTER (WHERE selected),
            'missRate', ", sql!(rate "count(miss)", "count(*) FILTER (WHERE n > 0)", "1e3"), ",
            'missReasons', jsonb_build_object('scoredTooLow', count(*) FILTER (WHERE miss = 'low'),
              'filteredByContactPolicy', count(*) FILTER (WHERE miss = 'c'),
              'filteredByQualification', count(*) FILTER (WHERE miss = 'q'),
              'beatenBy', (SELECT COALESCE(jsonb_agg(jsonb_build_object('offerId', winner,
                             'offerName', ", sql!(name "offer", "beaten.winner"), ", 'count', n)
                             ORDER BY n DESC, winner),
                             '[]') FROM beaten),
              'notRanked', count(*) FILTER (WHERE miss = 'nr')),
            'rankDistribution', (SELECT jsonb_agg(COALESCE(n, 0) ORDER BY i) FROM generate_series(1, 10) i
                                   LEFT JOIN (SELECT r, count(*) AS n FROM p, unnest(ranks) r GROUP BY r) x ON x.r = i),
            'avgScore', (SELECT ", sql!(round "(sum(round(s * 1e6))::float8 / count(*) / 1e6)", "1e3"), "
                           FROM p, unnest(scores) s),
            'period', ", sql!(period), ", 'sampleSize', count(*), 'sampleCap', NULL::int) FROM p")),
    ]
}
