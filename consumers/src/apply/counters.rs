//! The counter views: each declared by its table, key and counter columns (the SQL types of
//! migrations `views`, `interaction_rollups`, `selection`, `why_not_ranked`,
//! `score_distribution`, `offer_spend`, `attributions`, `model_metrics`), and written from its
//! delta map with the one upsert of [`super::upsert`].

use std::collections::BTreeMap;

use sqlx::{Postgres, Transaction};

use super::upsert::Kind::{Date, Int, Money, Text};
use super::upsert::{Kind, Row, Table};
use crate::fold::keys::{
    DayKey, DimKey, EntityKey, RollupDayKey, RollupKey, SegmentBeatenByKey, SegmentSelectionKey, SegmentTraceKey,
    TraceKey,
};
use crate::fold::selection::{ScoreCounts, SelectionCounts};
use crate::fold::{Delta, InteractionCounts, TraceCounts};

pub(super) const INTERACTIONS: &[(&str, Kind)] = &[
    ("impressions", Int),
    ("clicks", Int),
    ("accepts", Int),
    ("converts", Int),
    ("rejects", Int),
    ("dismisses", Int),
    ("revenue_micros", Money),
    ("cost_micros", Money),
];
pub(super) const TRACES: &[(&str, Kind)] = &[("traces", Int), ("degraded", Int)];
const SELECTION: [(&str, Kind); 21] = [
    ("eligible", Int),
    ("scored", Int),
    ("selected", Int),
    ("rank_sum", Int),
    ("rank_n", Int),
    ("r1", Int),
    ("r2", Int),
    ("r3", Int),
    ("r4", Int),
    ("r5", Int),
    ("r6", Int),
    ("r7", Int),
    ("r8", Int),
    ("r9", Int),
    ("r10", Int),
    ("miss_qualification", Int),
    ("miss_contact", Int),
    ("miss_too_low", Int),
    ("miss_not_ranked", Int),
    ("score_sum_micros", Int),
    ("score_n", Int),
];
/// Score buckets 0.0-0.1 … 0.9-1.0 (docs/dashboard-types.md 5.1 score_distribution).
const BUCKETS: [(&str, Kind); 10] = [
    ("b0", Int),
    ("b1", Int),
    ("b2", Int),
    ("b3", Int),
    ("b4", Int),
    ("b5", Int),
    ("b6", Int),
    ("b7", Int),
    ("b8", Int),
    ("b9", Int),
];
const SCORES: [(&str, Kind); 12] = concat(BUCKETS, [("score_sum_micros", Int), ("n", Int)]);

