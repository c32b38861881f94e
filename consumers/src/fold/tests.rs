use chrono::{TimeZone, Utc};

use super::*;
use crate::events::{Interaction, Outcome, SegmentMembership};

fn interaction(id: &str, customer: &str, outcome: Outcome, revenue: f64) -> Event {
    Event::Interaction(Box::new(Interaction {
        id: id.into(),
        tenant_id: "t".into(),
        customer_id: customer.into(),
        offer_id: "o".into(),
        channel_id: "c".into(),
        creative_id: None,
        decision_trace_id: None,
        outcome,
        revenue,
        cost: 0.0,
        occurred_at: Utc.with_ymd_and_hms(2026, 3, 24, 10, 0, 0).unwrap(),
    }))
}

fn membership(customer: &str, segment: &str, op: MembershipOp) -> Event {
    Event::Membership(Box::new(SegmentMembership {
        id: format!("m-{customer}-{segment}-{op:?}"),
        tenant_id: "t".into(),
        segment_id: segment.into(),
        customer_id: customer.into(),
        op,
        at: Utc.with_ymd_and_hms(2026, 3, 24, 9, 0, 0).unwrap(),
    }))
}

fn ikey(day: chrono::NaiveDate) -> InteractionKey {
    InteractionKey { tenant: "t".into(), day, offer: "o".into(), channel: "c".into() }
}

fn rkey(segment: &str, day: chrono::NaiveDate, dim: &str) -> RollupKey {
    RollupKey { tenant: "t".into(), segment: segment.into(), day, dim: dim.into() }
}

#[test]
fn segment_counters_use_memberships_at_processing_time() {
    let events = [
        interaction("1", "alice", Outcome::Impression, 0.0), // before alice joins: not in seg
        membership("alice", "vip", MembershipOp::Add),
        interaction("2", "alice", Outcome::Accept, 10.5),
        membership("alice", "vip", MembershipOp::Remove),
        interaction("3", "alice", Outcome::Impression, 0.0),
    ];
    let mut m = Memberships::new();
    let refs: Vec<&Event> = events.iter().collect();
    let d = fold(&refs, &mut m, 100);
    let day = chrono::NaiveDate::from_ymd_opt(2026, 3, 24).unwrap();
    let all = d.interactions[&ikey(day)];
    assert_eq!((all.impressions, all.accepts, all.revenue_micros), (2, 1, 10_500_000));
    let seg = d.segment_interactions[&SegmentInteractionKey {
        tenant: "t".into(),
        segment: "vip".into(),
        day,
        offer: "o".into(),
        channel: "c".into(),
    }];
    assert_eq!((seg.impressions, seg.accepts), (0, 1));
    assert!(!d.memberships[&MembershipKey { tenant: "t".into(), segment: "vip".into(), customer: "alice".into() }]);
}

#[test]
fn catalog_versions_only_move_forward() {
    assert!(catalog_change_applies(None, Some(1)));
    assert!(catalog_change_applies(Some(1), Some(2)));
    assert!(!catalog_change_applies(Some(2), Some(2)));
    assert!(!catalog_change_applies(Some(3), Some(2)));
    assert!(catalog_change_applies(Some(3), None));
}

#[test]
fn rollups_sum_the_base_counters_per_scope() {
    let mut other_channel = interaction("4", "bob", Outcome::Convert, 2.0);
    if let Event::Interaction(i) = &mut other_channel {
        i.channel_id = "c2".into();
        i.offer_id = "o2".into();
    }
    let events = [
        membership("alice", "vip", MembershipOp::Add),
        interaction("1", "alice", Outcome::Impression, 0.0),
        interaction("2", "alice", Outcome::Accept, 10.5),
        interaction("3", "carol", Outcome::Impression, 0.0),
        other_channel,
    ];
    let mut m = Memberships::new();
    let refs: Vec<&Event> = events.iter().collect();
    let d = fold(&refs, &mut m, 100);
    let day = chrono::NaiveDate::from_ymd_opt(2026, 3, 24).unwrap();
    // Every rollup of a scope is the base table's counters summed over the dropped dimensions.
    let sum = |it: &mut dyn Iterator<Item = InteractionCounts>| {
        it.fold(InteractionCounts::default(), |mut a, c| {
            a.impressions += c.impressions;
            a.accepts += c.accepts;
            a.converts += c.converts;
            a.revenue_micros += c.revenue_micros;
            a
        })
    };
    let all_base = sum(&mut d.interactions.values().copied());
    assert_eq!(d.rollup_day[&RollupDayKey { tenant: "t".into(), segment: "".into(), day }], all_base);
    assert_eq!(sum(&mut d.rollup_offer.iter().filter(|(k, _)| k.segment.is_empty()).map(|(_, c)| *c)), all_base);
    assert_eq!(sum(&mut d.rollup_channel.iter().filter(|(k, _)| k.segment.is_empty()).map(|(_, c)| *c)), all_base);
    let o2 = d.rollup_offer[&rkey("", day, "o2")];
    assert_eq!((o2.converts, o2.revenue_micros), (1, 2_000_000));
    let c = d.rollup_channel[&rkey("", day, "c")];
    assert_eq!((c.impressions, c.accepts), (2, 1));
    // Only alice is in "vip".
    let vip_base = sum(&mut d.segment_interactions.values().copied());
    assert_eq!((vip_base.impressions, vip_base.accepts), (1, 1));
    assert_eq!(d.rollup_day[&RollupDayKey { tenant: "t".into(), segment: "vip".into(), day }], vip_base);
    assert_eq!(d.rollup_offer[&rkey("vip", day, "o")], vip_base);
    assert_eq!(d.rollup_channel[&rkey("vip", day, "c")], vip_base);
    assert_eq!(d.rollup_offer.len(), 3);
}

#[test]
fn a_customer_counts_in_at_most_the_capped_number_of_segments() {
    let mut events: Vec<Event> =
        ["s1", "s2", "s3", "s4"].iter().map(|s| membership("alice", s, MembershipOp::Add)).collect();
    events.push(interaction("1", "alice", Outcome::Impression, 0.0));
    events.push(interaction("2", "alice", Outcome::Accept, 1.0));
    let mut m = Memberships::new();
    let refs: Vec<&Event> = events.iter().collect();
    let d = fold(&refs, &mut m, 2);
    // The first two segments in id order; two events each left out of two segments.
    let scoped: std::collections::BTreeSet<&str> = d.segment_interactions.keys().map(|k| k.segment.as_str()).collect();
    assert_eq!(scoped, ["s1", "s2"].into());
    assert_eq!(d.segment_scopes_capped, 4);
    // The memberships themselves are all kept: only the fan-out of events is bounded.
    assert_eq!(d.memberships.len(), 4);
    let day = chrono::NaiveDate::from_ymd_opt(2026, 3, 24).unwrap();
    assert_eq!(d.interactions[&ikey(day)].impressions, 1);
}

#[test]
fn money_sums_beyond_i64_are_exact() {
    // Ten interactions at the largest accepted amount: 10^19 micros, past i64::MAX.
    let events: Vec<Event> =
        (0..10).map(|i| interaction(&i.to_string(), "bob", Outcome::Convert, money::MAX_AMOUNT)).collect();
    let mut m = Memberships::new();
    let refs: Vec<&Event> = events.iter().collect();
    let d = fold(&refs, &mut m, 100);
    let day = chrono::NaiveDate::from_ymd_opt(2026, 3, 24).unwrap();
    assert_eq!(d.interactions[&ikey(day)].revenue_micros, 10_000_000_000_000_000_000);
}
