//! offer_performance, channel_effectiveness, revenue_trend: exact against values computed from
//! the fixture's published interactions, over several windows, with and without a segment.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::fixture::{seeded, Fixture, ACTIVE_OFFERS};
use crate::model::{self, in_window};

const WINDOWS: [i64; 4] = [1, 3, 7, 10];

fn seg_param(segment: Option<&str>) -> String {
    segment.map(|s| format!("&segmentId={s}")).unwrap_or_default()
}

fn cents(e: &model::Interaction) -> i64 {
    (e.revenue * 100.0).round() as i64
}

fn percent(num: i64, den: i64) -> String {
    if den == 0 {
        "0.0".into()
    } else {
        format!("{:.1}", model::round(num as f64 / den as f64 * 100.0, 1))
    }
}

fn is_conversion(e: &model::Interaction) -> bool {
    matches!(e.outcome, "accept" | "convert")
}

fn subsets(f: &Fixture) -> [(Option<&'static str>, Vec<&model::Interaction>); 2] {
    [(None, f.all()), (Some("seg_vip"), f.vip())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offer_performance_is_exact() {
    let f = seeded().await;
    for days in WINDOWS {
        for (segment, events) in subsets(&f) {
            let (status, body) =
                f.get(&format!("type=offer_performance&days={days}&asOf={}{}", f.as_of, seg_param(segment))).await;
            assert_eq!(status, 200, "{body}");
            // Every active catalog offer, with the window's counters (zero without activity).
            let mut rows: Vec<(String, i64, i64, i64, i64)> = ACTIVE_OFFERS
                .iter()
                .map(|(offer, creatives)| {
                    let mine: Vec<_> =
                        events.iter().filter(|e| e.offer == *offer && in_window(e.at, f.today, days)).collect();
                    let imp = mine.iter().filter(|e| e.outcome == "impression").count() as i64;
                    let conv = mine.iter().filter(|e| is_conversion(e)).count() as i64;
                    (offer.to_string(), *creatives, imp, conv, mine.iter().map(|e| cents(e)).sum())
                })
                .collect();
            rows.sort_by(|a, b| b.3.cmp(&a.3).then(b.2.cmp(&a.2)).then(a.0.cmp(&b.0)));
            let expected: Vec<Value> = rows
                .iter()
                .map(|(offer, creatives, imp, conv, rev)| {
                    json!({"offerId": offer, "name": format!("Offer {offer}"), "priority": 5, "creativeCount": creatives,
                           "impressions": imp, "conversions": conv, "revenue": *rev as f64 / 100.0,
                           "conversionRate": percent(*conv, *imp)})
                })
                .collect();
            assert_eq!(body, json!({ "data": expected }), "offer_performance days={days} segment={segment:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_effectiveness_is_exact() {
    let f = seeded().await;
    for days in WINDOWS {
        for (segment, events) in subsets(&f) {
            let (status, body) =
                f.get(&format!("type=channel_effectiveness&days={days}&asOf={}{}", f.as_of, seg_param(segment))).await;
            assert_eq!(status, 200, "{body}");
            // Channels with activity in the window, plus ch_email (active in the catalog).
            let mut by_channel: BTreeMap<String, (i64, i64)> = BTreeMap::from([("ch_email".to_string(), (0, 0))]);
            for e in events.iter().filter(|e| in_window(e.at, f.today, days)) {
                let c = by_channel.entry(e.channel.clone()).or_default();
                c.0 += i64::from(e.outcome == "impression");
                c.1 += i64::from(is_conversion(e));
            }
            let mut rows: Vec<_> = by_channel.into_iter().collect();
            rows.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(&b.0)));
            let expected: Vec<Value> = rows
                .iter()
                .map(|(ch, (imp, conv))| {
                    json!({"channelId": ch, "channelName": ch, "impressions": imp, "conversions": conv,
                           "effectiveness": percent(*conv, *imp)})
                })
                .collect();
            assert_eq!(body, json!({ "data": expected }), "channel_effectiveness days={days} segment={segment:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revenue_trend_is_exact() {
    let f = seeded().await;
    for days in WINDOWS {
        for (segment, events) in subsets(&f) {
            let (status, body) =
                f.get(&format!("type=revenue_trend&days={days}&asOf={}{}", f.as_of, seg_param(segment))).await;
            assert_eq!(status, 200, "{body}");
            let points: Vec<Value> = (0..days)
                .rev()
                .map(|ago| {
                    let d = f.today - chrono::Duration::days(ago);
                    let c: i64 = events.iter().filter(|e| e.at.date_naive() == d).map(|e| cents(e)).sum();
                    json!({"name": d.format("%b %-d").to_string(), "revenue": c as f64 / 100.0})
                })
                .collect();
            let any = events.iter().any(|e| in_window(e.at, f.today, days));
            assert_eq!(
                body,
                json!({"data": points, "hasRealData": any}),
                "revenue_trend days={days} segment={segment:?}"
            );
        }
    }
    // A window before any event: zero-filled, no real data.
    let (_, body) = f.get("type=revenue_trend&days=2&asOf=2020-01-02").await;
    assert_eq!(
        body,
        json!({"data": [{"name": "Jan 1", "revenue": 0.0}, {"name": "Jan 2", "revenue": 0.0}], "hasRealData": false})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_burn_is_exact() {
    let f = seeded().await;
    let (status, body) = f.get("type=budget_burn").await;
    assert_eq!(status, 200, "{body}");
    // Spent: Σ cost of all the offer's interactions, every date (cents, exact).
    let mut rows: Vec<(&str, i64, i64)> = crate::fixture::BUDGETS
        .iter()
        .map(|(offer, allocated)| {
            let spent: i64 =
                f.events.iter().filter(|e| e.offer == *offer).map(|e| (e.cost * 100.0).round() as i64).sum();
            (*offer, allocated * 100, spent)
        })
        .collect();
    rows.sort_by(|a, b| (b.2 * a.1).cmp(&(a.2 * b.1)).then(a.0.cmp(b.0)));
    let expected: Vec<Value> = rows
        .iter()
        .map(|(offer, allocated, spent)| {
            json!({"offerId": offer, "offerName": format!("Offer {offer}"), "allocated": *allocated as f64 / 100.0,
                   "spent": *spent as f64 / 100.0, "remaining": (allocated - spent).max(0) as f64 / 100.0,
                   "burnRate": percent(*spent, *allocated)})
        })
        .collect();
    assert_eq!(body, json!({ "data": expected }));
}

/// Expected groups: events of the window by group id, offers ordered as offer_performance.
fn expected_groups(
    events: &[&model::Interaction],
    group_of: impl Fn(&model::Interaction) -> String,
    group_name: impl Fn(&str) -> String,
    segment: bool,
) -> Vec<Value> {
    let mut groups: BTreeMap<String, BTreeMap<String, (i64, i64, i64)>> = BTreeMap::new();
    for e in events {
        let c = groups.entry(group_of(e)).or_default().entry(e.offer.clone()).or_default();
        c.0 += i64::from(e.outcome == "impression");
        c.1 += i64::from(is_conversion(e));
        c.2 += cents(e);
    }
    let mut out: Vec<(i64, String, Value)> = groups
        .into_iter()
        .map(|(gid, offers)| {
            let total: i64 = offers.values().map(|c| c.0).sum();
            let mut offers: Vec<_> = offers.into_iter().collect();
            offers.sort_by(|a, b| b.1 .1.cmp(&a.1 .1).then(b.1 .0.cmp(&a.1 .0)).then(a.0.cmp(&b.0)));
            let offers: Vec<Value> = offers
                .iter()
                .map(|(o, (imp, conv, rev))| {
                    let name = if o == "off_x" { o.clone() } else { format!("Offer {o}") };
                    let mut v = json!({"offerId": o, "name": name, "impressions": imp, "conversions": conv,
                                       "revenue": *rev as f64 / 100.0, "conversionRate": percent(*conv, *imp)});
                    if segment {
                        v["segmentId"] = json!(gid);
                        v["segmentName"] = json!(group_name(&gid));
                    }
                    v
                })
                .collect();
            (total, gid.clone(), json!({"groupName": group_name(&gid), "groupId": gid, "offers": offers}))
        })
        .collect();
    out.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    out.into_iter().map(|x| x.2).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offer_performance_grouped_is_exact() {
    let f = seeded().await;
    for days in WINDOWS {
        for (segment, events) in subsets(&f) {
            let events: Vec<&model::Interaction> =
                events.into_iter().filter(|e| in_window(e.at, f.today, days)).collect();
            let q = |g: &str| {
                format!("type=offer_performance_grouped&days={days}&asOf={}{}{g}", f.as_of, seg_param(segment))
            };
            // channel (the default); channel names are the ids in this catalog
            let (status, body) = f.get(&q("")).await;
            assert_eq!(status, 200, "{body}");
            let groups = expected_groups(&events, |e| e.channel.clone(), |g| g.to_string(), false);
            assert_eq!(
                body,
                json!({"groups": groups, "groupBy": "channel"}),
                "channel days={days} segment={segment:?}"
            );
            // category, from the catalog now; unknown offers are uncategorized
            let (_, body) = f.get(&q("&groupBy=category")).await;
            let groups = expected_groups(
                &events,
                |e| crate::fixture::category_of(&e.offer).unwrap_or("uncategorized").to_string(),
                |g| g.to_string(),
                false,
            );
            assert_eq!(
                body,
                json!({"groups": groups, "groupBy": "category"}),
                "category days={days} segment={segment:?}"
            );
        }
        // segment: seg_vip is the only active materialized segment (seg_new has no members)
        let (_, body) =
            f.get(&format!("type=offer_performance_grouped&days={days}&asOf={}&groupBy=segment", f.as_of)).await;
        let vip: Vec<&model::Interaction> = f.vip().into_iter().filter(|e| in_window(e.at, f.today, days)).collect();
        let groups = expected_groups(&vip, |_| "seg_vip".to_string(), |g| g.to_string(), true);
        assert_eq!(body, json!({"groups": groups, "groupBy": "segment"}), "segment days={days}");
    }
    let (status, body) = f.get("type=offer_performance_grouped&groupBy=offer").await;
    assert_eq!(status, 400, "{body}");
}
