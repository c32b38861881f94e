//! Upserts of the counter views and the membership / suppression state.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::{Postgres, Transaction};

use crate::events::Event;
use crate::fold::{suppression_lifted, Delta, InteractionCounts, Memberships};
use crate::units::money::Micros;

/// Stored memberships of the customers whose events are in the batch (one query per batch).
pub(super) async fn load_memberships(
    tx: &mut Transaction<'_, Postgres>,
    events: &[&Event],
) -> Result<Memberships, sqlx::Error> {
    let mut customers = BTreeSet::new();
    for e in events {
        match *e {
            Event::Interaction(i) => customers.insert((i.tenant_id.as_str(), i.customer_id.as_str())),
            Event::Trace(t) => customers.insert((t.tenant_id.as_str(), t.customer_id.as_str())),
            Event::Membership(m) => customers.insert((m.tenant_id.as_str(), m.customer_id.as_str())),
            _ => false,
        };
    }
    let mut out = Memberships::new();
    if customers.is_empty() {
        return Ok(out);
    }
    let (tenants, ids): (Vec<&str>, Vec<&str>) = customers.into_iter().unzip();
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT m.tenant_id, m.customer_id, m.segment_id
           FROM unnest($1::text[], $2::text[]) AS c(tenant_id, customer_id)
           JOIN segment_members m USING (tenant_id, customer_id)",
    )
    .bind(&tenants)
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    for (t, c, s) in rows {
        out.entry((t, c)).or_default().insert(s);
    }
    Ok(out)
}

/// Column arrays of a counter upsert, in key order.
#[derive(Default)]
pub(super) struct CounterColumns {
    impressions: Vec<i64>,
    clicks: Vec<i64>,
    accepts: Vec<i64>,
    converts: Vec<i64>,
    rejects: Vec<i64>,
    dismisses: Vec<i64>,
    revenue: Vec<Micros>,
    cost: Vec<Micros>,
}

impl CounterColumns {
    pub(super) fn push(&mut self, c: &InteractionCounts) {
        self.impressions.push(c.impressions);
        self.clicks.push(c.clicks);
        self.accepts.push(c.accepts);
        self.converts.push(c.converts);
        self.rejects.push(c.rejects);
        self.dismisses.push(c.dismisses);
        self.revenue.push(Micros(c.revenue_micros));
        self.cost.push(Micros(c.cost_micros));
    }

    pub(super) fn bind<'q>(
        &'q self,
        q: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
        q.bind(&self.impressions)
            .bind(&self.clicks)
            .bind(&self.accepts)
            .bind(&self.converts)
            .bind(&self.rejects)
            .bind(&self.dismisses)
            .bind(&self.revenue)
            .bind(&self.cost)
    }
}

/// `SET` list adding the excluded counters to the stored ones.
pub(super) const ADD_COUNTERS: &str =
    "impressions = t.impressions + EXCLUDED.impressions, clicks = t.clicks + EXCLUDED.clicks,
    accepts = t.accepts + EXCLUDED.accepts, converts = t.converts + EXCLUDED.converts,
    rejects = t.rejects + EXCLUDED.rejects, dismisses = t.dismisses + EXCLUDED.dismisses,
    revenue_micros = t.revenue_micros + EXCLUDED.revenue_micros, cost_micros = t.cost_micros + EXCLUDED.cost_micros";

pub(super) const COUNTER_COLUMNS: &str =
    "impressions, clicks, accepts, converts, rejects, dismisses, revenue_micros, cost_micros";

