//! What must hold once a case's batches committed: every message is a dead letter with a
//! documented reason (one its values give) or applied (seen in the database), never both; the
//! bookkeeping matches the batches; and the sums are exact, the extreme ones included.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{Duration, NaiveDate, Utc};
use consumers::apply::raw_traces::sampled;
use consumers::batch::{Batch, DeadLetter};
use consumers::events::{utc_day, CatalogOp, Event, MembershipOp, Outcome, TopicKind};
use consumers::units::money::micros;
use sqlx::PgPool;

use super::events::{Ctx, Msg};
use super::numbers::{Num, Why, DOCUMENTED};
use super::scenario::*;

type Res = Result<(), String>;

fn db(e: sqlx::Error) -> String {
    format!("a check query failed: {e}")
}

/// A message for a failure report: topic, key and payload, cut.
pub fn show(m: &Msg) -> String {
    let payload = String::from_utf8_lossy(&m.payload);
    let cut: String = payload.chars().take(1_500).collect();
    let key = m.key.as_ref().map(|k| String::from_utf8_lossy(&k[..k.len().min(120)]).into_owned());
    format!("{} message, key {key:?}, {} bytes: {cut}", m.kind.default_name(), m.payload.len())
}

/// Every message's fate against its expected verdict, in the batches and in the database.
pub async fn verdicts(pool: &PgPool, msgs: &[Msg], at: &[(Arc<str>, i64)], batches: &[Batch]) -> Res {
    let dead: HashMap<(&str, i64), &DeadLetter> =
        batches.iter().flat_map(|b| &b.dead_letters).map(|d| ((d.topic.as_str(), d.offset), d)).collect();
    let entries: HashMap<(&str, i64), &Event> =
        batches.iter().flat_map(|b| &b.entries).map(|e| ((&*e.origin.topic, e.origin.offset), &e.event)).collect();
    for (m, (topic, offset)) in msgs.iter().zip(at) {
        let (dead, entry) = (dead.get(&(&**topic, *offset)), entries.get(&(&**topic, *offset)));
        if dead.is_some() == entry.is_some() {
            return Err(format!("the batch holds {topic}@{offset} as both or neither entry and dead letter"));
        }
        match dead {
            Some(d) => {
                let (reason, detail) = (d.rejection.reason.code(), &d.rejection.detail);
                if !DOCUMENTED.contains(&reason) || !m.why.contains(reason) {
                    return Err(format!(
                        "dead-lettered as {reason} ({detail}) where the documented verdict is {:?} \
                         (empty: applied): {}",
                        m.why,
                        show(m)
                    ));
                }
            }
            None if !m.why.is_empty() => {
                return Err(format!("applied where the documented verdict is a dead letter {:?}: {}", m.why, show(m)));
            }
            None => {}
        }
        let stored = stored(pool, m, entry.copied()).await?;
        if stored == dead.is_some() {
            let state = if stored { "both dead-lettered and applied" } else { "neither applied nor dead-lettered" };
            return Err(format!("{state}: {}", show(m)));
        }
    }
    Ok(())
}

/// The columns of a catalog entity's row that a change sets.
#[derive(Debug, Clone, Copy, PartialEq, sqlx::FromRow)]
struct CatalogRow {
    version: Option<i64>,
    deleted: bool,
    priority: Option<i64>,
    budget_allocated_micros: Option<i64>,
}

/// Whether the message's event is in the database: its dedup key, or for a catalog change
/// its entity row (whose columns must then hold the change's values exactly).
async fn stored(pool: &PgPool, m: &Msg, event: Option<&Event>) -> Result<bool, String> {
    if m.kind != TopicKind::Catalog {
        return sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM dedup_keys WHERE tenant_id = $1 AND key = dedup_key($1, $2, $3))",
        )
        .bind(&m.tenant)
        .bind(m.kind.code())
        .bind(&m.id)
        .fetch_one(pool)
        .await
        .map_err(db);
    }
    let row: Option<CatalogRow> = sqlx::query_as(
        "SELECT version, deleted, priority, budget_allocated_micros FROM catalog_entities
          WHERE tenant_id = $1 AND entity = $2 AND entity_id = $3",
    )
    .bind(&m.tenant)
    .bind(&m.entity)
    .bind(&m.id)
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    if let (Some(row), Some(Event::Catalog(c))) = (row, event) {
        let deleted = c.op == CatalogOp::Delete;
        let f = if deleted { Default::default() } else { c.fields().map_err(|e| format!("{e:?}"))? };
        let want = CatalogRow {
            version: c.version,
            deleted,
            priority: f.priority,
            budget_allocated_micros: f.budget_allocated_micros,
        };
        if row != want {
            return Err(format!("catalog row {row:?}, the change says {want:?}: {}", show(m)));
        }
    }
    Ok(row.is_some())
}

