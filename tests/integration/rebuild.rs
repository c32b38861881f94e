//! `rebuild` (issue 17, SPEC 3): the views rebuilt from the retained log beside the live ones
//! while events keep flowing, live ingest keeps committing and readers keep reading; then
//! swapped in whole. Every reader's every answer is checked (no half-built view: a count never
//! goes down), the result is compared with values computed from the published events, a view
//! damaged before the rebuild comes back right, and the progress shows in the ingest status.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use consumers::events::TopicKind;
use decision_views::api::auth::Role;
use decision_views::recovery::rebuild::{self, RebuildOptions};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::helpers::{spawn_app, TestApp};
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
    let events = model::interactions(&spread, 5_000, 17, test_today());
    let (before, during) = events.split_at(600);
    for e in before {
        env.publish(TopicKind::Interactions, &e.to_json());
    }
    env.wait_caught_up(Duration::from_secs(60)).await;

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
    // ~250 events/s until the rebuild is done (at most 4,400: the test fails if it is not by then).
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
    assert!(rebuilt.messages >= 604, "every message from the log's start: {rebuilt:?}");

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
    let retired: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {}.catalog_entities", rebuilt.retired))
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
}