pub(super) async fn apply(tx: &mut Transaction<'_, Postgres>, d: &Delta) -> Result<(), sqlx::Error> {
    if !d.interactions.is_empty() {
        let (mut t, mut day, mut offer, mut channel, mut cols) =
            (vec![], vec![], vec![], vec![], CounterColumns::default());
        for ((tenant, dy, o, c), counts) in &d.interactions {
            t.push(tenant.as_str());
            day.push(*dy);
            offer.push(o.as_str());
            channel.push(c.as_str());
            cols.push(counts);
        }
        let sql = format!(
            "INSERT INTO interaction_daily AS t (tenant_id, day, offer_id, channel_id, {COUNTER_COLUMNS})
             SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::int8[], $6::int8[], $7::int8[],
                                  $8::int8[], $9::int8[], $10::int8[], $11::numeric[], $12::numeric[])
             ON CONFLICT (tenant_id, day, offer_id, channel_id) DO UPDATE SET {ADD_COUNTERS}"
        );
        cols.bind(sqlx::query(&sql).bind(&t).bind(&day).bind(&offer).bind(&channel)).execute(&mut **tx).await?;
    }

    if !d.segment_interactions.is_empty() {
        let (mut t, mut seg, mut day, mut offer, mut channel, mut cols) =
            (vec![], vec![], vec![], vec![], vec![], CounterColumns::default());
        for ((tenant, s, dy, o, c), counts) in &d.segment_interactions {
            t.push(tenant.as_str());
            seg.push(s.as_str());
            day.push(*dy);
            offer.push(o.as_str());
            channel.push(c.as_str());
            cols.push(counts);
        }
        let sql = format!(
            "INSERT INTO interaction_segment_daily AS t (tenant_id, segment_id, day, offer_id, channel_id, {COUNTER_COLUMNS})
             SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::text[], $6::int8[], $7::int8[],
                                  $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::numeric[], $13::numeric[])
             ON CONFLICT (tenant_id, segment_id, day, offer_id, channel_id) DO UPDATE SET {ADD_COUNTERS}"
        );
        cols.bind(sqlx::query(&sql).bind(&t).bind(&seg).bind(&day).bind(&offer).bind(&channel))
            .execute(&mut **tx)
            .await?;
    }

    if !d.traces.is_empty() {
        let (mut t, mut day, mut ch, mut flow, mut n, mut deg) = (vec![], vec![], vec![], vec![], vec![], vec![]);
        for ((tenant, dy, c, f), counts) in &d.traces {
            t.push(tenant.as_str());
            day.push(*dy);
            ch.push(c.as_str());
            flow.push(f.as_str());
            n.push(counts.traces);
            deg.push(counts.degraded);
        }
        sqlx::query(
            "INSERT INTO trace_daily AS t (tenant_id, day, channel_id, decision_flow_id, traces, degraded)
             SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::int8[], $6::int8[])
             ON CONFLICT (tenant_id, day, channel_id, decision_flow_id)
             DO UPDATE SET traces = t.traces + EXCLUDED.traces, degraded = t.degraded + EXCLUDED.degraded",
        )
        .bind(&t)
        .bind(&day)
        .bind(&ch)
        .bind(&flow)
        .bind(&n)
        .bind(&deg)
        .execute(&mut **tx)
        .await?;
    }

    if !d.offer_spend.is_empty() {
        let (mut t, mut o, mut c) = (vec![], vec![], vec![]);
        for ((tenant, offer), cost) in &d.offer_spend {
            t.push(tenant.as_str());
            o.push(offer.as_str());
            c.push(Micros(*cost));
        }
        sqlx::query(
            "INSERT INTO offer_spend AS s (tenant_id, offer_id, cost_micros)
             SELECT * FROM unnest($1::text[], $2::text[], $3::numeric[])
             ON CONFLICT (tenant_id, offer_id) DO UPDATE SET cost_micros = s.cost_micros + EXCLUDED.cost_micros",
        )
        .bind(&t)
        .bind(&o)
        .bind(&c)
        .execute(&mut **tx)
        .await?;
    }

    if !d.attributions.is_empty() {
        let (mut t, mut day, mut m, mut n, mut v) = (vec![], vec![], vec![], vec![], vec![]);
        for ((tenant, dy, model), (events, value)) in &d.attributions {
            t.push(tenant.as_str());
            day.push(*dy);
            m.push(model.as_str());
            n.push(*events);
            v.push(Micros(*value));
        }
        sqlx::query(
            "INSERT INTO attribution_daily AS a (tenant_id, day, model, events, value_micros)
             SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::int8[], $5::numeric[])
             ON CONFLICT (tenant_id, day, model)
             DO UPDATE SET events = a.events + EXCLUDED.events, value_micros = a.value_micros + EXCLUDED.value_micros",
        )
        .bind(&t)
        .bind(&day)
        .bind(&m)
        .bind(&n)
        .bind(&v)
        .execute(&mut **tx)
        .await?;
    }
    apply_model_metrics(tx, d).await?;
    apply_memberships(tx, d).await?;
    apply_suppressions(tx, d).await
}