/// The dead letters and offsets in the database are exactly the batches'.
pub async fn bookkeeping(pool: &PgPool, at: &[(Arc<str>, i64)], batches: &[Batch]) -> Res {
    let topics: Vec<String> = at.iter().map(|(t, _)| t.to_string()).collect::<BTreeSet<_>>().into_iter().collect();
    let rows: Vec<(String, i64, String)> =
        sqlx::query_as(r#"SELECT topic, "offset", reason FROM dead_letters WHERE topic = ANY($1)"#)
            .bind(&topics)
            .fetch_all(pool)
            .await
            .map_err(db)?;
    let want: Vec<(String, i64, String)> = batches
        .iter()
        .flat_map(|b| &b.dead_letters)
        .map(|d| (d.topic.clone(), d.offset, d.rejection.reason.code().to_owned()))
        .collect();
    if rows.iter().collect::<BTreeSet<_>>() != want.iter().collect() || rows.len() != want.len() {
        return Err(format!("dead_letters holds {rows:?}, the batches {want:?}"));
    }
    let offsets: BTreeMap<String, i64> =
        sqlx::query_as("SELECT topic, next_offset FROM consumer_offsets WHERE topic = ANY($1)")
            .bind(&topics)
            .fetch_all(pool)
            .await
            .map_err(db)?
            .into_iter()
            .collect();
    let mut want = BTreeMap::new();
    for (t, o) in at {
        want.insert(t.to_string(), o + 1);
    }
    if offsets != want {
        return Err(format!("consumer_offsets holds {offsets:?}, the batches end at {want:?}"));
    }
    Ok(())
}

/// The batches' events whole (a batch's traces are hollow once folded: read back).
fn applied(batches: &[Batch]) -> impl Iterator<Item = Cow<'_, Event>> {
    batches.iter().flat_map(|b| &b.entries).map(|e| e.whole())
}

fn parse(s: &str) -> Result<i128, String> {
    s.parse().map_err(|_| format!("{s:?} is not an integer of micro-units"))
}

type DayKey = (String, NaiveDate, String, String);

/// `interaction_daily` and `attribution_daily` of the case's tenants, exactly, and the sums of
/// the extreme scenarios.
pub async fn sums(pool: &PgPool, ctx: &Ctx, case: &CaseSpec, batches: &[Batch]) -> Res {
    let tenants = [ctx.tenant.as_str(), ctx.second.as_str()];
    let mut want: BTreeMap<DayKey, ([i64; 6], i128, i128)> = BTreeMap::new();
    let mut attributions: BTreeMap<(String, NaiveDate, String), (i64, i128)> = BTreeMap::new();
    for e in applied(batches) {
        if let Event::Interaction(i) = &*e {
            let key = (i.tenant_id.clone(), utc_day(i.occurred_at), i.offer_id.clone(), i.channel_id.clone());
            let row = want.entry(key).or_default();
            let n = [Outcome::Impression, Outcome::Click, Outcome::Accept, Outcome::Convert, Outcome::Reject];
            row.0[n.iter().position(|o| *o == i.outcome).unwrap_or(5)] += 1;
            row.1 += i128::from(micros(i.revenue)?);
            row.2 += i128::from(micros(i.cost)?);
        }
        if let Event::Attribution(a) = &*e {
            let row = attributions.entry((a.tenant_id.clone(), utc_day(a.occurred_at), a.model.clone())).or_default();
            row.0 += 1;
            row.1 += i128::from(micros(a.value)?);
        }
    }
    type Row = (String, NaiveDate, String, String, i64, i64, i64, i64, i64, i64, String, String);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT tenant_id, day, offer_id, channel_id, impressions, clicks, accepts, converts, rejects, dismisses,
                revenue_micros::text, cost_micros::text
           FROM interaction_daily WHERE tenant_id = ANY($1)",
    )
    .bind(&tenants[..])
    .fetch_all(pool)
    .await
    .map_err(db)?;
    let mut got = BTreeMap::new();
    for (t, d, o, c, a, b, cc, dd, e, f, rev, cost) in rows {
        got.insert((t, d, o, c), ([a, b, cc, dd, e, f], parse(&rev)?, parse(&cost)?));
    }
    if got != want {
        return Err(format!("interaction_daily holds {got:?}, the applied interactions sum to {want:?}"));
    }
    let rows: Vec<(String, NaiveDate, String, i64, String)> = sqlx::query_as(
        "SELECT tenant_id, day, model, events, value_micros::text FROM attribution_daily WHERE tenant_id = ANY($1)",
    )
    .bind(&tenants[..])
    .fetch_all(pool)
    .await
    .map_err(db)?;
    let got =
        rows.into_iter().map(|(t, d, m, n, v)| Ok(((t, d, m), (n, parse(&v)?)))).collect::<Result<_, String>>()?;
    if attributions != got {
        return Err(format!("attribution_daily holds {got:?}, the applied attributions sum to {attributions:?}"));
    }
    extreme_sums(pool, ctx, case, batches).await
}

