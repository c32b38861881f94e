//! Distinct conversions per window (see migration `attributions`): the new dates of the
//! batch's conversions, resolved against the dates already stored for them.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use sqlx::{Postgres, Transaction};

use super::upsert::Kind::{Date, Int, Text};
use super::upsert::Table;
use crate::fold::keys::ConversionDay;

/// Predecessor of a conversion's first date.
pub fn no_previous_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(1, 1, 1).expect("a valid date")
}

/// Adds `day` to a conversion's dates `days`: the signed changes of the (day, prev_day)
/// counters. Nothing when the date is known already.
pub fn add_day(days: &mut BTreeSet<NaiveDate>, day: NaiveDate, out: &mut BTreeMap<(NaiveDate, NaiveDate), i64>) {
    if !days.insert(day) {
        return;
    }
    let prev = days.range(..day).next_back().copied().unwrap_or_else(no_previous_day);
    *out.entry((day, prev)).or_default() += 1;
    if let Some(next) = days.range(day.succ_opt().unwrap_or(day)..).next().copied().filter(|n| *n > day) {
        *out.entry((next, prev)).or_default() -= 1;
        *out.entry((next, day)).or_default() += 1;
    }
}

/// `pairs`: (tenant, conversion, day) of the batch's fresh attribution events.
pub(super) async fn apply(
    tx: &mut Transaction<'_, Postgres>,
    pairs: &BTreeSet<ConversionDay>,
) -> Result<(), sqlx::Error> {
    if pairs.is_empty() {
        return Ok(());
    }
    let conversions: BTreeSet<(&str, &str)> =
        pairs.iter().map(|p| (p.tenant.as_str(), p.conversion.as_str())).collect();
    let (ct, cc): (Vec<&str>, Vec<&str>) = conversions.iter().copied().unzip();
    let stored: Vec<(String, String, NaiveDate)> = sqlx::query_as(
        "SELECT d.tenant_id, d.conversion_id, d.day
           FROM attribution_conversion_days d
           JOIN unnest($1::text[], $2::text[]) AS k(tenant_id, conversion_id) USING (tenant_id, conversion_id)",
    )
    .bind(&ct)
    .bind(&cc)
    .fetch_all(&mut **tx)
    .await?;
    let mut days: BTreeMap<(String, String), BTreeSet<NaiveDate>> = BTreeMap::new();
    for (t, c, d) in stored {
        days.entry((t, c)).or_default().insert(d);
    }
    let mut deltas: BTreeMap<(String, NaiveDate, NaiveDate), i64> = BTreeMap::new();
    let (mut nt, mut nc, mut nd) = (vec![], vec![], vec![]);
    for ConversionDay { tenant: t, conversion: c, day: d } in pairs {
        let set = days.entry((t.clone(), c.clone())).or_default();
        if set.contains(d) {
            continue;
        }
        let mut out = BTreeMap::new();
        add_day(set, *d, &mut out);
        for ((day, prev), n) in out {
            *deltas.entry((t.clone(), day, prev)).or_default() += n;
        }
        nt.push(t.as_str());
        nc.push(c.as_str());
        nd.push(*d);
    }
    sqlx::query(
        "INSERT INTO attribution_conversion_days (tenant_id, conversion_id, day)
         SELECT * FROM unnest($1::text[], $2::text[], $3::date[]) ON CONFLICT DO NOTHING",
    )
    .bind(&nt)
    .bind(&nc)
    .bind(&nd)
    .execute(&mut **tx)
    .await?;
    let mut rows = ATTRIBUTION_FIRST_DAYS.rows();
    for ((tenant, day, prev), n) in deltas.iter().filter(|(_, n)| **n != 0) {
        rows.row().text(tenant).date(*day).date(*prev).int(*n).end();
    }
    rows.upsert(tx).await
}

/// Conversions per (first date in a window, the date before it): see migration `attributions`.
static ATTRIBUTION_FIRST_DAYS: Table = Table {
    name: "attribution_first_days",
    keys: &[("tenant_id", Text), ("day", Date), ("prev_day", Date)],
    counters: &[("conversions", Int)],
};

#[cfg(test)]
mod tests {
    use super::*;

    fn day(n: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, n).unwrap()
    }

    /// Distinct conversions in [a, b] from the counters, as the API reads them.
    fn distinct(counters: &BTreeMap<(NaiveDate, NaiveDate), i64>, a: NaiveDate, b: NaiveDate) -> i64 {
        counters.iter().filter(|((d, p), _)| *d >= a && *d <= b && *p < a).map(|(_, n)| n).sum()
    }

    #[test]
    fn every_window_counts_each_conversion_once_whatever_the_arrival_order() {
        // Three conversions with dates arriving out of order.
        let arrivals = [(0, 5), (0, 2), (1, 3), (0, 9), (2, 7), (1, 3), (0, 4), (2, 1)];
        let mut sets: BTreeMap<i32, BTreeSet<NaiveDate>> = BTreeMap::new();
        let mut counters = BTreeMap::new();
        for (c, d) in arrivals {
            add_day(sets.entry(c).or_default(), day(d), &mut counters);
        }
        for a in 1..=10 {
            for b in a..=10 {
                let expected = sets.values().filter(|s| s.iter().any(|d| *d >= day(a) && *d <= day(b))).count() as i64;
                assert_eq!(distinct(&counters, day(a), day(b)), expected, "window {a}..={b}");
            }
        }
    }
}
