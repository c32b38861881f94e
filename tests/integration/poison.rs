//! Issue 10's acceptance: one event of every class that once stopped ingest, or that the bounds
//! now refuse, each followed by good events of two tenants, into a running ingest: every good
//! event is applied exactly once, every bad one is a dead letter with its reason, and ingest
//! keeps committing. Once with one in-process ingest, once with two ingest processes in one
//! group.
//!
//! Two refusals no decoder rule can foresee are planted in the database itself: a CHECK
//! constraint (SQLSTATE 23514, a data error) and a trigger raising a custom SQLSTATE (P0001,
//! neither transient nor data: isolated once it repeats). They stand for whatever PostgreSQL
//! may refuse that the decoder let through; the committer must isolate the one event
//! responsible and apply the rest.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use consumers::events::TopicKind;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with_settings, TestEnv};
use crate::model::ts;
use crate::processes::IngestProcess;
use crate::wire;

const TENANTS: [&str; 2] = ["acme", "globex"];
/// Segments the capped customer joins: more than DV_MAX_SEGMENTS_PER_CUSTOMER (default 100).
const SEGMENTS: usize = 150;
const CAP: usize = 100;

/// What the test published: the bad messages by reason, and the good impressions per tenant.
#[derive(Default)]
struct Published {
    dead: BTreeMap<&'static str, usize>,
    impressions: BTreeMap<&'static str, i64>,
    /// Revenue of the max-amount interactions, in micros (they used to overflow bigint).
    max_revenue_micros: i128,
}

fn minutes_ago(m: i64) -> String {
    ts(Utc::now() - chrono::Duration::minutes(m))
}

fn interaction(tenant: &str, id: &str, customer: &str) -> Value {
    json!({"id": id, "tenantId": tenant, "customerId": customer, "offerId": "o1", "channelId": "web",
           "outcome": "impression", "occurredAt": minutes_ago(5)})
}

fn trace(id: &str) -> Value {
    json!({"id": id, "tenantId": "acme", "customerId": "c1", "requestId": "r1", "channelId": "web",
           "qualificationResults": [{"offerId": "o1", "passed": true, "reason": "ok"}],
           "scoringResults": [{"offerId": "o1", "score": 0.5, "rank": 1}],
           "selectedOffers": [{"offerId": "o1", "score": 0.5, "rank": 1}],
           "totalDurationMs": 12, "createdAt": minutes_ago(5)})
}

/// The refusals planted in the database (see the module comment).
async fn plant_refusals(env: &TestEnv) {
    sqlx::raw_sql(
        "ALTER TABLE interaction_rollup_offer ADD CONSTRAINT test_poison CHECK (offer_id <> 'poison-offer');
         CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN RAISE EXCEPTION 'refused by a test trigger' USING ERRCODE = 'P0001'; END $$;
         CREATE TRIGGER test_refuse BEFORE INSERT ON trace_daily FOR EACH ROW
           WHEN (NEW.channel_id = 'poison-channel') EXECUTE FUNCTION test_refuse();",
    )
    .execute(&env.pool)
    .await
    .expect("plant the refusals");
}