async fn apply_memberships(tx: &mut Transaction<'_, Postgres>, d: &Delta) -> Result<(), sqlx::Error> {
    if d.memberships.is_empty() {
        return Ok(());
    }
    let segments: BTreeSet<(&str, &str)> = d.memberships.keys().map(|(t, s, _)| (t.as_str(), s.as_str())).collect();
    let (st, ss): (Vec<&str>, Vec<&str>) = segments.into_iter().unzip();
    sqlx::query(
        "INSERT INTO segments_materialized (tenant_id, segment_id)
         SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
    )
    .bind(&st)
    .bind(&ss)
    .execute(&mut **tx)
    .await?;

    // Rows in (tenant, customer, segment) order: the table's key order.
    let mut rows: Vec<(&str, &str, &str, bool)> =
        d.memberships.iter().map(|((t, s, c), m)| (t.as_str(), c.as_str(), s.as_str(), *m)).collect();
    rows.sort_unstable();
    for member in [true, false] {
        let pick: Vec<_> = rows.iter().filter(|r| r.3 == member).collect();
        if pick.is_empty() {
            continue;
        }
        let t: Vec<&str> = pick.iter().map(|r| r.0).collect();
        let c: Vec<&str> = pick.iter().map(|r| r.1).collect();
        let s: Vec<&str> = pick.iter().map(|r| r.2).collect();
        let sql = if member {
            "INSERT INTO segment_members (tenant_id, customer_id, segment_id)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM segment_members m USING unnest($1::text[], $2::text[], $3::text[]) AS r(tenant_id, customer_id, segment_id)
             WHERE m.tenant_id = r.tenant_id AND m.customer_id = r.customer_id AND m.segment_id = r.segment_id"
        };
        sqlx::query(sql).bind(&t).bind(&c).bind(&s).execute(&mut **tx).await?;
    }
    Ok(())
}

/// Suppression state per id, and the active counters per policy type. Each row is locked and
/// read first (key order), so the counter moves exactly when `counted` flips.
async fn apply_suppressions(tx: &mut Transaction<'_, Postgres>, d: &Delta) -> Result<(), sqlx::Error> {
    let mut counts: BTreeMap<(String, String), i64> = BTreeMap::new();
    for ((tenant, id), ops) in &d.suppressions {
        let before: Option<(bool, Option<String>)> = sqlx::query_as(
            "SELECT counted, policy_type FROM suppressions WHERE tenant_id = $1 AND suppression_id = $2 FOR UPDATE",
        )
        .bind(tenant)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
        // The last create carries the fields; a lift anywhere is sticky.
        let create = ops.iter().rev().find(|s| s.op == crate::events::SuppressionOp::Create);
        let (counted, policy_type): (bool, Option<String>) = sqlx::query_as(
            "INSERT INTO suppressions AS s (tenant_id, suppression_id, customer_id, offer_id, channel_id, policy_id,
                                            policy_type, created_at, expires_at, lifted, counted)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, false)
             ON CONFLICT (tenant_id, suppression_id) DO UPDATE SET
                customer_id = COALESCE(EXCLUDED.customer_id, s.customer_id),
                offer_id = COALESCE(EXCLUDED.offer_id, s.offer_id),
                channel_id = COALESCE(EXCLUDED.channel_id, s.channel_id),
                policy_id = COALESCE(EXCLUDED.policy_id, s.policy_id),
                policy_type = COALESCE(EXCLUDED.policy_type, s.policy_type),
                created_at = COALESCE(EXCLUDED.created_at, s.created_at),
                expires_at = CASE WHEN EXCLUDED.created_at IS NULL THEN s.expires_at ELSE EXCLUDED.expires_at END,
                lifted = s.lifted OR EXCLUDED.lifted
             RETURNING created_at IS NOT NULL AND NOT lifted AND (expires_at IS NULL OR expires_at > now()), policy_type",
        )
        .bind(tenant)
        .bind(id)
        .bind(create.map(|c| &c.customer_id))
        .bind(create.and_then(|c| c.offer_id.as_ref()))
        .bind(create.and_then(|c| c.channel_id.as_ref()))
        .bind(create.map(|c| &c.policy_id))
        .bind(create.map(|c| &c.policy_type))
        .bind(create.map(|c| c.created_at))
        .bind(create.and_then(|c| c.expires_at))
        .bind(suppression_lifted(ops))
        .fetch_one(&mut **tx)
        .await?;
        if let Some((true, Some(old_type))) = &before {
            *counts.entry((tenant.clone(), old_type.clone())).or_default() -= 1;
        }
        if counted {
            if let Some(t) = &policy_type {
                *counts.entry((tenant.clone(), t.clone())).or_default() += 1;
            }
        }
        sqlx::query("UPDATE suppressions SET counted = $3 WHERE tenant_id = $1 AND suppression_id = $2")
            .bind(tenant)
            .bind(id)
            .bind(counted)
            .execute(&mut **tx)
            .await?;
    }
    add_suppression_counts(tx, &counts).await
}

