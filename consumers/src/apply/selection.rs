//! Upserts of the selection counters (see migration `selection`).

use chrono::NaiveDate;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{Postgres, Transaction};

use crate::fold::selection::SelectionCounts;
use crate::fold::Delta;

/// The counter columns of one upsert, in key order.
#[derive(Default)]
struct Columns {
    eligible: Vec<i64>,
    scored: Vec<i64>,
    selected: Vec<i64>,
    rank_sum: Vec<i64>,
    rank_n: Vec<i64>,
    ranks: [Vec<i64>; 10],
    misses: [Vec<i64>; 4],
    score_sum: Vec<i64>,
    score_n: Vec<i64>,
}

impl Columns {
    fn push(&mut self, c: &SelectionCounts) {
        self.eligible.push(c.eligible);
        self.scored.push(c.scored);
        self.selected.push(c.selected);
        self.rank_sum.push(c.rank_sum);
        self.rank_n.push(c.rank_n);
        for (col, v) in self.ranks.iter_mut().zip(c.ranks) {
            col.push(v);
        }
        for (col, v) in
            self.misses.iter_mut().zip([c.miss_qualification, c.miss_contact, c.miss_too_low, c.miss_not_ranked])
        {
            col.push(v);
        }
        self.score_sum.push(c.score_sum_micros);
        self.score_n.push(c.score_n);
    }

    fn bind<'q>(&'q self, mut q: Query<'q, Postgres, PgArguments>) -> Query<'q, Postgres, PgArguments> {
        q = q.bind(&self.eligible).bind(&self.scored).bind(&self.selected).bind(&self.rank_sum).bind(&self.rank_n);
        for r in self.ranks.iter().chain(&self.misses) {
            q = q.bind(r);
        }
        q.bind(&self.score_sum).bind(&self.score_n)
    }
}

const COUNTERS: &str = "eligible, scored, selected, rank_sum, rank_n, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, \
    miss_qualification, miss_contact, miss_too_low, miss_not_ranked, score_sum_micros, score_n";
const COUNTER_COUNT: usize = 21;

/// `INSERT … SELECT * FROM unnest(keys…, counters…) ON CONFLICT (keys) DO UPDATE SET c = t.c + excluded.c`.
fn upsert_sql(table: &str, keys: &[(&str, &str)]) -> String {
    let key_names: Vec<&str> = keys.iter().map(|k| k.0).collect();
    let mut casts: Vec<String> = keys.iter().enumerate().map(|(i, k)| format!("${}::{}[]", i + 1, k.1)).collect();
    casts.extend((0..COUNTER_COUNT).map(|i| format!("${}::int8[]", keys.len() + 1 + i)));
    let set: Vec<String> = COUNTERS.split(", ").map(|c| format!("{c} = t.{c} + EXCLUDED.{c}")).collect();
    format!(
        "INSERT INTO {table} AS t ({}, {COUNTERS}) SELECT * FROM unnest({}) ON CONFLICT ({}) DO UPDATE SET {}",
        key_names.join(", "),
        casts.join(", "),
        key_names.join(", "),
        set.join(", ")
    )
}

