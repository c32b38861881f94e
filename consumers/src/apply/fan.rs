//! The add of a running-total view (`running`) fanned out here: each delta row goes to its
//! day's checkpoint and to every later one of its chain. The checkpoints each (chain, day)
//! reaches are looked up once per batch; the rows are summed per target here and written with
//! the plain upsert of [`super::upsert`]. Done in SQL (the delta joined to the checkpoints,
//! sorted and grouped), the add spent half its time sorting and summing (auto_explain, 30k
//! traces: 60 of 130 ms for 9,800 rows of `interaction_offer_channel_totals`, 45 of 68 ms for
//! 3,700 rows of `selection_offer_totals`).

use std::collections::BTreeSet;

use chrono::NaiveDate;
use sqlx::{Postgres, Transaction};

use super::upsert::{Kind, Rows, Table};

/// A delta row's key: its chain (tenant, segment), its day, then the view's other keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Key<'a> {
    pub tenant: &'a str,
    pub segment: &'a str,
    pub day: NaiveDate,
    pub dims: Vec<&'a str>,
}

/// A view's delta rows: the counters in the table's column order, counts and money alike.
pub(super) type Deltas<'a> = Vec<(Key<'a>, Vec<i128>)>;

/// The tenants of `deltas`, for the lock of their chains.
pub(super) fn tenants<'a>(deltas: &Deltas<'a>) -> Vec<&'a str> {
    deltas.iter().map(|(k, _)| k.tenant).collect::<BTreeSet<_>>().into_iter().collect()
}

/// Creates the checkpoints `deltas` needs with `checkpoints` (`$1`/`$2`/`$3`: the tenant,
/// segment and day of each (chain, day) of the delta), then adds every row to each checkpoint
/// of its chain from its day on, in primary key order (ids compare bytewise, as the "C"
/// collation does), the lock order of every writer. `days` is the table of checkpoints.
pub(super) async fn add(
    tx: &mut Transaction<'_, Postgres>,
    table: &'static Table,
    days: &str,
    checkpoints: &str,
    deltas: &Deltas<'_>,
) -> Result<(), sqlx::Error> {
    if deltas.is_empty() {
        return Ok(());
    }
    let mut chain_days: Vec<(&str, &str, NaiveDate)> =
        deltas.iter().map(|(k, _)| (k.tenant, k.segment, k.day)).collect();
    chain_days.sort_unstable();
    chain_days.dedup();
    let (t, s, d) = columns(&chain_days);
    sqlx::query(checkpoints).bind(&t).bind(&s).bind(&d).execute(&mut **tx).await?;
    let targets = reached(tx, days, table.name, &chain_days).await?;
    rows(table, &fan_out(deltas, &chain_days, &targets))?.upsert(tx).await
}

/// The first part of a statement creating checkpoints (`running`, `wide_chains`): the
/// (tenant, segment, day)s of `$1`/`$2`/`$3` that `view` has no checkpoint at are added to
/// `days`, then `sources` holds each new one with `prev`, its chain's latest earlier day (none:
/// NULL), whose rows the rest of the statement copies. The copies read the checkpoints as they
/// were before the statement, so two new days of one batch copy the same earlier day.
pub(super) fn new_checkpoints(days: &str, view: &str) -> String {
    format!(
        "WITH created AS (
             INSERT INTO {days} (view, tenant_id, segment_id, day)
             SELECT DISTINCT '{view}', t, s, d FROM unnest($1::text[], $2::text[], $3::date[]) AS w(t, s, d)
             ORDER BY 2, 3, 4
             ON CONFLICT DO NOTHING
             RETURNING tenant_id, segment_id, day),
         -- Each new checkpoint's source day found first: planned as a lateral join, the
         -- lookup ran once per row of the whole chain, every day of it (auto_explain: 105k
         -- lookups and 0.5 s per new day at 100k traces, growing with the days kept).
         sources AS MATERIALIZED (
             SELECT n.tenant_id, n.segment_id, n.day,
                    (SELECT max(p.day) FROM {days} p
                      WHERE p.view = '{view}' AND p.tenant_id = n.tenant_id AND p.segment_id = n.segment_id
                        AND p.day < n.day) AS prev
               FROM created n)"
    )
}