/// The interactions at the largest amount sum to n × 10^18 micro-units (numeric, beyond any
/// bigint for n ≥ 10), and the hot offer's selection counters to their exact sums: the
/// products of the largest rank and score when the case uses them.
async fn extreme_sums(pool: &PgPool, ctx: &Ctx, case: &CaseSpec, batches: &[Batch]) -> Res {
    let day = utc_day(ctx.now - Duration::minutes(1));
    if case.sums.amount == MAX_AMOUNT {
        let n = case.sums.interactions as i128;
        let max = n * 10i128.pow(18);
        let (revenue, cost, converts): (String, String, i64) = sqlx::query_as(
            "SELECT revenue_micros::text, cost_micros::text, converts FROM interaction_daily
              WHERE tenant_id = $1 AND day = $2 AND offer_id = $3 AND channel_id = $4",
        )
        .bind(&ctx.tenant)
        .bind(day)
        .bind(MAX_OFFER)
        .bind(MAX_CHANNEL)
        .fetch_one(pool)
        .await
        .map_err(db)?;
        let spend: String =
            sqlx::query_scalar("SELECT cost_micros::text FROM offer_spend WHERE tenant_id = $1 AND offer_id = $2")
                .bind(&ctx.tenant)
                .bind(MAX_OFFER)
                .fetch_one(pool)
                .await
                .map_err(db)?;
        if (parse(&revenue)?, parse(&cost)?, i128::from(converts), parse(&spend)?) != (max, max, n, max) {
            return Err(format!(
                "{n} interactions at 10^12: revenue {revenue}, cost {cost}, converts {converts}, spend {spend}; \
                 want {max}"
            ));
        }
    }
    // (rank_sum, rank_n, score_sum_micros, scored, selected) of the hot offer.
    let mut want = (0i64, 0i64, 0i64, 0i64, 0i64);
    for e in applied(batches) {
        if let Event::Trace(t) = &*e {
            let hot: Vec<_> = t.scoring_results.iter().filter(|s| s.offer_id == HOT_OFFER).collect();
            want.0 += hot.iter().map(|s| s.rank).sum::<i64>();
            want.1 += hot.len() as i64;
            want.2 += hot.iter().map(|s| (s.score * 1e6).round() as i64).sum::<i64>();
            want.3 += i64::from(!hot.is_empty());
            want.4 += i64::from(t.selected_offers.iter().any(|s| s.offer_id == HOT_OFFER));
        }
    }
    let got: Option<(i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT rank_sum, rank_n, score_sum_micros, scored, selected FROM selection_daily
          WHERE tenant_id = $1 AND day = $2 AND offer_id = $3",
    )
    .bind(&ctx.tenant)
    .bind(day)
    .bind(HOT_OFFER)
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    if got.unwrap_or_default() != want {
        return Err(format!("selection_daily of {HOT_OFFER}: {got:?}, the applied traces sum to {want:?}"));
    }
    // At the largest rank and score, independently of the decoded events.
    let extreme = |(n, _): &(Num, Why)| *n == Num::F(MAX_SCORE) || *n == Num::F(-MAX_SCORE);
    if case.sums.rank.0 == Num::I(MAX_RANK) && case.sums.scores.iter().all(extreme) {
        let (traces, per) = (case.sums.scores.len() as i64, case.sums.per_trace as i64);
        let micros = (MAX_SCORE * 1e6) as i64 * per;
        let scores: i64 =
            case.sums.scores.iter().map(|(n, _)| if *n == Num::F(MAX_SCORE) { micros } else { -micros }).sum();
        if want != (traces * per * MAX_RANK, traces * per, scores, traces, traces) {
            return Err(format!("{traces} traces of {per} entries at rank {MAX_RANK}, score ±{MAX_SCORE}: {want:?}"));
        }
    }
    Ok(())
}

