//! selection_frequency and why_not_ranked: exact against the published traces for every filter
//! combination and several windows. The traces and catalog here serve score_distribution's test
//! too.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use consumers::events::TopicKind;
use decision_views::api::auth::Role;
use serde_json::{json, Value};

use crate::helpers::spawn_app;
use crate::model::{at, catalog, in_window, membership, round, ts};
use crate::processes::Lcg;

type Param = Option<&'static str>; // a filter parameter of a request (None: not given)

pub struct Trace {
    pub json: Value,
    pub channel: String,
    flow: String,
    customer: String,
    pub at: chrono::DateTime<Utc>,
    /// offer → (scored rank, selected)
    candidates: BTreeMap<String, (Option<i64>, bool)>,
    /// offer → (qualification failed, contact blocked, score)
    detail: BTreeMap<String, (bool, bool, Option<f64>)>,
    winner: Option<String>, // the selectedOffers entry with the lowest rank
}

pub fn make_traces(n: usize, today: chrono::NaiveDate) -> Vec<Trace> {
    let mut rng = Lcg::new(9);
    (0..n)
        .map(|i| {
            let channel = format!("ch{}", rng.below(3));
            let flow = format!("df{}", rng.below(2));
            let customer = format!("c{}", rng.below(20));
            let when = at(today, rng.below(10) as i64);
            let first = rng.below(10);
            let offers: Vec<String> = (0..6).map(|k| format!("o{}", (first + k * 3) % 10)).collect();
            let mut qual = vec![];
            let mut contact = vec![];
            let mut scored: Vec<(String, f64)> = vec![];
            let mut detail: BTreeMap<String, (bool, bool, Option<f64>)> = BTreeMap::new();
            for o in &offers {
                let passed = rng.below(5) != 0;
                qual.push(json!({"offerId": o, "passed": passed, "reason": "r"}));
                detail.insert(o.clone(), (!passed, false, None));
                if !passed {
                    continue;
                }
                let blocked = rng.below(6) == 0;
                contact.push(json!({"offerId": o, "blocked": blocked, "reason": "r"}));
                detail.get_mut(o).unwrap().1 = blocked;
                if !blocked {
                    let score = rng.below(1000) as f64 / 1000.0;
                    detail.get_mut(o).unwrap().2 = Some(score);
                    scored.push((o.clone(), score));
                }
            }
            scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let scoring: Vec<Value> =
                scored.iter().enumerate().map(|(r, (o, s))| json!({"offerId": o, "score": s, "rank": r + 1})).collect();
            let selected: Vec<Value> = scoring.iter().take(2).cloned().collect();
            let mut candidates: BTreeMap<String, (Option<i64>, bool)> =
                offers.iter().map(|o| (o.clone(), (None, false))).collect();
            for (r, (o, _)) in scored.iter().enumerate() {
                candidates.get_mut(o).unwrap().0 = Some(r as i64 + 1);
            }
            for s in &selected {
                candidates.get_mut(s["offerId"].as_str().unwrap()).unwrap().1 = true;
            }
            let json = json!({"id": format!("t{i}"), "tenantId": "acme", "customerId": customer, "requestId": "r",
                "channelId": channel, "decisionFlowId": flow, "qualificationResults": qual,
                "contactPolicyResults": contact, "scoringResults": scoring, "selectedOffers": selected,
                "totalDurationMs": 5, "createdAt": ts(when)});
            let winner = scored.first().map(|w| w.0.clone()).filter(|_| !selected.is_empty());
            Trace { json, channel, flow, customer, at: when, candidates, detail, winner }
        })
        .collect()
}

pub fn category(offer: &str) -> &'static str {
    if offer < "o5" {
        "cat_1"
    } else {
        "cat_2"
    }
}

/// Offers o0..o9 ("Offer N", categories by `category`).
pub fn publish_offers(env: &crate::helpers::TestEnv) {
    for o in 0..10 {
        let id = format!("o{o}");
        let data = json!({"name": format!("Offer {o}"), "categoryId": category(&id)});
        env.publish(TopicKind::Catalog, &catalog("acme", "offer", &id, "upsert", Some(1), data));
    }
}

