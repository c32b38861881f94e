//! A bounded randomized test: a seeded RNG (printed; `DV_TEST_SEED` replays one) draws values
//! that clients get wrong (empty, huge, negative, unicode, far dates, `%00`, bytes that are not
//! UTF-8, very long strings, repeated parameters, random JSON bodies) for every parameter of
//! every endpoint, and sends a few thousand requests over a few keep-alive connections. Every
//! request must get a whole response on its connection, never a 5xx, and every error must be
//! `{"error": "…"}`.

use std::time::{Duration, Instant};

use axum::http::Method;
use consumers::events::TopicKind;
use decision_views::api::auth::Role;
use decision_views::api::DASHBOARD_TYPES;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::conn::Conn;
use crate::helpers::{spawn_app_with_settings, TestEnv};

const CONNECTIONS: u64 = 4;
const REQUESTS_PER_CONNECTION: usize = 750;

const DASHBOARD_PARAMS: [&str; 13] = [
    "type",
    "days",
    "asOf",
    "segmentId",
    "groupBy",
    "filterId",
    "channelId",
    "categoryId",
    "decisionFlowId",
    "offerId",
    "baselineDays",
    "modelId",
    "_",
];

/// Percent-encodes every byte but the unreserved ones.
fn encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (*b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A value of parameter `name`: half the time one it accepts, so that requests get past
/// validation into every type's reads, else a hostile one.
fn value_of(rng: &mut StdRng, name: &str) -> String {
    if rng.random_bool(0.5) {
        return value(rng);
    }
    let today = chrono::Utc::now().date_naive();
    let pick = |rng: &mut StdRng, xs: &[&str]| xs[rng.random_range(0..xs.len())].to_owned();
    match name {
        "type" => DASHBOARD_TYPES[rng.random_range(0..DASHBOARD_TYPES.len())].to_owned(),
        "days" | "baselineDays" => rng.random_range(1..=365).to_string(),
        "asOf" => (today - chrono::Duration::days(rng.random_range(-366..800))).to_string(),
        "groupBy" => pick(rng, &["channel", "category", "segment", "offer"]),
        "limit" | "offset" => rng.random_range(0..300).to_string(),
        _ => pick(rng, &["o1", "off_premium_card", "web", "email", "seg_vip", "df_default", "cat_cards", "CUST001"]),
    }
}

/// One hostile query value, already encoded for the URI (some on purpose badly).
fn value(rng: &mut StdRng) -> String {
    let today = chrono::Utc::now().date_naive();
    let pick = |rng: &mut StdRng, xs: &[&str]| xs[rng.random_range(0..xs.len())].to_owned();
    match rng.random_range(0..13) {
        0 => String::new(),
        1 => rng.random_range(1..=365).to_string(),
        2 => pick(rng, &["99999999999999999999999999", "9223372036854775807", "9223372036854775808", "1e309"]),
        3 => pick(rng, &["-1", "-0", "-9223372036854775808", "-365"]),
        4 => (today - chrono::Duration::days(rng.random_range(-400..800))).to_string(),
        5 => encode(
            pick(rng, &["+99999-01-01", "-0001-12-31", "0000-01-01", "9999-12-31", "262143-01-01", "1969-12-31"])
                .as_bytes(),
        ),
        6 => encode(pick(rng, &["ü", "€uro", "😀", "\u{202e}rtl", "a\u{301}", "日本語", "\u{feff}", "\t"]).as_bytes()),
        7 => pick(rng, &["%00", "a%00b", "%zz", "%", "%F", "+", "%26%3D", "%C0%80"]),
        8 => "x".repeat(rng.random_range(1_000..8_000)),
        9 => {
            let bytes: Vec<u8> = (0..rng.random_range(0..64)).map(|_| rng.random()).collect();
            encode(&bytes)
        }
        10 => pick(rng, &["channel", "category", "segment", "offer", "o1", "web", "seg_vip", "acme", "summary"]),
        11 => encode(pick(rng, &["null", "true", "[]", "{}", "NaN", "0x10", "7.0", " 7", "1,2", "'; --"]).as_bytes()),
        _ => DASHBOARD_TYPES[rng.random_range(0..DASHBOARD_TYPES.len())].to_owned(),
    }
}

/// A query string over `names` (a random subset, some repeated) plus an unknown parameter.
fn query(rng: &mut StdRng, names: &[&str]) -> String {
    let mut pairs = Vec::new();
    for name in names {
        for _ in 0..[0, 1, 1, 1, 2][rng.random_range(0..5)] {
            pairs.push(format!("{name}={}", value_of(rng, name)));
        }
    }
    if rng.random_bool(0.3) {
        pairs.push(format!("{}={}", encode(value(rng).as_bytes()), value(rng)));
    }
    pairs.join("&")
}

/// A random JSON value (settings bodies).
fn json_value(rng: &mut StdRng, depth: u32) -> Value {
    let keys = ["decisionTraceEnabled", "decisionTraceSampleRate", "aiAnalyzerSettings", "llmExplanationsEnabled", "x"];
    match rng.random_range(0..if depth > 3 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.random_bool(0.5)),
        2 => json!([0.0, 0.5, 1.0, -0.0, 1e308, -1.5, 2.0, f64::MIN_POSITIVE][rng.random_range(0..8)]),
        3 => json!([i64::MAX, i64::MIN, 0, 1][rng.random_range(0..4)]),
        4 => json!(u64::MAX),
        5 => json!(["", "\u{0}", "ü😀", "true"][rng.random_range(0..4)]),
        6 => Value::Array((0..rng.random_range(0..4)).map(|_| json_value(rng, depth + 1)).collect()),
        _ => Value::Object(
            (0..rng.random_range(0..4))
                .map(|_| (keys[rng.random_range(0..keys.len())].to_owned(), json_value(rng, depth + 1)))
                .collect(),
        ),
    }
}