/// `a` then `b`: a table's counters are one static list.
const fn concat<const A: usize, const B: usize, const C: usize>(
    a: [(&'static str, Kind); A],
    b: [(&'static str, Kind); B],
) -> [(&'static str, Kind); C] {
    assert!(A + B == C, "C must be A + B");
    let mut out = [("", Int); C];
    let mut i = 0;
    while i < C {
        out[i] = if i < A { a[i] } else { b[i - A] };
        i += 1;
    }
    out
}

pub(super) const T: (&str, Kind) = ("tenant_id", Text);
pub(super) const SEG: (&str, Kind) = ("segment_id", Text);
pub(super) const DAY: (&str, Kind) = ("day", Date);
pub(super) const OFFER: (&str, Kind) = ("offer_id", Text);
pub(super) const CHANNEL: (&str, Kind) = ("channel_id", Text);
const FLOW: (&str, Kind) = ("decision_flow_id", Text);

static ROLLUP_DAY: Table = Table { name: "interaction_rollup_day", keys: &[T, SEG, DAY], counters: INTERACTIONS };
static ROLLUP_OFFER: Table =
    Table { name: "interaction_rollup_offer", keys: &[T, SEG, DAY, OFFER], counters: INTERACTIONS };
static ROLLUP_CHANNEL: Table =
    Table { name: "interaction_rollup_channel", keys: &[T, SEG, DAY, CHANNEL], counters: INTERACTIONS };
static OFFER_SPEND: Table = Table { name: "offer_spend", keys: &[T, OFFER], counters: &[("cost_micros", Money)] };
static ATTRIBUTION_DAILY: Table = Table {
    name: "attribution_daily",
    keys: &[T, DAY, ("model", Text)],
    counters: &[("events", Int), ("value_micros", Money)],
};
static MODEL_EVAL_DAILY: Table = Table {
    name: "model_eval_daily",
    keys: &[T, DAY, ("model_id", Text)],
    counters: &[("auc_micros", Int), ("evals", Int)],
};
static TRACE_DAILY: Table = Table { name: "trace_daily", keys: &[T, DAY, CHANNEL, FLOW], counters: TRACES };
static TRACE_SEGMENT_DAILY: Table =
    Table { name: "trace_segment_daily", keys: &[T, SEG, DAY, CHANNEL, FLOW], counters: TRACES };
static SELECTION_SEGMENT_DAILY: Table =
    Table { name: "selection_segment_daily", keys: &[T, SEG, DAY, CHANNEL, FLOW, OFFER], counters: &SELECTION };
static BEATEN_BY_SEGMENT_DAILY: Table = Table {
    name: "beaten_by_segment_daily",
    keys: &[T, SEG, DAY, OFFER, ("winner_id", Text)],
    counters: &[("count", Int)],
};
static SCORE_DAILY: Table = Table { name: "score_daily", keys: &[T, DAY], counters: &SCORES };
static SCORE_CHANNEL_DAILY: Table = Table { name: "score_channel_daily", keys: &[T, DAY, CHANNEL], counters: &SCORES };

/// Every narrow counter view of the delta, one statement each (the wide ones are `wide`; the
/// per-(offer, channel) and all customers' per-offer selection counters only as running
/// totals, `running`).
pub(super) async fn apply(tx: &mut Transaction<'_, Postgres>, d: &Delta) -> Result<(), sqlx::Error> {
    upsert(tx, &ROLLUP_DAY, &d.rollup_day).await?;
    upsert(tx, &ROLLUP_OFFER, &d.rollup_offer).await?;
    upsert(tx, &ROLLUP_CHANNEL, &d.rollup_channel).await?;
    upsert(tx, &OFFER_SPEND, &d.offer_spend).await?;
    upsert(tx, &ATTRIBUTION_DAILY, &d.attributions).await?;
    upsert(tx, &MODEL_EVAL_DAILY, &d.model_evals).await?;
    upsert(tx, &TRACE_DAILY, &d.traces).await?;
    upsert(tx, &TRACE_SEGMENT_DAILY, &d.segment_traces).await?;
    upsert(tx, &SELECTION_SEGMENT_DAILY, &d.selection_segments).await?;
    upsert(tx, &BEATEN_BY_SEGMENT_DAILY, &d.beaten_by_segments).await?;
    upsert(tx, &SCORE_DAILY, &d.scores).await?;
    upsert(tx, &SCORE_CHANNEL_DAILY, &d.channel_scores).await
}

/// One view from one delta map (in key order).
async fn upsert<K: Columns, C: Columns>(
    tx: &mut Transaction<'_, Postgres>,
    table: &'static Table,
    delta: &BTreeMap<K, C>,
) -> Result<(), sqlx::Error> {
    let mut rows = table.rows();
    for (k, c) in delta {
        c.write(k.write(rows.row())).end();
    }
    rows.upsert(tx).await
}

/// Writes its values into a row, in its table's column order.
trait Columns {
    fn write<'r, 'a>(&'a self, row: Row<'r, 'a>) -> Row<'r, 'a>;
}

impl Columns for DayKey {
    fn write<'r, 'a>(&'a self, row: Row<'r, 'a>) -> Row<'r, 'a> {
        row.text(&self.tenant).date(self.day)
    }
}

impl Columns for DimKey {
    fn write<'r, 'a>(&'a self, row: Row<'r, 'a>) -> Row<'r, 'a> {
        row.text(&self.tenant).date(self.day).text(&self.dim)
    }
}

impl Columns for EntityKey {
    fn write<'r, 'a>(&'a self, row: Row<'r, 'a>) -> Row<'r, 'a> {
        row.text(&self.tenant).text(&self.id)
    }
}

impl Columns for RollupDayKey {
    fn write<'r, 'a>(&'a self, row: Row<'r, 'a>) -> Row<'r, 'a> {
        row.text(&self.tenant).text(&self.segment).date(self.day)
    }
}

impl Columns for RollupKey {
    fn write<'r, 'a>(&'a self, row: Row<'r, 'a>) -> Row<'r, 'a> {
        row.text(&self.tenant).text(&self.segment).date(self.day).text(&self.dim)
    }
}

impl Columns for TraceKey {
    fn write<'r, 'a>(&'a self, row: Row<'r, 'a>) -> Row<'r, 'a> {
        row.text(&self.tenant).date(self.day).text(&self.channel).text(&self.flow)
    }
}

impl Columns for SegmentTraceKey {
    fn write<'r, 'a>(&'a self, row: Row<'r, 'a>) -> Row<'r, 'a> {
        row.text(&self.tenant).text(&self.segment).date(self.day).text(&self.channel).text(&self.flow)
    }
}

impl Columns for SegmentSelectionKey {
    fn write<'r, 'a>(&'a self, row: Row<'r, 'a>) -> Row<'r, 'a> {
        let row = row.text(&self.tenant).text(&self.segment).date(self.day);
        row.text(&self.channel).text(&self.flow).text(&self.offer)
    }
}

impl Columns for SegmentBeatenByKey {
    fn write<'r, 'a>(&'a self, row: Row<'r, 'a>) -> Row<'r, 'a> {
        row.text(&self.tenant).text(&self.segment).date(self.day).text(&self.offer).text(&self.winner)
    }
}

impl Columns for InteractionCounts {
    fn write<'r, 'a>(&'a self, row: Row<'r, 'a>) -> Row<'r, 'a> {
        let row = row.int(self.impressions).int(self.clicks).int(self.accepts).int(self.converts);
        row.int(self.rejects).int(self.dismisses).money(self.revenue_micros).money(self.cost_micros)
    }
}

impl Columns for TraceCounts {
    fn write<'r, 'a>(&'a self, row: Row<'r, 'a>) -> Row<'r, 'a> {
        row.int(self.traces).int(self.degraded)
    }
}

impl Columns for SelectionCounts {
    fn write<'r, 'a>(&'a self, row: Row<'r, 'a>) -> Row<'r, 'a> {
        let mut row = row.int(self.eligible).int(self.scored).int(self.selected).int(self.rank_sum).int(self.rank_n);
        for r in self.ranks {
            row = row.int(r);
        }
        let row = row.int(self.miss_qualification).int(self.miss_contact).int(self.miss_too_low);
        row.int(self.miss_not_ranked).int(self.score_sum_micros).int(self.score_n)
    }
}

impl Columns for ScoreCounts {
    fn write<'r, 'a>(&'a self, row: Row<'r, 'a>) -> Row<'r, 'a> {
        let mut row = row;
        for b in self.buckets {
            row = row.int(b);
        }
        row.int(self.sum_micros).int(self.n)
    }
}

/// A single count (`beaten_by`).
impl Columns for i64 {
    fn write<'r, 'a>(&'a self, row: Row<'r, 'a>) -> Row<'r, 'a> {
        row.int(*self)
    }
}

/// A money sum (`offer_spend`).
impl Columns for i128 {
    fn write<'r, 'a>(&'a self, row: Row<'r, 'a>) -> Row<'r, 'a> {
        row.money(*self)
    }
}

/// (count, money): `attribution_daily`.
impl Columns for (i64, i128) {
    fn write<'r, 'a>(&'a self, row: Row<'r, 'a>) -> Row<'r, 'a> {
        row.int(self.0).money(self.1)
    }
}

/// (count, count): `model_eval_daily`.
impl Columns for (i64, i64) {
    fn write<'r, 'a>(&'a self, row: Row<'r, 'a>) -> Row<'r, 'a> {
        row.int(self.0).int(self.1)
    }
}
