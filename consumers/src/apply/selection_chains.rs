//! The entries of `selection_chain_totals` (migration `wide_selection_offer_totals`): per
//! (tenant, segment, day) of the delta, every offer's selection counters and score buckets, in
//! offer id order. Chain `''` (all customers) holds the per-offer counters with their scores;
//! each segment's holds its offers' counters summed over channels and flows, with no buckets
//! (score_distribution has no segment filter). `wide` fans them out to the chains'
//! checkpoints and merges them into the stored rows.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::wide_chains::Entries;
use crate::fold::keys::RollupDayKey;
use crate::fold::selection::{ScoreCounts, SelectionCounts};
use crate::fold::Delta;
use crate::units::wide::offer_selection::{OfferSelection, COUNTERS};

/// The delta's rows, in key order (tenant, segment, day): the lock order of every writer.
pub(super) fn rows(d: &Delta) -> Vec<(RollupDayKey, Entries<'_, COUNTERS>)> {
    let mut rows: BTreeMap<RollupDayKey, Entries<'_, COUNTERS>> = BTreeMap::new();
    // All customers: the per-offer counters of a (tenant, day) joined with its offers' scores.
    let days = d.selection.keys().chain(d.offer_scores.keys());
    for k in days {
        let key = RollupDayKey { tenant: k.tenant.clone(), segment: String::new(), day: k.day };
        if rows.contains_key(&key) {
            continue;
        }
        let selection = d.selection.get(k).map_or(&[][..], Vec::as_slice);
        let scores = d.offer_scores.get(k).map_or(&[][..], Vec::as_slice);
        // Traces without candidates leave a day with no offers: no entry, so no checkpoint
        // (a checkpoint marks a day with candidates, as the backfill makes them).
        if !selection.is_empty() || !scores.is_empty() {
            rows.insert(key, by_offer(selection, scores));
        }
    }
    // The segments: (tenant, segment, day, channel, flow, offer) summed per offer. The map is
    // in key order, so a (tenant, segment, day)'s offers come together, but not in offer
    // order (channel and flow come first): summed in a map per run.
    let mut run: Option<(RollupDayKey, BTreeMap<&str, SelectionCounts>)> = None;
    for (k, c) in &d.selection_segments {
        let same = run.as_ref().is_some_and(|(r, _)| r.tenant == k.tenant && r.segment == k.segment && r.day == k.day);
        if !same {
            if let Some((key, offers)) = run.take() {
                rows.insert(key, segment_entries(offers));
            }
            let key = RollupDayKey { tenant: k.tenant.clone(), segment: k.segment.clone(), day: k.day };
            run = Some((key, BTreeMap::new()));
        }
        let (_, offers) = run.as_mut().expect("a run was started");
        offers.entry(k.offer.as_str()).or_default().add(c);
    }
    if let Some((key, offers)) = run {
        rows.insert(key, segment_entries(offers));
    }
    rows.into_iter().collect()
}

fn segment_entries(offers: BTreeMap<&str, SelectionCounts>) -> Entries<'_, COUNTERS> {
    offers.into_iter().map(|(offer, s)| (offer, counters(&s, &ScoreCounts::default()))).collect()
}

/// The two lists (each sorted by offer id) joined by offer: every offer of either, the side
/// without it counted as zero. An offer with scores and no selection counters (which the fold
/// never makes) keeps its score sum and count in the selection counters' places.
fn by_offer<'a>(
    selection: &'a [(String, SelectionCounts)],
    scores: &'a [(String, ScoreCounts)],
) -> Entries<'a, COUNTERS> {
    let mut out = Vec::with_capacity(selection.len().max(scores.len()));
    let (mut i, mut j) = (0, 0);
    while i < selection.len() || j < scores.len() {
        let order = match (selection.get(i), scores.get(j)) {
            (Some(a), Some(b)) => a.0.as_bytes().cmp(b.0.as_bytes()),
            (Some(_), None) => Ordering::Less,
            _ => Ordering::Greater,
        };
        match order {
            Ordering::Less => {
                out.push((selection[i].0.as_str(), counters(&selection[i].1, &ScoreCounts::default())));
                i += 1;
            }
            Ordering::Equal => {
                out.push((selection[i].0.as_str(), counters(&selection[i].1, &scores[j].1)));
                (i, j) = (i + 1, j + 1);
            }
            Ordering::Greater => {
                let (offer, b) = &scores[j];
                let s = SelectionCounts { score_sum_micros: b.sum_micros, score_n: b.n, ..Default::default() };
                out.push((offer.as_str(), counters(&s, b)));
                j += 1;
            }
        }
    }
    out
}

