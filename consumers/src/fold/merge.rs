//! Adding a later delta onto an earlier one: the fold of a run of events split in two is the
//! first part's delta merged with the second's. The consumer thread folds a batch a chunk at a
//! time as it reads it ([`crate::batch::Batch::add`]), so that it never holds more than one
//! chunk of decoded traces, however many traces the batch collects.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use super::delta::{Delta, InteractionCounts, TraceCounts};
use super::selection::{ScoreCounts, SelectionCounts};

/// A counter (or list of counters) that a later one adds onto.
trait Merge {
    fn merge(&mut self, later: Self);
}

impl Merge for i64 {
    fn merge(&mut self, later: i64) {
        *self += later;
    }
}

impl Merge for i128 {
    fn merge(&mut self, later: i128) {
        *self += later;
    }
}

impl<A: Merge, B: Merge> Merge for (A, B) {
    fn merge(&mut self, later: (A, B)) {
        self.0.merge(later.0);
        self.1.merge(later.1);
    }
}

impl Merge for InteractionCounts {
    fn merge(&mut self, o: InteractionCounts) {
        self.impressions += o.impressions;
        self.clicks += o.clicks;
        self.accepts += o.accepts;
        self.converts += o.converts;
        self.rejects += o.rejects;
        self.dismisses += o.dismisses;
        self.revenue_micros += o.revenue_micros;
        self.cost_micros += o.cost_micros;
    }
}

impl Merge for TraceCounts {
    fn merge(&mut self, o: TraceCounts) {
        self.traces += o.traces;
        self.degraded += o.degraded;
    }
}

impl Merge for SelectionCounts {
    fn merge(&mut self, o: SelectionCounts) {
        self.add(&o);
    }
}

impl Merge for ScoreCounts {
    fn merge(&mut self, o: ScoreCounts) {
        for (a, b) in self.buckets.iter_mut().zip(o.buckets) {
            *a += b;
        }
        self.sum_micros += o.sum_micros;
        self.n += o.n;
    }
}

/// Latency values in event order: the later ones after.
impl Merge for Vec<u64> {
    fn merge(&mut self, later: Vec<u64>) {
        self.extend(later);
    }
}

/// Counters per id, sorted by id ([`super::Offers`]): one pass over both lists.
impl<C: Merge> Merge for Vec<(String, C)> {
    fn merge(&mut self, later: Vec<(String, C)>) {
        if self.is_empty() {
            *self = later;
            return;
        }
        let earlier = std::mem::take(self);
        let mut out = Vec::with_capacity(earlier.len().max(later.len()));
        let (mut a, mut b) = (earlier.into_iter().peekable(), later.into_iter().peekable());
        loop {
            let order = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) => x.0.cmp(&y.0),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => break,
            };
            match order {
                std::cmp::Ordering::Less => out.extend(a.next()),
                std::cmp::Ordering::Greater => out.extend(b.next()),
                std::cmp::Ordering::Equal => {
                    let ((id, mut c), (_, later)) = (a.next().expect("peeked"), b.next().expect("peeked"));
                    c.merge(later);
                    out.push((id, c));
                }
            }
        }
        *self = out;
    }
}

fn merge_map<K: Ord, V: Merge>(into: &mut BTreeMap<K, V>, later: BTreeMap<K, V>) {
    if into.is_empty() {
        *into = later;
        return;
    }
    for (k, v) in later {
        match into.entry(k) {
            Entry::Vacant(e) => {
                e.insert(v);
            }
            Entry::Occupied(mut e) => e.get_mut().merge(v),
        }
    }
}

impl Delta {
    /// Adds `later`, the delta of the events that follow this one's, so that the result is the
    /// delta of both runs folded as one.
    pub fn merge(&mut self, later: Delta) {
        let Delta {
            interactions,
            segment_interactions,
            rollup_day,
            rollup_offer,
            rollup_channel,
            traces,
            segment_traces,
            selection,
            selection_dims,
            selection_segments,
            scores,
            channel_scores,
            offer_scores,
            beaten_by,
            beaten_by_segments,
            latency,
            offer_spend,
            model_evals,
            attributions,
            conversion_days,
            model_latest,
            memberships,
            suppressions,
            catalog,
            applied,
            segment_scopes_capped,
        } = later;
        merge_map(&mut self.interactions, interactions);
        merge_map(&mut self.segment_interactions, segment_interactions);
        merge_map(&mut self.rollup_day, rollup_day);
        merge_map(&mut self.rollup_offer, rollup_offer);
        merge_map(&mut self.rollup_channel, rollup_channel);
        merge_map(&mut self.traces, traces);
        merge_map(&mut self.segment_traces, segment_traces);
        merge_map(&mut self.selection, selection);
        merge_map(&mut self.selection_dims, selection_dims);
        merge_map(&mut self.selection_segments, selection_segments);
        merge_map(&mut self.scores, scores);
        merge_map(&mut self.channel_scores, channel_scores);
        merge_map(&mut self.offer_scores, offer_scores);
        merge_map(&mut self.beaten_by, beaten_by);
        merge_map(&mut self.beaten_by_segments, beaten_by_segments);
        merge_map(&mut self.latency, latency);
        merge_map(&mut self.offer_spend, offer_spend);
        merge_map(&mut self.model_evals, model_evals);
        merge_map(&mut self.attributions, attributions);
        self.conversion_days.extend(conversion_days);
        // The fold keeps the latest evaluation by (time, id), whichever part it came from.
        for (k, m) in model_latest {
            match self.model_latest.entry(k) {
                Entry::Vacant(e) => {
                    e.insert(m);
                }
                Entry::Occupied(mut e) => {
                    if (m.evaluated_at, &m.id) > (e.get().evaluated_at, &e.get().id) {
                        e.insert(m);
                    }
                }
            }
        }
        // Final states and arrival-ordered lists: the later part goes last.
        self.memberships.extend(memberships);
        for (k, ops) in suppressions {
            self.suppressions.entry(k).or_default().extend(ops);
        }
        self.catalog.extend(catalog);
        for (topic, n) in applied {
            *self.applied.entry(topic).or_default() += n;
        }
        self.segment_scopes_capped += segment_scopes_capped;
    }

    /// Rows the delta writes, counting each id of a per-offer list: what bounds a batch's
    /// delta (`DV_INGEST_BATCH_MAX_DELTA_ROWS`).
    pub fn rows(&self) -> usize {
        fn listed<K, C>(m: &BTreeMap<K, Vec<(String, C)>>) -> usize {
            m.values().map(Vec::len).sum()
        }
        self.interactions.len()
            + self.segment_interactions.len()
            + self.rollup_day.len()
            + self.rollup_offer.len()
            + self.rollup_channel.len()
            + self.traces.len()
            + self.segment_traces.len()
            + listed(&self.selection)
            + listed(&self.selection_dims)
            + self.selection_segments.len()
            + self.scores.len()
            + self.channel_scores.len()
            + listed(&self.offer_scores)
            + self.beaten_by.values().map(|o| o.iter().map(|(_, w)| w.len()).sum::<usize>()).sum::<usize>()
            + self.beaten_by_segments.len()
            + self.latency.len()
            + self.offer_spend.len()
            + self.model_evals.len()
            + self.attributions.len()
            + self.conversion_days.len()
            + self.model_latest.len()
            + self.memberships.len()
            + self.suppressions.len()
            + self.catalog.len()
    }
}
