//! `rebuild` (issue 17, SPEC 3): the views rebuilt from the retained log beside the live ones
//! while events keep flowing, live ingest keeps committing and readers keep reading; then
//! swapped in whole. Every reader's every answer is checked (no half-built view: a count never
//! goes down), the result is compared with values computed from the published events, a view
//! damaged before the rebuild comes back right, and the progress shows in the ingest status.
//! Beside the interactions the test computes, the standard workload's generator publishes every
//! topic (traces, memberships, suppressions, attributions, model metrics); afterwards every
//! table the rebuild replaced equals, row for row, the tables of a fresh database that ingested
//! the same log from its start.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use consumers::events::TopicKind;
use decision_views::api::auth::Role;
use decision_views::publish::{self, PublishArgs};
use decision_views::recovery::rebuild::{self, RebuildOptions};
use decision_views::recovery::shadow::KEPT;
use decision_views::startup::Mode;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::helpers::{spawn_app, spawn_app_with, spawn_app_with_settings, TestApp, TestEnv};
use crate::model::{self, catalog, test_today, Spread};

const OFFERS: [&str; 4] = ["o1", "o2", "o3", "o4"];

/// acceptance_rate over 7 days as (offerId, offerName, impressions, positive, negative).
type Rates = Vec<(String, String, i64, i64, i64)>;

fn rates(body: &Value) -> Rates {
    body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|r| {
            let n = |k: &str| r[k].as_i64().unwrap();
            (
                r["offerId"].as_str().unwrap().into(),
                r["offerName"].as_str().unwrap().into(),
                n("impressions"),
                n("positive"),
                n("negative"),
            )
        })
        .collect()
}

fn expected(events: &[model::Interaction]) -> Rates {
    let today = test_today();
    let mut rows: Rates = model::by_offer(events, today, 7)
        .into_iter()
        .map(|(offer, c)| (offer.clone(), format!("Offer {offer}"), c.impressions, c.positive, c.negative))
        .collect();
    rows.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    rows
}