/// A settings body: mostly a random object, sometimes bytes that are not JSON at all.
fn body(rng: &mut StdRng) -> Vec<u8> {
    match rng.random_range(0..10) {
        0 => b"{\"decisionTraceSampleRate\": 1e400}".to_vec(),
        1 => format!("{}{}", "[".repeat(300), "]".repeat(300)).into_bytes(),
        2 => (0..rng.random_range(0..200)).map(|_| rng.random()).collect(),
        3 => b"{\"decisionTraceEnabled\": tr".to_vec(),
        _ => json_value(rng, 0).to_string().into_bytes(),
    }
}

/// One random request: (method, path and query, whether to use the platform key, body,
/// content type).
fn request(rng: &mut StdRng) -> (Method, String, bool, Vec<u8>, Option<&'static str>) {
    let get = |path: String| (Method::GET, path, false, Vec::new(), None);
    match rng.random_range(0..20) {
        0..=10 => get(format!("/api/v1/dashboard-data?{}", query(rng, &DASHBOARD_PARAMS))),
        11 | 12 => {
            get(format!("/api/v1/decision-traces?{}", query(rng, &["customerId", "requestId", "limit", "offset"])))
        }
        13 => get(format!("/api/v1/decision-traces/{}", value(rng).replace('/', "%2F"))),
        14 => get(format!("/api/v1/dead-letters?{}", query(rng, &["topic", "reason", "limit", "offset"]))),
        15 => (Method::GET, format!("/api/v1/ingest/status?{}", query(rng, &[])), rng.random_bool(0.5), vec![], None),
        16 => get("/api/v1/settings".into()),
        _ => {
            let content_type = [Some("application/json"), Some("application/json"), Some("text/plain"), None];
            (Method::PUT, "/api/v1/settings".into(), false, body(rng), content_type[rng.random_range(0..4)])
        }
    }
}