/// The crowd counts in exactly its first `MAX_SEGMENTS` segments (in id order), and the
/// capped scopes are counted; raw traces are stored as the tenant's settings say.
pub async fn scopes_and_traces(pool: &PgPool, ctx: &Ctx, case: &CaseSpec, batches: &[Batch], capped: u64) -> Res {
    let segments: BTreeSet<String> = applied(batches)
        .filter_map(|e| match &*e {
            Event::Membership(m)
                if m.tenant_id == ctx.tenant && m.customer_id == CROWD && m.op == MembershipOp::Add =>
            {
                Some(m.segment_id.clone())
            }
            _ => None,
        })
        .collect();
    let scoped: BTreeSet<String> = segments.iter().take(MAX_SEGMENTS).cloned().collect();
    for (table, column, value, events) in [
        ("interaction_segment_daily", "offer_id", CROWD_OFFER, case.crowd.interactions),
        ("trace_segment_daily", "channel_id", CROWD_CHANNEL, case.crowd.traces),
    ] {
        let got: BTreeSet<String> = sqlx::query_scalar(&format!(
            "SELECT DISTINCT segment_id FROM {table} WHERE tenant_id = $1 AND {column} = $2"
        ))
        .bind(&ctx.tenant)
        .bind(value)
        .fetch_all(pool)
        .await
        .map_err(db)?
        .into_iter()
        .collect();
        let want = if events > 0 { scoped.clone() } else { BTreeSet::new() };
        if got != want {
            return Err(format!("{table}: the crowd counts in {got:?}, want its first {MAX_SEGMENTS} of {segments:?}"));
        }
    }
    let excess = segments.len().saturating_sub(MAX_SEGMENTS) * (case.crowd.interactions + case.crowd.traces);
    if capped < excess as u64 {
        return Err(format!("{capped} segment scopes reported capped, the crowd alone has {excess}"));
    }

    let oldest = Utc::now().date_naive() - Duration::days(TRACE_RETENTION_DAYS - 1);
    let mut settings: HashMap<String, (bool, f64)> = HashMap::new();
    let mut want: BTreeMap<String, i64> = BTreeMap::new();
    for batch in batches {
        // The batch's catalog changes are applied before its raw traces are sampled.
        for e in batch.entries.iter().map(|e| &e.event) {
            if let Event::Catalog(c) = e {
                if c.entity == "tenant_settings" && c.id == c.tenant_id {
                    let data = c.data.as_ref().filter(|_| c.op == CatalogOp::Upsert);
                    let enabled = data.and_then(|d| d.get("decisionTraceEnabled")?.as_bool()).unwrap_or(true);
                    let rate = data.and_then(|d| d.get("decisionTraceSampleRate")?.as_f64()).unwrap_or(1.0);
                    settings.insert(c.tenant_id.clone(), (enabled, rate));
                }
            }
        }
        for e in batch.entries.iter().map(|e| &e.event) {
            if let Event::Trace(t) = e {
                let (enabled, rate) = settings.get(&t.tenant_id).copied().unwrap_or((true, 1.0));
                if utc_day(t.created_at) >= oldest && enabled && sampled(&t.tenant_id, &t.id, rate) {
                    *want.entry(t.tenant_id.clone()).or_default() += 1;
                }
            }
        }
    }
    let got: BTreeMap<String, i64> =
        sqlx::query_as("SELECT tenant_id, count(*) FROM decision_traces WHERE tenant_id = ANY($1) GROUP BY 1")
            .bind([ctx.tenant.as_str(), ctx.second.as_str()].as_slice())
            .fetch_all(pool)
            .await
            .map_err(db)?
            .into_iter()
            .collect();
    if got != want {
        return Err(format!("raw traces stored per tenant {got:?}, the settings {settings:?} keep {want:?}"));
    }
    Ok(())
}
