//! Decision traces folded by borrowed ids: the ingest's hottest loop (a trace has tens of
//! candidates, each counted in three per-offer maps). Ids are looked up as `&str` borrowed
//! from the batch's events in hash maps, so a trace allocates nothing once its keys exist;
//! owned, ordered keys are built once per distinct row when the batch is done ([`Traces::finish`]).
//! Measured: 59 µs per trace with `BTreeMap<String, _>` lookups and per-trace key clones
//! (`memcmp`, `malloc`, moving 216-byte counters inside B-tree nodes).

use chrono::NaiveDate;
use rustc_hash::FxHashMap;

use super::delta::{Delta, Offers, TraceCounts};
use super::keys::{DayKey, DimKey, TraceKey};
use super::selection::{ScoreCounts, SelectionCounts};
use crate::events::{utc_day, DecisionTrace};
use crate::units::latency;

type Ids<'e, C> = FxHashMap<&'e str, C>;

/// What a trace's entries say of one candidate offer: its counters and which miss rules hold.
#[derive(Debug, Clone, Copy, Default)]
struct Candidate {
    counts: SelectionCounts,
    failed: bool,
    blocked: bool,
}

/// The candidates of one trace, with reusable buffers (a batch folds thousands of traces).
#[derive(Default)]
pub(super) struct Candidates<'e> {
    offers: Slab<'e, Candidate>,
    /// The decision's winner: the selectedOffers entry with the lowest rank.
    winner: Option<&'e str>,
}

impl<'e> Candidates<'e> {
    /// Reads `t`'s four arrays (docs/dashboard-types.md 5.1): an offer is a candidate when it
    /// appears in any of them; each miss is counted under the first rule that holds.
    pub fn read(&mut self, t: &'e DecisionTrace) {
        // A hollow trace has no candidates left to count: folding one would undercount
        // silently, so it is a bug that must not pass (`Entry::whole` reads it back).
        assert!(!t.hollow, "a hollow trace was folded: read it back with Entry::whole");
        self.offers.clear();
        for q in &t.qualification_results {
            self.offers.get(&q.offer_id).failed |= !q.passed;
        }
        for p in &t.contact_policy_results {
            self.offers.get(&p.offer_id).blocked |= p.blocked;
        }
        for s in &t.scoring_results {
            let c = &mut self.offers.get(&s.offer_id).counts;
            c.scored = 1;
            c.rank_sum += s.rank;
            c.rank_n += 1;
            if (1..=10).contains(&s.rank) {
                c.ranks[(s.rank - 1) as usize] += 1;
            }
            // Validated finite at decode; any real score fits in i64 micro-units.
            c.score_sum_micros += (s.score * 1e6).round() as i64;
            c.score_n += 1;
        }
        for s in &t.selected_offers {
            self.offers.get(&s.offer_id).counts.selected = 1;
        }
        for c in &mut self.offers.values {
            let n = &mut c.counts;
            n.eligible = 1;
            if n.selected == 1 {
                continue;
            }
            if c.failed {
                n.miss_qualification = 1;
            } else if c.blocked {
                n.miss_contact = 1;
            } else if n.scored == 1 {
                n.miss_too_low = 1;
            } else {
                n.miss_not_ranked = 1;
            }
        }
        self.winner = t.selected_offers.iter().min_by_key(|s| s.rank).map(|s| s.offer_id.as_str());
    }

    /// Each candidate: its offer, its counters, and the offer it was beaten by (the winner,
    /// for a scored-too-low miss of another offer).
    pub fn each(&self) -> impl Iterator<Item = (&'e str, &SelectionCounts, Option<&'e str>)> + '_ {
        self.offers.ids.iter().zip(&self.offers.values).map(|(&offer, c)| {
            let beaten_by = self.winner.filter(|w| c.counts.miss_too_low == 1 && *w != offer);
            (offer, &c.counts, beaten_by)
        })
    }
}

/// Counters per borrowed id, held in a slab: growing the map moves 4-byte indexes, never the
/// counters (a candidate's are 216 bytes).
struct Slab<'e, C> {
    index: Ids<'e, u32>,
    /// The ids in first-seen order, beside their counters.
    ids: Vec<&'e str>,
    values: Vec<C>,
}

impl<C> Default for Slab<'_, C> {
    fn default() -> Self {
        Slab { index: Ids::default(), ids: Vec::new(), values: Vec::new() }
    }
}

impl<'e, C: Copy + Default> Slab<'e, C> {
    fn get(&mut self, id: &'e str) -> &mut C {
        let next = self.values.len() as u32;
        let i = *self.index.entry(id).or_insert(next);
        if i == next {
            self.ids.push(id);
            self.values.push(C::default());
        }
        &mut self.values[i as usize]
    }

