//! anomaly_candidates: planted shifts (one offer's acceptance rate, one offer's revenue, the
//! degraded rate) come out with the right severities; stable offers and channels do not. The
//! whole list is compared with an independent implementation of docs/dashboard-types.md 5.2 over the events.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::NaiveDate;
use consumers::events::TopicKind;
use decision_views::api::auth::Role;
use serde_json::{json, Value};

use crate::helpers::spawn_app;
use crate::model::{at, round, ts};

struct Ev {
    day: i64, // days ago
    offer: &'static str,
    channel: &'static str,
    outcome: &'static str,
    revenue: f64,
}

/// docs/dashboard-types.md 5.2, written out again: (baseline, current, deltaPct, z) → severity.
fn severity(d: Option<f64>, z: Option<f64>) -> Option<&'static str> {
    let class = |v: f64, a: f64, b: f64, c: f64| {
        if v >= c {
            3
        } else if v >= b {
            2
        } else if v >= a {
            1
        } else {
            0
        }
    };
    let s = class(z.unwrap_or(0.0).abs(), 2.0, 3.0, 4.0).max(class(d.unwrap_or(0.0).abs(), 15.0, 30.0, 50.0));
    [None, Some("info"), Some("warning"), Some("critical")][s]
}

fn expected_row(
    metric: &str,
    dim: &str,
    key: Option<&str>,
    b: f64,
    c: f64,
    z: Option<f64>,
    decimals: i32,
) -> Option<(i32, f64, Value)> {
    let d = (b != 0.0).then(|| (c - b) / b * 100.0);
    let sev = severity(d, z)?;
    let rank = match sev {
        "critical" => 3,
        "warning" => 2,
        _ => 1,
    };
    Some((
        rank,
        z.map_or(0.0, f64::abs),
        json!({"metric": metric, "dimension": dim, "dimensionKey": key, "dimensionName": key,
        "baseline": round(b, decimals), "current": round(c, decimals), "deltaPct": d.map(|d| round(d, 1)),
        "zscore": z.map(|z| round(z, 1)), "severity": sev}),
    ))
}

