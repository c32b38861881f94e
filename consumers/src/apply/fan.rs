//! The add of a running-total view (`running`) fanned out here: each delta row goes to its
//! day's checkpoint and to every later one of its chain. The checkpoints each (chain, day)
//! reaches are looked up once per batch; the rows are summed per target here, by a sweep of
//! each chain's days ([`Sweep`]), and written with the plain upsert of [`super::upsert`], a
//! bounded number of rows per statement ([`CHUNK_ROWS`]). Done in SQL (the delta joined to the checkpoints,
//! sorted and grouped), the add spent half its time sorting and summing (auto_explain, 30k
//! traces: 60 of 130 ms for 9,800 rows of `interaction_offer_channel_totals`, 45 of 68 ms for
//! 3,700 rows of `selection_offer_totals`).

use std::collections::{BTreeMap, BTreeSet};

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
    // Written a few checkpoints at a time, in key order, so the rows a batch fans out to are
    // never all held at once (`CHUNK_ROWS`).
    let mut rows = table.rows();
    let mut sweep = Sweep::new(deltas, &chain_days, &targets);
    while let Some(checkpoint) = sweep.advance() {
        for (dims, values) in sweep.sums() {
            push(&mut rows, table, checkpoint, dims, values)?;
        }
        if rows.len() >= CHUNK_ROWS {
            std::mem::replace(&mut rows, table.rows()).upsert(tx).await?;
        }
    }
    rows.upsert(tx).await
}

/// Rows of a fanned view per upsert statement. A batch behind the latest checkpoints of its
/// chains reaches every one of them: seen at 300,000 traces, 150,000-200,000 rows of
/// `interaction_offer_channel_totals` for a batch of 20,000 interactions, whose one statement
/// held ~210 MB of a 296 MB heap peak (the rows, their arrays and the encoded message;
/// heaptrack, BENCHMARKS.md "Write path, fourteenth pass"), ~1 KB a row: 16,384 rows ~17 MB.
const CHUNK_ROWS: usize = 16_384;

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
        push(&mut rows, table, (k.tenant, k.segment, k.day), &k.dims, values)?;
    }
    Ok(rows)
}

/// Adds the row of (tenant, segment, day), `dims` and `values` to `rows`.
fn push<'a>(
    rows: &mut Rows<'a>,
    table: &'static Table,
    (tenant, segment, day): (&'a str, &'a str, NaiveDate),
    dims: &[&'a str],
    values: &[i128],
) -> Result<(), sqlx::Error> {
    let mut row = rows.row().text(tenant).text(segment).date(day);
    for dim in dims {
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
    Ok(())
}

/// Every row of `deltas` on each checkpoint its (chain, day) reaches, rows of one key meeting
/// on a checkpoint summed, one checkpoint at a time in primary key order: the chains in
/// order, each chain's checkpoints ascending, a checkpoint's keys in order. A chain's sweep
/// keeps a running sum per key: the rows of each day are added to it as the sweep passes that
/// day, and each checkpoint receives every sum so far ([`Sweep::sums`], borrowed: no copy
/// per fanned row). Held at once: one chain's sums, never the rows of every checkpoint
/// reached.
struct Sweep<'a, 'r> {
    /// Per chain: (tenant, segment), its checkpoints from its earliest day in the batch on
    /// (every later day's are among them), and its delta rows by day.
    chains: Vec<Chain<'a, 'r>>,
    /// Position: the chain, and the next checkpoint of it.
    chain: usize,
    checkpoint: usize,
    /// The current chain's rows added so far, and the sums per key.
    added: usize,
    sums: BTreeMap<&'r [&'a str], Vec<i128>>,
}

struct Chain<'a, 'r> {
    tenant: &'a str,
    segment: &'a str,
    checkpoints: &'r [NaiveDate],
    rows: Vec<(NaiveDate, &'r [&'a str], &'r [i128])>,
}

impl<'a, 'r> Sweep<'a, 'r> {
    /// `targets`: the checkpoints each (chain, day) of `chain_days` (sorted, deduplicated)
    /// reaches, ascending.
    fn new(
        deltas: &'r Deltas<'a>,
        chain_days: &[(&'a str, &'a str, NaiveDate)],
        targets: &'r [Vec<NaiveDate>],
    ) -> Self {
        let mut chains: Vec<Chain<'a, 'r>> = Vec::new();
        for (i, &(tenant, segment, _)) in chain_days.iter().enumerate() {
            // A chain's first (chain, day) is its earliest: its checkpoints are the chain's.
            if chains.last().is_none_or(|c| (c.tenant, c.segment) != (tenant, segment)) {
                chains.push(Chain { tenant, segment, checkpoints: &targets[i], rows: Vec::new() });
            }
        }
        for (k, values) in deltas {
            let c = chains
                .binary_search_by(|c| (c.tenant, c.segment).cmp(&(k.tenant, k.segment)))
                .expect("every chain of the delta was looked up");
            chains[c].rows.push((k.day, k.dims.as_slice(), values.as_slice()));
        }
        for chain in &mut chains {
            chain.rows.sort_by_key(|r| r.0);
        }
        Sweep { chains, chain: 0, checkpoint: 0, added: 0, sums: BTreeMap::new() }
    }

    /// Moves to the next checkpoint that receives rows and returns its (tenant, segment, day);
    /// its rows are then [`Sweep::sums`]. `None` once every chain is swept.
    fn advance(&mut self) -> Option<(&'a str, &'a str, NaiveDate)> {
        loop {
            let chain = self.chains.get(self.chain)?;
            let Some(&day) = chain.checkpoints.get(self.checkpoint) else {
                (self.chain, self.checkpoint, self.added) = (self.chain + 1, 0, 0);
                self.sums.clear();
                continue;
            };
            self.checkpoint += 1;
            for &(_, dims, values) in chain.rows[self.added..].iter().take_while(|r| r.0 <= day) {
                let sum = self.sums.entry(dims).or_insert_with(|| vec![0; values.len()]);
                sum.iter_mut().zip(values).for_each(|(s, v)| *s += v);
                self.added += 1;
            }
            if !self.sums.is_empty() {
                return Some((chain.tenant, chain.segment, day));
            }
        }
    }

    /// The rows of the checkpoint [`Sweep::advance`] returned: each key's other columns and
    /// its sums, keys in order.
    fn sums(&self) -> impl Iterator<Item = (&'r [&'a str], &[i128])> + '_ {
        self.sums.iter().map(|(dims, sum)| (*dims, sum.as_slice()))
    }
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
        fn the_sweep_sums_each_row_onto_every_later_checkpoint(
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
            let mut sweep = Sweep::new(&deltas, &chain_days, &targets);
            let mut got: Vec<(Flat<'_>, Vec<i128>)> = Vec::new();
            while let Some((t, s, d)) = sweep.advance() {
                got.extend(sweep.sums().map(|(dims, v)| ((t, s, d, dims.to_vec()), v.to_vec())));
            }
            prop_assert_eq!(got, want.into_iter().collect::<Vec<_>>());
        }
    }
}