/// The checkpoint days of `view` (in `days`) that each (tenant, segment, day) of `chain_days`
/// reaches: its own and every later one of its chain, ascending, by position. One index
/// range each (LATERAL … OFFSET 0: never a scan of every checkpoint per row).
pub(super) async fn reached(
    tx: &mut Transaction<'_, Postgres>,
    days: &str,
    view: &str,
    chain_days: &[(&str, &str, NaiveDate)],
) -> Result<Vec<Vec<NaiveDate>>, sqlx::Error> {
    let (t, s, d) = columns(chain_days);
    let reached: Vec<(i64, NaiveDate)> = sqlx::query_as(&format!(
        "SELECT k.i, c.day
           FROM unnest($1::text[], $2::text[], $3::date[]) WITH ORDINALITY AS k(t, s, d, i)
           JOIN LATERAL (SELECT c.day FROM {days} c
                          WHERE c.view = $4 AND c.tenant_id = k.t AND c.segment_id = k.s AND c.day >= k.d
                         OFFSET 0) c ON true"
    ))
    .bind(&t)
    .bind(&s)
    .bind(&d)
    .bind(view)
    .fetch_all(&mut **tx)
    .await?;
    let mut targets: Vec<Vec<NaiveDate>> = vec![Vec::new(); chain_days.len()];
    for (i, day) in reached {
        targets[usize::try_from(i - 1).expect("ordinality counts from 1")].push(day);
    }
    // Ascending: the statement has no ORDER BY (an index range usually comes in order, but
    // nothing promises it), and the wide chains walk each list in day order.
    for days in &mut targets {
        days.sort_unstable();
    }
    Ok(targets)
}

/// `deltas` as `table`'s rows, in their order.
pub(super) fn rows<'a>(table: &'static Table, deltas: &Deltas<'a>) -> Result<Rows<'a>, sqlx::Error> {
    let mut rows = table.rows();
    for (k, values) in deltas {
        let mut row = rows.row().text(k.tenant).text(k.segment).date(k.day);
        for dim in &k.dims {
            row = row.text(dim);
        }
        for (&v, (_, kind)) in values.iter().zip(table.counters) {
            row = match kind {
                Kind::Money => row.money(v),
                // A count summed over a batch's few days of one key: far inside int8.
                _ => row.int(i64::try_from(v).map_err(|e| sqlx::Error::Encode(Box::new(e)))?),
            };
        }
        row.end();
    }
    Ok(rows)
}