/// The schema examples of every topic, as acme's events of the last hour: some data for the
/// reads to go through (names, segments, traces), and their dead letters.
async fn publish_examples(env: &TestEnv) {
    let now = chrono::Utc::now() - chrono::Duration::hours(1);
    let stamp = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    for kind in TopicKind::ALL {
        let path = format!("{}/schemas/examples/{}.json", env!("CARGO_MANIFEST_DIR"), kind.default_name());
        let events: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        for mut event in events {
            event["tenantId"] = json!("acme");
            for field in ["createdAt", "occurredAt", "updatedAt", "at", "evaluatedAt"] {
                if event.get(field).is_some() {
                    event[field] = json!(stamp);
                }
            }
            env.publish(kind, &event);
        }
    }
    env.publish_raw(TopicKind::Interactions, "acme:c1", b"\xff not json");
    env.wait_caught_up(Duration::from_secs(60)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_values_for_every_parameter_never_answer_5xx_or_drop_a_connection() {
    let seed: u64 = std::env::var("DV_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    println!("api_hardening::fuzz seed {seed} (DV_TEST_SEED={seed} replays it)");
    let env = TestEnv::new().await;
    let mut settings = env.settings();
    // Past the rate limit every request would be a 429 that validates nothing.
    settings.http.reads.rate = 1_000_000;
    settings.http.reads.burst = 1_000_000;
    let app = spawn_app_with_settings(env, settings).await;
    publish_examples(&app.env).await;
    let admin = app.env.api_key("acme", Role::Admin).await;
    let platform = app.env.platform_key().await;

    let started = Instant::now();
    let mut workers = Vec::new();
    for c in 0..CONNECTIONS {
        let (address, admin, platform) = (app.address.clone(), admin.clone(), platform.clone());
        workers.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed.wrapping_add(c));
            let mut conn = Conn::open(&address).await;
            let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
            let mut answered_types = std::collections::BTreeSet::new();
            for i in 0..REQUESTS_PER_CONNECTION {
                let (method, path, as_platform, body, content_type) = request(&mut rng);
                let tenant = if as_platform && rng.random_bool(0.5) { value(&mut rng) } else { "acme".into() };
                let key = if as_platform { platform.as_str() } else { admin.as_str() };
                let mut headers = vec![("x-api-key", key), ("x-tenant-id", tenant.as_str())];
                if let Some(ct) = content_type {
                    headers.push(("content-type", ct));
                }
                let what = format!("seed {seed}, connection {c}, request {i}: {method} {path}");
                let answer = match conn.send(method.clone(), &path, &headers, body).await {
                    Ok(a) => a,
                    Err(e) => panic!("{what}: {e}"),
                };
                assert!(answer.status < 500, "{what}: {} {:?}", answer.status, answer.body);
                if answer.status >= 400 {
                    assert!(!answer.error().is_empty(), "{what}");
                } else {
                    answer.json();
                    answered_types.insert(answered(&path));
                }
                *statuses.entry(answer.status).or_default() += 1;
            }
            assert!(!conn.is_closed(), "connection {c} is still open");
            (statuses, answered_types)
        }));
    }
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut answered = std::collections::BTreeSet::new();
    for w in workers {
        let (s, t) = w.await.expect("a connection's requests");
        for (status, n) in s {
            *statuses.entry(status).or_default() += n;
        }
        answered.extend(t);
    }
    println!("{} requests in {:?}: {statuses:?}", CONNECTIONS as usize * REQUESTS_PER_CONNECTION, started.elapsed());
    // The draws reach past validation: every type answered data at least once.
    let missing: Vec<&&str> = DASHBOARD_TYPES.iter().filter(|t| !answered.contains(**t)).collect();
    assert!(missing.is_empty(), "types never answered 200: {missing:?}");
    assert!(statuses.get(&400).is_some_and(|n| *n > 100), "hostile values were refused");
}

/// The dashboard type a request asked for (the last `type=`, or the default when absent or
/// empty); for other endpoints, the path.
fn answered(path: &str) -> String {
    let Some(query) = path.strip_prefix("/api/v1/dashboard-data?") else { return path.to_owned() };
    let t = query.split('&').filter_map(|kv| kv.strip_prefix("type=")).next_back().filter(|t| !t.is_empty());
    t.unwrap_or("summary").to_owned()
}