/// Customers c0..c7 join seg_a; returns them.
fn publish_vip_segment(env: &crate::helpers::TestEnv) -> Vec<String> {
    let vip: Vec<String> = (0..8).map(|c| format!("c{c}")).collect();
    for c in &vip {
        env.publish(TopicKind::SegmentMembership, &membership("acme", &format!("m-{c}"), "seg_a", c, "add"));
    }
    vip
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selection_frequency_is_exact_for_every_filter() {
    let app = spawn_app().await;
    let env = &app.env;
    let key = env.api_key("acme", Role::Viewer).await;
    let today = crate::model::test_today();
    publish_offers(env);
    let vip = publish_vip_segment(env);
    env.wait_caught_up(Duration::from_secs(60)).await;
    let traces = make_traces(1_500, today);
    for t in &traces {
        env.publish(TopicKind::DecisionTraces, &t.json);
    }
    env.publish(TopicKind::DecisionTraces, &traces[7].json); // a resent duplicate
    env.wait_caught_up(Duration::from_secs(90)).await;

    let filters: [(&str, Param, Param, Param, Param); 9] = [
        ("none", None, None, None, None),
        ("channel", Some("ch1"), None, None, None),
        ("flow", None, Some("df0"), None, None),
        ("channel+flow", Some("ch2"), Some("df1"), None, None),
        ("segment", None, None, Some("seg_a"), None),
        ("segment+channel", Some("ch0"), None, Some("seg_a"), None),
        ("segment+category", None, None, Some("seg_a"), Some("cat_2")),
        ("category", None, None, None, Some("cat_2")),
        ("channel+category", Some("ch1"), None, None, Some("cat_2")),
    ];
    for days in [1, 4, 10] {
        for (label, ch, fl, seg, cat) in filters {
            let matching: Vec<&Trace> = traces
                .iter()
                .filter(|t| in_window(t.at, today, days))
                .filter(|t| ch.is_none_or(|c| t.channel == c) && fl.is_none_or(|f| t.flow == f))
                .filter(|t| seg.is_none() || vip.contains(&t.customer))
                .collect();
            // offer → (eligible, scored, selected, rank sum, ranks)
            let mut per: BTreeMap<String, (i64, i64, i64, i64, [i64; 10])> = BTreeMap::new();
            for t in &matching {
                for (o, (rank, sel)) in &t.candidates {
                    if cat.is_some_and(|c| category(o) != c) {
                        continue;
                    }
                    let e = per.entry(o.clone()).or_default();
                    e.0 += 1;
                    if let Some(r) = rank {
                        e.1 += 1;
                        e.3 += r;
                        if *r <= 10 {
                            e.4[(*r - 1) as usize] += 1;
                        }
                    }
                    e.2 += i64::from(*sel);
                }
            }
            let mut rows: Vec<_> = per.into_iter().collect();
            rows.sort_by(|a, b| b.1 .2.cmp(&a.1 .2).then(b.1 .0.cmp(&a.1 .0)).then(a.0.cmp(&b.0)));
            let data: Vec<Value> = rows
                .iter()
                .map(|(o, (el, sc, se, rs, ranks))| {
                    json!({"offerId": o, "offerName": format!("Offer {}", &o[1..]), "eligibleCount": el, "scoredCount": sc,
                           "selectedCount": se, "selectionRate": round(*se as f64 / *el as f64, 3),
                           "avgRank": if *sc > 0 { json!(round(*rs as f64 / *sc as f64, 1)) } else { Value::Null },
                           "rankDistribution": ranks})
                })
                .collect();
            let mut q = format!(
                "/api/v1/dashboard-data?type=selection_frequency&days={days}&asOf={}",
                today.format("%Y-%m-%d")
            );
            for (k, v) in [("channelId", ch), ("decisionFlowId", fl), ("segmentId", seg), ("categoryId", cat)] {
                if let Some(v) = v {
                    q.push_str(&format!("&{k}={v}"));
                }
            }
            let (status, body) = app.get(&q, &key, "acme").await;
            assert_eq!(status, 200, "{body}");
            let since = (today - chrono::Duration::days(days - 1)).format("%Y-%m-%dT00:00:00.000Z").to_string();
            assert_eq!(
                body,
                json!({"data": data, "totalTraces": matching.len(), "period": {"days": days, "since": since}}),
                "days={days} filter={label}"
            );
        }
    }
    // The per-offer running totals those reads use, against the daily rows (10 days of traces).
    let mut conn = env.pool.acquire().await.unwrap();
    crate::rollups::assert_running_totals_exact(&mut conn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn why_not_ranked_is_exact_and_adds_up() {
    let app = spawn_app().await;
    let env = &app.env;
    let key = env.api_key("acme", Role::Viewer).await;
    let today = crate::model::test_today();
    publish_offers(env);
    let vip = publish_vip_segment(env);
    env.wait_caught_up(Duration::from_secs(60)).await;
    let traces = make_traces(1_500, today);
    for t in &traces {
        env.publish(TopicKind::DecisionTraces, &t.json);
    }
    env.wait_caught_up(Duration::from_secs(90)).await;

    for days in [1, 10] {
        for segment in [None, Some("seg_a")] {
            for offer in ["o3", "o8", "o_never"] {
                let window: Vec<&Trace> = traces
                    .iter()
                    .filter(|t| in_window(t.at, today, days) && (segment.is_none() || vip.contains(&t.customer)))
                    .collect();
                let (mut el, mut sel, mut q, mut c, mut low, mut none) = (0i64, 0i64, 0i64, 0i64, 0i64, 0i64);
                let (mut ranks, mut score_sum, mut score_n) = ([0i64; 10], 0i64, 0i64);
                let mut beaten: BTreeMap<String, i64> = BTreeMap::new();
                for t in &window {
                    let Some((rank, selected)) = t.candidates.get(offer) else { continue };
                    let (qf, blocked, score) = t.detail[offer];
                    el += 1;
                    if let Some(r) = rank {
                        ranks[(*r - 1) as usize] += i64::from(*r <= 10);
                    }
                    if let Some(s) = score {
                        score_sum += (s * 1e6).round() as i64;
                        score_n += 1;
                    }
                    if *selected {
                        sel += 1;
                    } else if qf {
                        q += 1;
                    } else if blocked {
                        c += 1;
                    } else if rank.is_some() {
                        low += 1;
                        if let Some(w) = t.winner.as_ref().filter(|w| w.as_str() != offer) {
                            *beaten.entry(w.clone()).or_default() += 1;
                        }
                    } else {
                        none += 1;
                    }
                }
                let mut beaten: Vec<_> = beaten.into_iter().collect();
                beaten.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                beaten.truncate(5);
                let name = |o: &str| if o == "o_never" { o.to_string() } else { format!("Offer {}", &o[1..]) };
                let beaten: Vec<Value> =
                    beaten.iter().map(|(o, n)| json!({"offerId": o, "offerName": name(o), "count": n})).collect();
                let since = (today - chrono::Duration::days(days - 1)).format("%Y-%m-%dT00:00:00.000Z").to_string();
                let expected = json!({
                    "offerId": offer, "offerName": name(offer), "timesEligible": el, "timesSelected": sel,
                    "missRate": if el == 0 { 0.0 } else { round((el - sel) as f64 / el as f64, 3) },
                    "missReasons": {"scoredTooLow": low, "filteredByContactPolicy": c, "filteredByQualification": q,
                                    "beatenBy": beaten, "notRanked": none},
                    "rankDistribution": ranks,
                    "avgScore": if score_n == 0 { Value::Null } else { json!(round(score_sum as f64 / score_n as f64 / 1e6, 3)) },
                    "period": {"days": days, "since": since}, "sampleSize": window.len(), "sampleCap": null});
                let seg = segment.map(|s| format!("&segmentId={s}")).unwrap_or_default();
                let q = format!(
                    "/api/v1/dashboard-data?type=why_not_ranked&offerId={offer}&days={days}&asOf={}{seg}",
                    today.format("%Y-%m-%d")
                );
                let (status, body) = app.get(&q, &key, "acme").await;
                assert_eq!(status, 200, "{body}");
                assert_eq!(body, expected, "offer={offer} days={days} segment={segment:?}");
                assert_eq!(q_sum(&body), el, "reasons plus selections add up to timesEligible");
            }
        }
    }
    let (status, _) = app.get("/api/v1/dashboard-data?type=why_not_ranked", &key, "acme").await;
    assert_eq!(status, 400, "offerId is required");
}

/// Σ of the four miss reasons and the selections of a why_not_ranked answer.
fn q_sum(body: &Value) -> i64 {
    let r = &body["missReasons"];
    ["scoredTooLow", "filteredByContactPolicy", "filteredByQualification", "notRanked"]
        .iter()
        .map(|k| r[*k].as_i64().unwrap())
        .sum::<i64>()
        + body["timesSelected"].as_i64().unwrap()
}