    /// Empty, keeping the buffers.
    fn clear(&mut self) {
        self.index.clear();
        self.ids.clear();
        self.values.clear();
    }

    /// The entries in id order: the indexes are sorted, and each counter is copied once.
    fn into_offers(self) -> Offers<C> {
        let mut order: Vec<usize> = (0..self.ids.len()).collect();
        order.sort_unstable_by_key(|&i| self.ids[i]);
        order.into_iter().map(|i| (self.ids[i].to_owned(), self.values[i])).collect()
    }
}

#[derive(Default)]
struct Flow<'e> {
    counts: TraceCounts,
    offers: Slab<'e, SelectionCounts>,
}

#[derive(Default)]
struct Day<'e> {
    scores: ScoreCounts,
    selection: Slab<'e, SelectionCounts>,
    offer_scores: Slab<'e, ScoreCounts>,
    /// (offer missed, winner) → count.
    beaten_by: FxHashMap<(&'e str, &'e str), i64>,
    latency: Vec<u64>,
}

/// The all-customer trace views of a batch, keyed by borrowed ids.
#[derive(Default)]
pub(super) struct Traces<'e> {
    flows: FxHashMap<(&'e str, NaiveDate, &'e str, &'e str), Flow<'e>>,
    days: FxHashMap<(&'e str, NaiveDate), Day<'e>>,
    channels: FxHashMap<(&'e str, NaiveDate, &'e str), ScoreCounts>,
}

impl<'e> Traces<'e> {
    /// Counts trace `e`, whose candidates are `c` (read from it).
    pub fn add(&mut self, e: &'e DecisionTrace, c: &Candidates<'e>) {
        let (t, day) = (e.tenant_id.as_str(), utc_day(e.created_at));
        let channel = e.channel_id.as_deref().unwrap_or_default();
        let flow = self.flows.entry((t, day, channel, e.decision_flow_id.as_deref().unwrap_or_default())).or_default();
        flow.counts.add(e.degraded);
        let d = self.days.entry((t, day)).or_default();
        let mut channel_scores = (!channel.is_empty()).then(|| self.channels.entry((t, day, channel)).or_default());
        for s in &e.scoring_results {
            d.scores.add_score(s.score);
            if let Some(c) = channel_scores.as_deref_mut() {
                c.add_score(s.score);
            }
            d.offer_scores.get(&s.offer_id).add_score(s.score);
        }
        for (offer, counts, beaten_by) in c.each() {
            if let Some(w) = beaten_by {
                *d.beaten_by.entry((offer, w)).or_default() += 1;
            }
            d.selection.get(offer).add(counts);
            flow.offers.get(offer).add(counts);
        }
        d.latency.push(latency::millis(e.total_duration_ms));
    }

    /// Moves everything counted into `d`'s owned, ordered maps, which only this fold writes
    /// (each key is inserted once).
    pub fn finish(self, d: &mut Delta) {
        for ((tenant, day, channel, flow), f) in self.flows {
            let key = TraceKey { tenant: tenant.to_owned(), day, channel: channel.to_owned(), flow: flow.to_owned() };
            d.traces.insert(key.clone(), f.counts);
            d.selection_dims.insert(key, f.offers.into_offers());
        }
        for ((tenant, day, channel), s) in self.channels {
            d.channel_scores.insert(DimKey { tenant: tenant.to_owned(), day, dim: channel.to_owned() }, s);
        }
        for ((tenant, day), x) in self.days {
            let key = DayKey { tenant: tenant.to_owned(), day };
            d.scores.insert(key.clone(), x.scores);
            d.selection.insert(key.clone(), x.selection.into_offers());
            d.offer_scores.insert(key.clone(), x.offer_scores.into_offers());
            d.beaten_by.insert(key.clone(), beaten_by(x.beaten_by));
            d.latency.insert(key, x.latency);
        }
    }
}

/// (offer, winner) counts → per offer, per winner, both in id order.
fn beaten_by(pairs: FxHashMap<(&str, &str), i64>) -> Offers<Offers<i64>> {
    let mut pairs: Vec<_> = pairs.into_iter().collect();
    pairs.sort_unstable();
    let mut out: Offers<Offers<i64>> = Vec::new();
    for ((offer, winner), n) in pairs {
        match out.last_mut() {
            Some((last, winners)) if last == offer => winners.push((winner.to_owned(), n)),
            _ => out.push((offer.to_owned(), vec![(winner.to_owned(), n)])),
        }
    }
    out
}