/// An offer's entry: the selection counters, whose score sum and count are the scores' (as in
/// `selection_daily`), and the buckets.
fn counters(s: &SelectionCounts, b: &ScoreCounts) -> [i64; COUNTERS] {
    OfferSelection {
        eligible: s.eligible,
        scored: s.scored,
        selected: s.selected,
        rank_sum: s.rank_sum,
        rank_n: s.rank_n,
        ranks: s.ranks,
        miss_qualification: s.miss_qualification,
        miss_contact: s.miss_contact,
        miss_too_low: s.miss_too_low,
        miss_not_ranked: s.miss_not_ranked,
        score_sum_micros: i128::from(s.score_sum_micros),
        score_n: s.score_n,
        buckets: b.buckets,
    }
    .to_counters()
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use proptest::prelude::*;

    use super::*;
    use crate::fold::keys::{DayKey, SegmentSelectionKey};

    const IDS: [&str; 4] = ["o1", "o10", "o2", "off_é"];

    /// A row as a tuple: (tenant, segment, day) and its entries.
    type Flat<'a> = ((String, String, NaiveDate), Vec<(&'a str, [i64; COUNTERS])>);

    fn day(n: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::Days::new(u64::from(n))
    }

    fn counts(v: i64) -> SelectionCounts {
        SelectionCounts { eligible: v, rank_sum: -v, score_sum_micros: v * 7, score_n: 1, ..Default::default() }
    }

    proptest! {
        /// Against sums kept per (tenant, segment, day, offer): every key of the delta once, in
        /// key order, its offers in byte order, each the sum of what the delta holds for it;
        /// scores only in all customers' chain; days without offers left out.
        #[test]
        fn rows_sum_the_delta_per_chain_day_and_offer(
            selection in proptest::collection::vec((0..2u32, 0..3u32, proptest::collection::btree_map(0..4usize, 1..9i64, 0..4)), 0..6),
            scores in proptest::collection::vec((0..2u32, 0..3u32, proptest::collection::btree_map(0..4usize, 1..9i64, 0..4)), 0..6),
            segments in proptest::collection::vec((0..2u32, 0..2u32, 0..3u32, 0..2u32, 0..4usize, 1..9i64), 0..12),
        ) {
            let tenant = |t: u32| ["a", "b"][t as usize].to_owned();
            let mut d = Delta::default();
            let mut want: BTreeMap<(String, String, NaiveDate), BTreeMap<&str, OfferSelection>> = BTreeMap::new();
            for (t, n, offers) in &selection {
                let list: Vec<(String, SelectionCounts)> = offers.iter().map(|(&o, &v)| (IDS[o].to_owned(), counts(v))).collect();
                d.selection.insert(DayKey { tenant: tenant(*t), day: day(*n) }, list);
            }
            for (t, n, offers) in &scores {
                let list: Vec<(String, ScoreCounts)> = offers
                    .iter()
                    .map(|(&o, &v)| (IDS[o].to_owned(), ScoreCounts { buckets: [v; 10], sum_micros: v, n: v }))
                    .collect();
                d.offer_scores.insert(DayKey { tenant: tenant(*t), day: day(*n) }, list);
            }
            for (k, offers) in &d.selection {
                for (o, c) in offers {
                    let e = want.entry((k.tenant.clone(), String::new(), k.day)).or_default().entry(o.as_str()).or_default();
                    (e.eligible, e.rank_sum, e.score_sum_micros, e.score_n) = (c.eligible, c.rank_sum, c.score_sum_micros.into(), c.score_n);
                }
            }
            for (k, offers) in &d.offer_scores {
                for (o, b) in offers {
                    let e = want.entry((k.tenant.clone(), String::new(), k.day)).or_default().entry(o.as_str()).or_default();
                    e.buckets = b.buckets;
                    if !d.selection.get(k).is_some_and(|s| s.iter().any(|(x, _)| x == o)) {
                        (e.score_sum_micros, e.score_n) = (b.sum_micros.into(), b.n);
                    }
                }
            }
            for &(t, s, n, channel, o, v) in &segments {
                let key = SegmentSelectionKey {
                    tenant: tenant(t),
                    segment: ["seg", "seg_é"][s as usize].to_owned(),
                    day: day(n),
                    channel: ["email", "web"][channel as usize].to_owned(),
                    flow: String::new(),
                    offer: IDS[o].to_owned(),
                };
                d.selection_segments.entry(key).or_default().add(&counts(v));
            }
            for (k, c) in &d.selection_segments {
                let e = want.entry((k.tenant.clone(), k.segment.clone(), k.day)).or_default().entry(k.offer.as_str()).or_default();
                e.eligible += c.eligible;
                e.rank_sum += c.rank_sum;
                e.score_sum_micros += i128::from(c.score_sum_micros);
                e.score_n += c.score_n;
            }
            let want: Vec<Flat<'_>> = want
                .into_iter()
                .filter(|(_, offers)| !offers.is_empty())
                .map(|(k, offers)| (k, offers.into_iter().map(|(o, e)| (o, e.to_counters())).collect()))
                .collect();
            let got: Vec<Flat<'_>> =
                rows(&d).into_iter().map(|(k, e)| ((k.tenant, k.segment, k.day), e)).collect();
            prop_assert_eq!(got, want);
        }
    }
}