/// Publishes everything; ingest may already run.
async fn publish_all(env: &TestEnv) -> Published {
    let mut p = Published::default();
    let mut n = 0;
    let mut good = |env: &TestEnv, p: &mut Published| {
        for tenant in TENANTS {
            n += 1;
            env.publish(TopicKind::Interactions, &interaction(tenant, &format!("good-{n}"), &format!("g{n}")));
            *p.impressions.entry(tenant).or_default() += 1;
        }
    };
    // The capped customer's memberships first, applied before its events.
    for s in 0..SEGMENTS {
        env.publish(
            TopicKind::SegmentMembership,
            &json!({"id": format!("m{s}"), "tenantId": "acme", "segmentId": format!("seg{s:03}"),
                    "customerId": "many", "op": "add", "at": minutes_ago(10)}),
        );
    }
    env.wait_caught_up(Duration::from_secs(60)).await;

    let bad = |env: &TestEnv, p: &mut Published, kind, key: &str, payload: Value, reason| {
        env.publish_raw(kind, key, payload.to_string().as_bytes());
        *p.dead.entry(reason).or_default() += 1;
    };
    // A number in an unknown field that jsonb's numeric cannot hold (exponent past 32 bits).
    let huge = trace("t-huge").to_string().replacen('{', r#"{"extra":1e4294967297,"#, 1);
    env.publish_raw(TopicKind::DecisionTraces, "acme:c1", huge.as_bytes());
    *p.dead.entry("non_finite").or_default() += 1;
    good(env, &mut p);
    // A Java producer's Long.MAX_VALUE for "unranked".
    let mut t = trace("t-rank");
    t["scoringResults"][0]["rank"] = json!(i64::MAX);
    bad(env, &mut p, TopicKind::DecisionTraces, "acme:c1", t, "invalid_value");
    good(env, &mut p);
    let mut t = trace("t-score");
    t["scoringResults"][0]["score"] = json!(1e300);
    bad(env, &mut p, TopicKind::DecisionTraces, "acme:c1", t, "invalid_value");
    good(env, &mut p);
    // Fan-out: more candidates in one array than DV_MAX_CANDIDATES_PER_TRACE (1,000; tens of
    // thousands would pass the 256 KiB size limit first).
    let mut t = trace("t-fanout");
    t["qualificationResults"] =
        (0..1_001).map(|i| json!({"offerId": format!("x{i}"), "passed": false, "reason": ""})).collect();
    bad(env, &mut p, TopicKind::DecisionTraces, "acme:c1", t, "too_many_candidates");
    good(env, &mut p);
    // A suppression expiring before any year PostgreSQL can store (chrono parses it).
    let s = json!({"id": "s-far", "tenantId": "acme", "suppressionId": "sup1", "customerId": "c1",
                   "policyId": "p1", "policyType": "frequency_cap", "op": "create",
                   "createdAt": minutes_ago(5), "expiresAt": "-5000-01-01T00:00:00Z"});
    bad(env, &mut p, TopicKind::Suppressions, "acme:c1", s, "invalid_value");
    good(env, &mut p);
    // A producer of globex writing acme's tenant id, and a key naming no tenant at all.
    bad(env, &mut p, TopicKind::Interactions, "globex:c1", interaction("acme", "mismatch", "c1"), "tenant_mismatch");
    env.publish_raw(
        TopicKind::Interactions,
        "\u{fffd}",
        interaction("acme", "mismatch-2", "c1").to_string().as_bytes(),
    );
    *p.dead.entry("tenant_mismatch").or_default() += 1;
    good(env, &mut p);
    // Refused by the database: the planted CHECK constraint, then the planted trigger.
    let mut i = interaction("acme", "poison", "c1");
    i["offerId"] = json!("poison-offer");
    bad(env, &mut p, TopicKind::Interactions, "acme:c1", i, "rejected_by_database");
    good(env, &mut p);
    let mut t = trace("t-trigger");
    t["channelId"] = json!("poison-channel");
    bad(env, &mut p, TopicKind::DecisionTraces, "acme:c1", t, "rejected_by_database");
    good(env, &mut p);
    // Batches the Kafka client cannot deliver (zstd, decompressing past its bound): one range
    // per partition written to.
    let topic = env.topic(TopicKind::Interactions).to_owned();
    let zstd: Vec<(Vec<u8>, Vec<u8>)> = (0..3)
        .map(|i| (b"acme:c1".to_vec(), interaction("acme", &format!("z{i}"), "c1").to_string().into_bytes()))
        .collect();
    assert_eq!(wire::produce(&env.servers.brokers, &topic, 0, &wire::undeliverable_batch(&zstd)), 0);
    *p.dead.entry("undeliverable").or_default() += 1;
    good(env, &mut p);

    // Good, though they used to stop ingest: revenue at the largest amount, five times (a sum
    // past bigint), and the capped customer's impression (counted in the first 100 segments).
    for k in 0..5 {
        let mut i = interaction("globex", &format!("rich-{k}"), "rich");
        i["outcome"] = json!("convert");
        i["revenue"] = json!(1e12);
        env.publish(TopicKind::Interactions, &i);
        p.max_revenue_micros += 1_000_000_000_000_000_000;
    }
    env.publish(TopicKind::Interactions, &interaction("acme", "many-1", "many"));
    *p.impressions.entry("acme").or_default() += 1;
    good(env, &mut p);
    p
}

async fn verify(env: &TestEnv, p: &Published) {
    env.wait_caught_up(Duration::from_secs(180)).await;
    for (tenant, want) in &p.impressions {
        let got: i64 = sqlx::query_scalar(
            "SELECT COALESCE(sum(impressions), 0)::int8 FROM interaction_daily WHERE tenant_id = $1",
        )
        .bind(tenant)
        .fetch_one(&env.pool)
        .await
        .unwrap();
        assert_eq!(got, *want, "{tenant}: every good impression applied exactly once");
    }
    let revenue: String = sqlx::query_scalar(
        "SELECT sum(revenue_micros)::text FROM interaction_daily WHERE tenant_id = 'globex' AND offer_id = 'o1'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(revenue.parse::<i128>().unwrap(), p.max_revenue_micros, "a sum past bigint, exact");
    let dead: Vec<(String, i64)> =
        sqlx::query_as("SELECT reason, count(*) FROM dead_letters GROUP BY reason ORDER BY reason")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    let want: Vec<(String, i64)> = p.dead.iter().map(|(r, n)| (r.to_string(), *n as i64)).collect();
    assert_eq!(dead, want, "each bad message a dead letter with its reason, nothing else");
    let refused: Vec<String> =
        sqlx::query_scalar("SELECT detail FROM dead_letters WHERE reason = 'rejected_by_database' ORDER BY detail")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert!(refused[0].contains("test_poison") && refused[0].contains("23514"), "{refused:?}");
    assert!(refused[1].contains("refused by a test trigger") && refused[1].contains("P0001"), "{refused:?}");
    // The capped customer counts in exactly the first 100 segments; its memberships all stand.
    let scopes: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT segment_id FROM interaction_segment_daily WHERE tenant_id = 'acme' ORDER BY 1",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let first: Vec<String> = (0..CAP).map(|s| format!("seg{s:03}")).collect();
    assert_eq!(scopes, first);
    let members: i64 = sqlx::query_scalar("SELECT count(*) FROM segment_members WHERE customer_id = 'many'")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(members, SEGMENTS as i64);

    // Ingest keeps committing after all of it.
    env.publish(TopicKind::Interactions, &interaction("globex", "last", "z"));
    env.wait_caught_up(Duration::from_secs(60)).await;
    let last: i64 = sqlx::query_scalar("SELECT count(*) FROM dedup_keys WHERE key = dedup_key('globex', $1, 'last')")
        .bind(TopicKind::Interactions.code())
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(last, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_poison_class_is_dead_lettered_and_ingest_keeps_committing() {
    let env = TestEnv::new().await;
    plant_refusals(&env).await;
    let mut settings = env.settings();
    settings.kafka.consumer_overrides.extend(wire::SMALL_RECEIVE.map(|(k, v)| (k.to_owned(), v.to_owned())));
    let app = spawn_app_with_settings(env, settings).await;
    let p = publish_all(&app.env).await;
    verify(&app.env, &p).await;
    app.stop().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_poison_class_with_two_ingest_processes_in_one_group() {
    let env = TestEnv::new().await;
    plant_refusals(&env).await;
    let a = IngestProcess::start_with(&env, "ingest-a", &wire::small_receive_env());
    let b = IngestProcess::start_with(&env, "ingest-b", &wire::small_receive_env());
    let p = publish_all(&env).await;
    verify(&env, &p).await;
    for process in [a, b] {
        assert!(process.terminate().success(), "clean shutdown");
    }
}