/// Adds signed deltas to the active counters, in key order.
pub(crate) async fn add_suppression_counts(
    tx: &mut Transaction<'_, Postgres>,
    counts: &BTreeMap<(String, String), i64>,
) -> Result<(), sqlx::Error> {
    let changed: Vec<_> = counts.iter().filter(|(_, n)| **n != 0).collect();
    if changed.is_empty() {
        return Ok(());
    }
    let t: Vec<&str> = changed.iter().map(|((t, _), _)| t.as_str()).collect();
    let p: Vec<&str> = changed.iter().map(|((_, p), _)| p.as_str()).collect();
    let n: Vec<i64> = changed.iter().map(|(_, n)| **n).collect();
    sqlx::query(
        "INSERT INTO suppression_active_counts AS c (tenant_id, policy_type, active)
         SELECT * FROM unnest($1::text[], $2::text[], $3::int8[])
         ON CONFLICT (tenant_id, policy_type) DO UPDATE SET active = c.active + EXCLUDED.active",
    )
    .bind(&t)
    .bind(&p)
    .bind(&n)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn apply_model_metrics(tx: &mut Transaction<'_, Postgres>, d: &Delta) -> Result<(), sqlx::Error> {
    if !d.model_evals.is_empty() {
        let (mut t, mut day, mut m, mut auc, mut n) = (vec![], vec![], vec![], vec![], vec![]);
        for ((tenant, dy, model), (a, c)) in &d.model_evals {
            t.push(tenant.as_str());
            day.push(*dy);
            m.push(model.as_str());
            auc.push(*a);
            n.push(*c);
        }
        sqlx::query(
            "INSERT INTO model_eval_daily AS e (tenant_id, day, model_id, auc_micros, evals)
             SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::int8[], $5::int8[])
             ON CONFLICT (tenant_id, day, model_id)
             DO UPDATE SET auc_micros = e.auc_micros + EXCLUDED.auc_micros, evals = e.evals + EXCLUDED.evals",
        )
        .bind(&t)
        .bind(&day)
        .bind(&m)
        .bind(&auc)
        .bind(&n)
        .execute(&mut **tx)
        .await?;
    }
    for ((tenant, model), e) in &d.model_latest {
        // Only a later evaluation replaces the stored one (late events do not go back in time).
        sqlx::query(
            "INSERT INTO model_latest AS l (tenant_id, model_id, model_name, evaluated_at, event_id, feature_importance)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (tenant_id, model_id) DO UPDATE SET
                model_name = EXCLUDED.model_name, evaluated_at = EXCLUDED.evaluated_at,
                event_id = EXCLUDED.event_id, feature_importance = EXCLUDED.feature_importance
             WHERE (EXCLUDED.evaluated_at, EXCLUDED.event_id) > (l.evaluated_at, l.event_id)",
        )
        .bind(tenant)
        .bind(model)
        .bind(&e.model_name)
        .bind(e.evaluated_at)
        .bind(&e.id)
        .bind(sqlx::types::Json(&e.feature_importance))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
