//! Test-side event builders and the expected values computed from them, straight from the
//! the definitions of docs/dashboard-types.md (never from the program's output).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::{json, Value};

pub fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The tests' "today": the UTC date 11 hours ago. Event times are built as 00:01 of their
/// date plus at most 10 hours, so they are never in the future (which ingest rejects) at
/// whatever time of day the suite runs; requests pass it as `asOf`.
pub fn test_today() -> NaiveDate {
    (Utc::now() - Duration::hours(11)).date_naive()
}

/// 00:01 UTC of `today - days_ago` (callers add at most 10 hours).
pub fn at(today: NaiveDate, days_ago: i64) -> DateTime<Utc> {
    (today - Duration::days(days_ago)).and_hms_opt(0, 1, 0).unwrap().and_utc()
}

#[derive(Debug, Clone)]
pub struct Interaction {
    pub id: String,
    pub tenant: String,
    pub customer: String,
    pub offer: String,
    pub channel: String,
    pub outcome: &'static str,
    pub revenue: f64,
    pub cost: f64,
    pub at: DateTime<Utc>,
}

impl Interaction {
    pub fn to_json(&self) -> Value {
        json!({"id": self.id, "tenantId": self.tenant, "customerId": self.customer, "offerId": self.offer,
               "channelId": self.channel, "outcome": self.outcome, "revenue": self.revenue, "cost": self.cost,
               "occurredAt": ts(self.at)})
    }
}

pub const OUTCOMES: [&str; 6] = ["impression", "click", "accept", "convert", "reject", "dismiss"];

/// What [`interactions`] spreads events over.
pub struct Spread<'a> {
    pub tenant: &'a str,
    pub offers: &'a [&'a str],
    pub channels: &'a [&'a str],
    pub customers: &'a [&'a str],
    /// Event dates: today and the `days - 1` before it.
    pub days: i64,
}

/// `n` interactions spread deterministically (a small LCG, no RNG crate needed).
pub fn interactions(s: &Spread<'_>, n: usize, seed: u64, today: NaiveDate) -> Vec<Interaction> {
    let (tenant, offers, channels, customers, days) = (s.tenant, s.offers, s.channels, s.customers, s.days);
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut next = move |m: u64| {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (x >> 33) % m
    };
    (0..n)
        .map(|i| {
            // Mostly impressions, like real traffic.
            let outcome = match next(10) {
                0..=5 => "impression",
                6 => "click",
                7 => OUTCOMES[2 + next(2) as usize],
                _ => OUTCOMES[4 + next(2) as usize],
            };
            Interaction {
                id: format!("{tenant}-int-{seed}-{i}"),
                tenant: tenant.into(),
                customer: customers[next(customers.len() as u64) as usize].into(),
                offer: offers[next(offers.len() as u64) as usize].into(),
                channel: channels[next(channels.len() as u64) as usize].into(),
                outcome,
                revenue: if outcome == "convert" { (next(10_000) as f64) / 100.0 } else { 0.0 },
                cost: (next(100) as f64) / 100.0,
                at: at(today, next(days as u64) as i64) + Duration::minutes(next(600) as i64),
            }
        })
        .collect()
}

/// Per-offer counters over a set of days: impressions, positive, negative.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct OfferCounts {
    pub impressions: i64,
    pub positive: i64,
    pub negative: i64,
    pub interactions: i64,
}

pub fn in_window(t: DateTime<Utc>, today: NaiveDate, days: i64) -> bool {
    let d = t.date_naive();
    d <= today && d > today - Duration::days(days)
}

pub fn by_offer<'a>(
    events: impl IntoIterator<Item = &'a Interaction>,
    today: NaiveDate,
    days: i64,
) -> BTreeMap<String, OfferCounts> {
    let mut m: BTreeMap<String, OfferCounts> = BTreeMap::new();
    for e in events.into_iter().filter(|e| in_window(e.at, today, days)) {
        let c = m.entry(e.offer.clone()).or_default();
        c.interactions += 1;
        match e.outcome {
            "impression" => c.impressions += 1,
            "accept" | "convert" => c.positive += 1,
            "reject" | "dismiss" => c.negative += 1,
            _ => {}
        }
    }
    m
}

/// Per-date (impressions, conversions) for every date of the window, oldest first.
pub fn daily(events: &[&Interaction], today: NaiveDate, days: i64) -> Vec<(NaiveDate, i64, i64)> {
    (0..days)
        .rev()
        .map(|ago| {
            let d = today - Duration::days(ago);
            let on: Vec<_> = events.iter().filter(|e| e.at.date_naive() == d).collect();
            let imp = on.iter().filter(|e| e.outcome == "impression").count() as i64;
            let conv = on.iter().filter(|e| matches!(e.outcome, "accept" | "convert")).count() as i64;
            (d, imp, conv)
        })
        .collect()
}

pub fn round(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

pub fn catalog(tenant: &str, entity: &str, id: &str, op: &str, version: Option<i64>, data: Value) -> Value {
    let mut v = json!({"id": id, "tenantId": tenant, "entity": entity, "op": op, "data": data,
                       "updatedAt": ts(Utc::now() - Duration::minutes(5))});
    if let Some(version) = version {
        v["version"] = json!(version);
    }
    v
}

pub fn membership(tenant: &str, id: &str, segment: &str, customer: &str, op: &str) -> Value {
    json!({"id": id, "tenantId": tenant, "segmentId": segment, "customerId": customer, "op": op,
           "at": ts(Utc::now() - Duration::minutes(1))})
}