pub(super) async fn apply(tx: &mut Transaction<'_, Postgres>, d: &Delta) -> Result<(), sqlx::Error> {
    if !d.selection.is_empty() {
        let (mut t, mut day, mut offer, mut cols) = (vec![], vec![], vec![], Columns::default());
        for ((tenant, dy, o), c) in &d.selection {
            t.push(tenant.as_str());
            day.push(*dy);
            offer.push(o.as_str());
            cols.push(c);
        }
        let sql = upsert_sql("selection_daily", &[("tenant_id", "text"), ("day", "date"), ("offer_id", "text")]);
        cols.bind(sqlx::query(&sql).bind(&t).bind(&day).bind(&offer)).execute(&mut **tx).await?;
    }
    if !d.selection_dims.is_empty() {
        let (mut t, mut day, mut ch, mut fl, mut offer, mut cols) =
            (vec![], vec![], vec![], vec![], vec![], Columns::default());
        for ((tenant, dy, c, f, o), counts) in &d.selection_dims {
            t.push(tenant.as_str());
            day.push(*dy);
            ch.push(c.as_str());
            fl.push(f.as_str());
            offer.push(o.as_str());
            cols.push(counts);
        }
        let keys = [
            ("tenant_id", "text"),
            ("day", "date"),
            ("channel_id", "text"),
            ("decision_flow_id", "text"),
            ("offer_id", "text"),
        ];
        let sql = upsert_sql("selection_dims_daily", &keys);
        cols.bind(sqlx::query(&sql).bind(&t).bind(&day).bind(&ch).bind(&fl).bind(&offer)).execute(&mut **tx).await?;
    }
    if !d.selection_segments.is_empty() {
        let (mut t, mut seg, mut day, mut ch, mut fl, mut offer, mut cols) =
            (vec![], vec![], Vec::<NaiveDate>::new(), vec![], vec![], vec![], Columns::default());
        for ((tenant, s, dy, c, f, o), counts) in &d.selection_segments {
            t.push(tenant.as_str());
            seg.push(s.as_str());
            day.push(*dy);
            ch.push(c.as_str());
            fl.push(f.as_str());
            offer.push(o.as_str());
            cols.push(counts);
        }
        let keys = [
            ("tenant_id", "text"),
            ("segment_id", "text"),
            ("day", "date"),
            ("channel_id", "text"),
            ("decision_flow_id", "text"),
            ("offer_id", "text"),
        ];
        let sql = upsert_sql("selection_segment_daily", &keys);
        cols.bind(sqlx::query(&sql).bind(&t).bind(&seg).bind(&day).bind(&ch).bind(&fl).bind(&offer))
            .execute(&mut **tx)
            .await?;
    }
    if !d.beaten_by.is_empty() {
        let (mut t, mut day, mut o, mut w, mut n) = (vec![], vec![], vec![], vec![], vec![]);
        for ((tenant, dy, offer, winner), c) in &d.beaten_by {
            t.push(tenant.as_str());
            day.push(*dy);
            o.push(offer.as_str());
            w.push(winner.as_str());
            n.push(*c);
        }
        sqlx::query(
            "INSERT INTO beaten_by_daily AS b (tenant_id, day, offer_id, winner_id, count)
             SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::int8[])
             ON CONFLICT (tenant_id, day, offer_id, winner_id) DO UPDATE SET count = b.count + EXCLUDED.count",
        )
        .bind(&t)
        .bind(&day)
        .bind(&o)
        .bind(&w)
        .bind(&n)
        .execute(&mut **tx)
        .await?;
    }
    if !d.beaten_by_segments.is_empty() {
        let (mut t, mut s, mut day, mut o, mut w, mut n) = (vec![], vec![], vec![], vec![], vec![], vec![]);
        for ((tenant, seg, dy, offer, winner), c) in &d.beaten_by_segments {
            t.push(tenant.as_str());
            s.push(seg.as_str());
            day.push(*dy);
            o.push(offer.as_str());
            w.push(winner.as_str());
            n.push(*c);
        }
        sqlx::query(
            "INSERT INTO beaten_by_segment_daily AS b (tenant_id, segment_id, day, offer_id, winner_id, count)
             SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::text[], $6::int8[])
             ON CONFLICT (tenant_id, segment_id, day, offer_id, winner_id) DO UPDATE SET count = b.count + EXCLUDED.count",
        )
        .bind(&t)
        .bind(&s)
        .bind(&day)
        .bind(&o)
        .bind(&w)
        .bind(&n)
        .execute(&mut **tx)
        .await?;
    }
    if !d.segment_traces.is_empty() {
        let (mut t, mut seg, mut day, mut ch, mut fl, mut n, mut deg) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        for ((tenant, s, dy, c, f), counts) in &d.segment_traces {
            t.push(tenant.as_str());
            seg.push(s.as_str());
            day.push(*dy);
            ch.push(c.as_str());
            fl.push(f.as_str());
            n.push(counts.traces);
            deg.push(counts.degraded);
        }
        sqlx::query(
            "INSERT INTO trace_segment_daily AS t (tenant_id, segment_id, day, channel_id, decision_flow_id, traces, degraded)
             SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::text[], $6::int8[], $7::int8[])
             ON CONFLICT (tenant_id, segment_id, day, channel_id, decision_flow_id)
             DO UPDATE SET traces = t.traces + EXCLUDED.traces, degraded = t.degraded + EXCLUDED.degraded",
        )
        .bind(&t)
        .bind(&seg)
        .bind(&day)
        .bind(&ch)
        .bind(&fl)
        .bind(&n)
        .bind(&deg)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