/// Every row of `deltas` on each checkpoint day its (chain, day) reaches (`targets`, by the
/// position of the (chain, day) in `chain_days`, sorted and deduplicated), rows meeting on one
/// checkpoint summed: the rows to upsert, in primary key order.
fn fan_out<'a>(
    deltas: &Deltas<'a>,
    chain_days: &[(&'a str, &'a str, NaiveDate)],
    targets: &[Vec<NaiveDate>],
) -> Vec<(Key<'a>, Vec<i128>)> {
    // Each chain by its ordinal (`chain_days` is sorted by chain): the rows sort by integers
    // first. (A B-tree of whole keys spent most of this step comparing tenant ids.)
    let mut chains: Vec<(&str, &str)> = Vec::new();
    let chain_of: Vec<usize> = chain_days
        .iter()
        .map(|&(t, s, _)| {
            if chains.last() != Some(&(t, s)) {
                chains.push((t, s));
            }
            chains.len() - 1
        })
        .collect();
    let mut fanned: Vec<(usize, NaiveDate, &[&str], &[i128])> = Vec::with_capacity(deltas.len());
    let mut last: Option<(usize, &Key<'_>)> = None;
    for (k, values) in deltas {
        // Rows of one (chain, day) come together: one search per run of them.
        let i = match last {
            Some((i, p)) if (p.tenant, p.segment, p.day) == (k.tenant, k.segment, k.day) => i,
            _ => chain_days.binary_search(&(k.tenant, k.segment, k.day)).expect("every (chain, day) was looked up"),
        };
        last = Some((i, k));
        fanned.extend(targets[i].iter().map(|&day| (chain_of[i], day, k.dims.as_slice(), values.as_slice())));
    }
    fanned.sort_unstable_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
    let mut out: Vec<(Key<'a>, Vec<i128>)> = Vec::new();
    for (chain, day, dims, values) in fanned {
        let (tenant, segment) = chains[chain];
        match out.last_mut() {
            // Rows of several days of one key that meet on a checkpoint: one row, summed.
            Some((k, sum)) if (k.tenant, k.segment, k.day, k.dims.as_slice()) == (tenant, segment, day, dims) => {
                sum.iter_mut().zip(values).for_each(|(s, v)| *s += v);
            }
            _ => out.push((Key { tenant, segment, day, dims: dims.to_vec() }, values.to_vec())),
        }
    }
    out
}

/// The tenants, segments and days of `chain_days` as the three arrays the statements bind.
pub(super) fn columns<'a>(
    chain_days: &[(&'a str, &'a str, NaiveDate)],
) -> (Vec<&'a str>, Vec<&'a str>, Vec<NaiveDate>) {
    let mut out = (Vec::with_capacity(chain_days.len()), Vec::with_capacity(chain_days.len()), Vec::new());
    for &(t, s, d) in chain_days {
        out.0.push(t);
        out.1.push(s);
        out.2.push(d);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    /// A row's key as a tuple: (tenant, segment, day, other keys).
    type Flat<'a> = (&'a str, &'a str, NaiveDate, Vec<&'a str>);

    fn day(n: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::Days::new(u64::from(n))
    }

    proptest! {
        /// Against a map of sums: every delta row counted once on each checkpoint from its
        /// day on, nothing else, in key order.
        #[test]
        fn fan_out_sums_each_row_onto_every_later_checkpoint(
            rows in proptest::collection::vec((0..2usize, 0..2usize, 0..6u32, 0..3usize, 0..2usize, any::<i64>()), 1..40),
            extra in proptest::collection::vec(0..8u32, 0..4),
        ) {
            const TENANTS: [&str; 2] = ["t", "tenant-é"];
            const SEGMENTS: [&str; 2] = ["", "seg"];
            const IDS: [&str; 3] = ["o1", "o10", "o2"];
            // One delta row per key, as a fold makes them.
            let mut unique: BTreeMap<(usize, usize, u32, usize, usize), i64> = BTreeMap::new();
            for (t, s, d, a, b, v) in rows {
                unique.insert((t, s, d, a, b), v);
            }
            let deltas: Deltas<'_> = unique
                .iter()
                .map(|(&(t, s, d, a, b), &v)| {
                    let key = Key { tenant: TENANTS[t], segment: SEGMENTS[s], day: day(d), dims: vec![IDS[a], IDS[b]] };
                    (key, vec![i128::from(v), -i128::from(v)])
                })
                .collect();
            let mut chain_days: Vec<(&str, &str, NaiveDate)> = deltas.iter().map(|(k, _)| (k.tenant, k.segment, k.day)).collect();
            chain_days.sort_unstable();
            chain_days.dedup();
            // Checkpoints: every delta day of the chain, and some other days.
            let checkpoints = |t: &str, s: &str| -> BTreeSet<NaiveDate> {
                chain_days.iter().filter(|c| (c.0, c.1) == (t, s)).map(|c| c.2).chain(extra.iter().map(|&d| day(d))).collect()
            };
            let targets: Vec<Vec<NaiveDate>> =
                chain_days.iter().map(|&(t, s, d)| checkpoints(t, s).into_iter().filter(|&c| c >= d).collect()).collect();
            let mut want: BTreeMap<Flat<'_>, Vec<i128>> = BTreeMap::new();
            for (k, values) in &deltas {
                for c in checkpoints(k.tenant, k.segment).into_iter().filter(|&c| c >= k.day) {
                    let sum = want.entry((k.tenant, k.segment, c, k.dims.clone())).or_insert_with(|| vec![0, 0]);
                    sum.iter_mut().zip(values).for_each(|(s, v)| *s += v);
                }
            }
            let got: Vec<(Flat<'_>, Vec<i128>)> = fan_out(&deltas, &chain_days, &targets)
                .into_iter()
                .map(|(k, v)| ((k.tenant, k.segment, k.day, k.dims), v))
                .collect();
            prop_assert_eq!(got, want.into_iter().collect::<Vec<_>>());
        }
    }
}
