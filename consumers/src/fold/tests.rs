use chrono::{TimeZone, Utc};

use super::*;
use crate::events::{Interaction, SegmentMembership};

fn interaction(id: &str, customer: &str, outcome: Outcome, revenue: f64) -> Event {
    Event::Interaction(Interaction {
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
    })
}

fn membership(customer: &str, segment: &str, op: MembershipOp) -> Event {
    Event::Membership(SegmentMembership {
        id: format!("m-{customer}-{segment}-{op:?}"),
        tenant_id: "t".into(),
        segment_id: segment.into(),
        customer_id: customer.into(),
        op,
        at: Utc.with_ymd_and_hms(2026, 3, 24, 9, 0, 0).unwrap(),
    })
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
    let d = fold(&refs, &mut m);
    let day = chrono::NaiveDate::from_ymd_opt(2026, 3, 24).unwrap();
    let all = d.interactions[&("t".into(), day, "o".into(), "c".into())];
    assert_eq!((all.impressions, all.accepts, all.revenue_micros), (2, 1, 10_500_000));
    let seg = d.segment_interactions[&("t".into(), "vip".into(), day, "o".into(), "c".into())];
    assert_eq!((seg.impressions, seg.accepts), (0, 1));
    assert!(!d.memberships[&("t".into(), "vip".into(), "alice".into())]);
}

#[test]
fn catalog_versions_only_move_forward() {
    assert!(catalog_change_applies(None, Some(1)));
    assert!(catalog_change_applies(Some(1), Some(2)));
    assert!(!catalog_change_applies(Some(2), Some(2)));
    assert!(!catalog_change_applies(Some(3), Some(2)));
    assert!(catalog_change_applies(Some(3), None));
}