/// Reads acceptance_rate until told to stop; every answer must be 200 and no offer's count may
/// ever go down (a half-built view would show fewer). Returns how many answers it checked.
async fn reader(app: Arc<TestApp>, key: String, stop: Arc<AtomicBool>) -> usize {
    let path = format!("/api/v1/dashboard-data?type=acceptance_rate&days=7&asOf={}", test_today());
    let mut seen: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
    let mut answers = 0;
    while !stop.load(Ordering::Relaxed) {
        let (status, body) = app.get(&path, &key, "acme").await;
        assert_eq!(status, 200, "every answer during the rebuild: {body}");
        let now: BTreeMap<String, (i64, i64, i64)> =
            rates(&body).into_iter().map(|(offer, _, imp, pos, neg)| (offer, (imp, pos, neg))).collect();
        for (offer, before) in &seen {
            let after = now.get(offer).copied().unwrap_or_default();
            assert!(
                after.0 >= before.0 && after.1 >= before.1 && after.2 >= before.2,
                "{offer} went down: {before:?} → {body}"
            );
        }
        seen = now;
        answers += 1;
        // Two readers at ~30/s each stay under the tenant's read limit (100/s).
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_swaps_in_exact_views_while_events_flow_and_readers_read() {
    let app = Arc::new(spawn_app().await);
    let env = &app.env;
    let viewer = env.api_key("acme", Role::Viewer).await;
    let platform = env.platform_key().await;
    for offer in OFFERS {
        let data = json!({"name": format!("Offer {offer}"), "status": "active"});
        env.publish(TopicKind::Catalog, &catalog("acme", "offer", offer, "upsert", Some(1), data));
    }
    let spread =
        Spread { tenant: "acme", offers: &OFFERS, channels: &["web", "app"], customers: &["c1", "c2", "c3"], days: 7 };
    let events = model::interactions(&spread, 30_000, 17, test_today());
    let (before, during) = events.split_at(600);
    for e in before {
        env.publish(TopicKind::Interactions, &e.to_json());
    }
    // Every other topic too, from the standard workload's generator (tenants of its own).
    let workload = PublishArgs {
        traces: 300,
        rate: 0,
        seed: 5,
        tenants: 2,
        days: 7,
        live: false,
        customers: 500,
        skip_catalog: false,
        large_tenant_trace_sample_rate: 0.5,
    };
    publish::run(&env.settings(), workload).await.expect("the workload is published");
    env.wait_caught_up(Duration::from_secs(120)).await;

    // A bug damaged a view: o1's catalog entry is gone, so its name shows as its id.
    sqlx::query("DELETE FROM catalog_entities WHERE entity = 'offer' AND entity_id = 'o1'")
        .execute(&env.pool)
        .await
        .unwrap();
    let path = format!("/api/v1/dashboard-data?type=acceptance_rate&days=7&asOf={}", test_today());
    let damaged = rates(&app.get(&path, &viewer, "acme").await.1);
    assert!(damaged.iter().any(|r| r.0 == "o1" && r.1 == "o1"), "{damaged:?}");

    // Readers, a publisher and the rebuild, all at once; the ingest status polled meanwhile.
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2).map(|_| tokio::spawn(reader(app.clone(), viewer.clone(), stop.clone()))).collect();
    // ~250 events/s until the rebuild is done (at most 29,400, two minutes: the test fails if it is not done by then).
    let rebuilt_flag = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (publish, during, done) = (env.clone_for_publish(), during.to_vec(), rebuilt_flag.clone());
        tokio::spawn(async move {
            let mut published = 0;
            for chunk in during.chunks(10) {
                if done.load(Ordering::Relaxed) {
                    break;
                }
                for e in chunk {
                    publish.publish(TopicKind::Interactions, &e.to_json());
                }
                published += chunk.len();
                publish.flush();
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
            published
        })
    };
    let options = RebuildOptions {
        restart: false,
        allow_truncated_log: false,
        swap_within: 100,
        max_pause: Duration::from_secs(10),
    };
    let settings = env.settings();
    let rebuilding = {
        let pool = env.pool.clone();
        tokio::spawn(async move { rebuild::run(&settings, &pool, options, CancellationToken::new()).await })
    };
    let mut states = Vec::new();
    while !rebuilding.is_finished() {
        let (status, body) = app.get("/api/v1/ingest/status", &platform, "").await;
        assert_eq!(status, 200, "{body}");
        let r = &body["rebuild"];
        if r["state"] == "building" && r["partitions"].as_array().is_some_and(|p| !p.is_empty()) {
            let positions: i64 =
                r["partitions"].as_array().unwrap().iter().map(|p| p["position"].as_i64().unwrap()).sum();
            assert_eq!(positions, r["applied"].as_i64().unwrap(), "applied counts from the log's start (0): {r}");
        }
        if let Some(s) = r["state"].as_str() {
            if states.last().map(String::as_str) != Some(s) {
                states.push(s.to_owned());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rebuilt = rebuilding.await.unwrap().expect("the rebuild completes").expect("not stopped");
    rebuilt_flag.store(true, Ordering::Relaxed);
    let published = publisher.await.unwrap();
    assert!(published < during.len(), "events flowed until the rebuild was done: {published}");
    env.wait_caught_up(Duration::from_secs(60)).await;
    stop.store(true, Ordering::Relaxed);
    let mut answers = 0;
    for r in readers {
        answers += r.await.unwrap();
    }
    eprintln!("rebuild {rebuilt:?}; status states {states:?}; {answers} answers checked during it");
    assert!(answers > 10, "the readers read throughout: {answers}");
    assert_eq!(states.first().map(String::as_str), Some("building"), "progress visible while building: {states:?}");
    let (_, body) = app.get("/api/v1/ingest/status", &platform, "").await;
    assert_eq!(body["rebuild"]["state"], "done", "{body}");
    assert!(rebuilt.messages >= 1_000, "every message from the log's start: {rebuilt:?}");

    // Exact against the published events, o1's name back; live ingest goes on on the new views
    // (a resent event still counts once: the dedup keys were rebuilt too).
    let events = &events[..before.len() + published];
    assert_eq!(rates(&app.get(&path, &viewer, "acme").await.1), expected(events));
    env.publish(TopicKind::Interactions, &events[0].to_json());
    env.publish(TopicKind::Interactions, &model::interactions(&spread, 1, 99, test_today())[0].to_json());
    env.wait_caught_up(Duration::from_secs(60)).await;
    let mut more = events.to_vec();
    more.push(model::interactions(&spread, 1, 99, test_today())[0].clone());
    assert_eq!(rates(&app.get(&path, &viewer, "acme").await.1), expected(&more), "one more, the resend once");
    let retired: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {}.catalog_entities WHERE tenant_id = 'acme' AND entity = 'offer'",
        rebuilt.retired
    ))
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(retired, 3, "the damaged views are kept aside");

    // The CLI, as operators run it: a second rebuild with nothing flowing.
    let out = Command::new(env!("CARGO_BIN_EXE_decision-views"))
        .arg("rebuild")
        .env_clear()
        .envs(env.env_vars())
        .output()
        .expect("run the binary");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.contains("rebuild 2 done"), "{text}");
    assert_eq!(rates(&app.get(&path, &viewer, "acme").await.1), expected(&more), "the same after a second rebuild");

    // Every table the rebuilds replaced, row for row, against a fresh database that ingested
    // the same log from its start, the catalog and memberships first as a rebuild reads them
    // (the segment-scoped views depend on that order: SPEC 2.4; without it the two differed).
    let fresh = ingest_references_first(env).await;
    let compared = same_tables(&env.pool, &fresh.env).await;
    eprintln!("{compared} tables equal, row for row, to a fresh ingest of the log");
}

/// A fresh database and group on the same topics: the catalog and memberships ingested to
/// their end first, then everything.
async fn ingest_references_first(env: &TestEnv) -> TestApp {
    let fresh = env.replay().await;
    let full = fresh.same_database().await;
    let mut settings = fresh.settings();
    settings.kafka.topics.retain(|k, _| matches!(k, TopicKind::Catalog | TopicKind::SegmentMembership));
    let names: Vec<String> = settings.kafka.topics.values().cloned().collect();
    let highs: Vec<((String, i32), i64)> =
        fresh.high_watermarks().into_iter().filter(|((t, _), h)| names.contains(t) && *h > 0).collect();
    let references = spawn_app_with_settings(fresh, settings).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let stored: Vec<(String, i32, i64)> =
            sqlx::query_as("SELECT topic, partition, next_offset FROM consumer_offsets")
                .fetch_all(&references.env.pool)
                .await
                .unwrap();
        if highs.iter().all(|((t, p), h)| stored.iter().any(|(st, sp, n)| st == t && sp == p && n >= h)) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the catalog and memberships were not ingested");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    references.stop().await.expect("clean shutdown");
    let app = spawn_app_with(full, Mode::All).await;
    app.env.wait_caught_up(Duration::from_secs(120)).await;
    app
}

/// Columns that record when or by whom a row was processed, not what the events say.
const PROCESSING: [&str; 5] = ["applied_at", "last_commit_at", "caught_up_at", "owner", "first_seen_at"];

/// Compares every table of `rebuilt` a rebuild replaces with `fresh`'s; returns how many.
async fn same_tables(rebuilt: &sqlx::PgPool, fresh: &TestEnv) -> usize {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_class WHERE relnamespace = 'public'::regnamespace
            AND relkind IN ('r', 'p') AND NOT relispartition AND NOT relname = ANY($1) ORDER BY 1",
    )
    .bind(KEPT)
    .fetch_all(rebuilt)
    .await
    .unwrap();
    for table in &tables {
        // A dead letter's id is a serial of its database, and when it was received is the
        // database's clock.
        let own: &[&str] = if table == "dead_letters" { &["id", "received_at"] } else { &[] };
        let drop: Vec<&str> = PROCESSING.iter().chain(own).copied().collect();
        let sql = format!(
            "SELECT COALESCE(jsonb_agg(r ORDER BY r::text), '[]') FROM (SELECT to_jsonb(t) - $1::text[] AS r FROM {table} t) x"
        );
        let read = |pool: sqlx::PgPool| {
            let (sql, drop) = (sql.clone(), drop.clone());
            async move { sqlx::query_scalar::<_, serde_json::Value>(&sql).bind(&drop).fetch_one(&pool).await.unwrap() }
        };
        let (a, b) = (read(rebuilt.clone()).await, read(fresh.pool.clone()).await);
        assert!(a == b, "{table} differs after the rebuild:\nrebuilt {a}\nfresh   {b}");
    }
    tables.len()
}
