//! A secured cluster (issue 16): a private broker that requires SASL SCRAM-SHA-512 of every
//! client. With the cluster's settings in `DV_KAFKA_CLIENT_*`, `publish`'s producer writes,
//! ingest applies every event and the status client sees the partitions; a client without them
//! is refused. (TLS cannot be shown against this broker: tansu 0.6.0 builds a TLS acceptor but
//! never uses it, and its CLI refuses `--cert` with `--key`; the build's TLS is checked by
//! `codecs::librdkafka_is_built_with_tls_sasl_and_the_codecs`.)

use std::time::{Duration, Instant};

use chrono::Utc;
use consumers::events::TopicKind;
use decision_views::api::auth::Role;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::ClientConfig;
use serde_json::json;

use crate::helpers::{spawn_app_with_settings, Servers, TestEnv};
use crate::model::ts;
use crate::reliability::servers::PrivateBroker;

const SASL: [(&str, &str); 4] = [
    ("security.protocol", "SASL_PLAINTEXT"),
    ("sasl.mechanism", "SCRAM-SHA-512"),
    ("sasl.username", "alice"),
    ("sasl.password", "s3cret-pw"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_ingest_and_status_reach_a_broker_that_requires_sasl_scram() {
    let mut broker = PrivateBroker::start();
    // Topics first (tansu creates users and topics only while authentication is off).
    let env = TestEnv::new_on(Servers { brokers: broker.addr(), ..Servers::default() }).await;
    broker.require_sasl("scram512", "alice", "s3cret-pw");

    let plain: BaseConsumer = ClientConfig::new().set("bootstrap.servers", broker.addr()).create().unwrap();
    assert!(plain.fetch_metadata(None, Duration::from_secs(3)).is_err(), "a client without credentials is refused");

    let mut cluster = ClientConfig::new();
    cluster.set("bootstrap.servers", broker.addr());
    for (k, v) in SASL {
        cluster.set(k, v);
    }
    let producer = decision_views::publish::producer_for(cluster).expect("producer");
    let topic = env.topic(TopicKind::Interactions).to_owned();
    for i in 0..30 {
        let payload = json!({"id": format!("s{i}"), "tenantId": "acme", "customerId": format!("c{i}"),
            "offerId": "off_1", "channelId": "email", "outcome": "impression", "occurredAt": ts(Utc::now())})
        .to_string();
        let key = format!("acme:c{i}");
        producer.send(BaseRecord::to(&topic).key(&key).payload(&payload)).expect("queued");
    }
    producer.flush(Duration::from_secs(30)).expect("every event acknowledged");

    let mut settings = env.settings();
    for (k, v) in SASL {
        settings.kafka.client_overrides.insert(k.into(), v.into());
    }
    let app = spawn_app_with_settings(env, settings).await;
    let key = app.env.api_key("acme", Role::Viewer).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = app.get("/api/v1/dashboard-data?type=acceptance_rate&days=1", &key, "acme").await;
        if body["data"][0]["impressions"] == 30 {
            break;
        }
        assert!(Instant::now() < deadline, "ingest did not apply the events through SASL: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let platform = app.env.platform_key().await;
    let (status, body) = app.get("/api/v1/ingest/status", &platform, "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["brokerReachable"], true, "the status client authenticates too: {body}");
    let high: i64 = body["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["topic"] == topic.as_str())
        .filter_map(|p| p["highWatermark"].as_i64())
        .sum();
    assert_eq!(high, 30, "{body}");
}