fn prop(x1: f64, n1: f64, x0: f64, n0: f64) -> Option<(f64, f64, Option<f64>)> {
    if n1 < 30.0 || n0 < 30.0 {
        return None;
    }
    let p = (x1 + x0) / (n1 + n0);
    let den = (p * (1.0 - p) * (1.0 / n1 + 1.0 / n0)).sqrt();
    Some((x0 / n0, x1 / n1, (den > 0.0).then(|| (x1 / n1 - x0 / n0) / den)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_shifts_are_found_with_their_severities_and_nothing_else() {
    let app = spawn_app().await;
    let env = &app.env;
    let key = env.api_key("acme", Role::Viewer).await;
    let today: NaiveDate = crate::model::test_today();
    let (n, b) = (7i64, 7i64);
    let mut evs: Vec<Ev> = Vec::new();
    let mut push = |day, offer, channel, imps: usize, pos: usize, revenue_each: f64| {
        for _ in 0..imps {
            evs.push(Ev { day, offer, channel, outcome: "impression", revenue: 0.0 });
        }
        for _ in 0..pos {
            evs.push(Ev { day, offer, channel, outcome: "accept", revenue: revenue_each });
        }
    };
    for day in 0..(n + b) {
        let current = day < n;
        push(day, "o_stable1", "ch_a", 100, 10, 5.0);
        push(day, "o_stable2", "ch_b", 80, 4, 5.0);
        push(day, "o_shift_acc", "ch_a", 100, if current { 15 } else { 5 }, 0.0);
        let rev = if current {
            20.0
        } else if day % 2 == 0 {
            10.0
        } else {
            11.0
        };
        push(day, "o_shift_rev", "ch_b", 100, 10, rev);
    }
    for (i, e) in evs.iter().enumerate() {
        env.publish(
            TopicKind::Interactions,
            &json!({"id": format!("i{i}"), "tenantId": "acme", "customerId": "c", "offerId": e.offer, "channelId": e.channel,
                    "outcome": e.outcome, "revenue": e.revenue, "occurredAt": ts(at(today, e.day))}),
        );
    }
    for day in 0..(n + b) {
        let degraded = if day < n { 16 } else { 4 };
        for k in 0..200 {
            env.publish(
                TopicKind::DecisionTraces,
                &json!({"id": format!("t{day}-{k}"), "tenantId": "acme", "customerId": "c", "requestId": "r",
                        "scoringResults": [], "selectedOffers": [], "degraded": k < degraded, "totalDurationMs": 4,
                        "createdAt": ts(at(today, day))}),
            );
        }
    }
    env.wait_caught_up(Duration::from_secs(120)).await;

    // Independent expectation.
    let mut rows: Vec<(i32, f64, Value)> = Vec::new();
    let counts = |f: &dyn Fn(&Ev) -> bool| {
        let (mut x1, mut n1, mut x0, mut n0) = (0.0, 0.0, 0.0, 0.0);
        for e in evs.iter().filter(|e| f(e)) {
            let (x, nn) = if e.day < n { (&mut x1, &mut n1) } else { (&mut x0, &mut n0) };
            *nn += f64::from(e.outcome == "impression");
            *x += f64::from(e.outcome == "accept");
        }
        prop(x1, n1, x0, n0)
    };
    if let Some((b0, c1, z)) = counts(&|_| true) {
        rows.extend(expected_row("acceptance_rate", "overall", None, b0, c1, z, 4));
    }
    for o in ["o_shift_acc", "o_shift_rev", "o_stable1", "o_stable2"] {
        if let Some((b0, c1, z)) = counts(&|e| e.offer == o) {
            rows.extend(expected_row("acceptance_rate", "offer", Some(o), b0, c1, z, 4));
        }
    }
    for ch in ["ch_a", "ch_b"] {
        if let Some((b0, c1, z)) = counts(&|e| e.channel == ch) {
            rows.extend(expected_row("acceptance_rate", "channel", Some(ch), b0, c1, z, 4));
        }
    }
    for o in ["o_shift_acc", "o_shift_rev", "o_stable1", "o_stable2"] {
        let mut daily: BTreeMap<i64, f64> = (0..(n + b)).map(|d| (d, 0.0)).collect();
        for e in evs.iter().filter(|e| e.offer == o) {
            *daily.get_mut(&e.day).unwrap() += e.revenue;
        }
        let cur: Vec<f64> = (0..n).map(|d| daily[&d]).collect();
        let base: Vec<f64> = (n..n + b).map(|d| daily[&d]).collect();
        let (mu1, mu0) = (cur.iter().sum::<f64>() / n as f64, base.iter().sum::<f64>() / b as f64);
        if mu1 == 0.0 && mu0 == 0.0 {
            continue;
        }
        let s0 = (base.iter().map(|x| (x - mu0).powi(2)).sum::<f64>() / (b - 1) as f64).sqrt();
        let z = (s0 > 0.0).then(|| (mu1 - mu0) / (s0 / (n as f64).sqrt()));
        rows.extend(expected_row("revenue", "offer", Some(o), mu0, mu1, z, 2));
    }
    if let Some((b0, c1, z)) = prop(16.0 * 7.0, 1400.0, 4.0 * 7.0, 1400.0) {
        rows.extend(expected_row("degraded_scoring_rate", "overall", None, b0, c1, z, 4));
    }
    rows.sort_by(|a, b| {
        b.0.cmp(&a.0).then(b.1.total_cmp(&a.1)).then_with(|| {
            let k = |v: &Value| (v["metric"].to_string(), v["dimension"].to_string(), v["dimensionKey"].to_string());
            k(&a.2).cmp(&k(&b.2))
        })
    });
    let expected: Vec<Value> = rows.into_iter().map(|r| r.2).collect();

    let q = format!(
        "/api/v1/dashboard-data?type=anomaly_candidates&days={n}&baselineDays={b}&asOf={}",
        today.format("%Y-%m-%d")
    );
    let (status, body) = app.get(&q, &key, "acme").await;
    assert_eq!(status, 200, "{body}");
    let since = (today - chrono::Duration::days(n - 1)).format("%Y-%m-%dT00:00:00.000Z").to_string();
    assert_eq!(body, json!({"data": expected, "period": {"currentDays": n, "baselineDays": b, "since": since}}));

    // The planted shifts, by name, with their severities; nothing for what did not move.
    let find = |metric: &str, key: Option<&str>| {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["metric"] == metric && c["dimensionKey"].as_str() == key)
            .cloned()
    };
    assert_eq!(find("acceptance_rate", Some("o_shift_acc")).unwrap()["severity"], "critical");
    assert_eq!(find("revenue", Some("o_shift_rev")).unwrap()["severity"], "critical");
    assert_eq!(find("degraded_scoring_rate", None).unwrap()["severity"], "critical");
    for stable in ["o_stable1", "o_stable2", "o_shift_rev"] {
        assert!(find("acceptance_rate", Some(stable)).is_none(), "{stable} acceptance did not move");
    }
    for stable in ["o_stable1", "o_stable2"] {
        assert!(find("revenue", Some(stable)).is_none(), "{stable} revenue did not move");
    }
    assert!(find("acceptance_rate", Some("ch_b")).is_none(), "ch_b did not move");
}
