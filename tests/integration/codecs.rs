//! What this build's librdkafka can do (issue 16): the features it was built with, reported by
//! librdkafka itself, and topics written with gzip, lz4 and zstd ingested exactly. Snappy is
//! built too, but tansu 0.6.0 fails every fetch of a partition holding a snappy batch, so it can
//! only be checked against Apache Kafka.

use std::time::Duration;

use chrono::Utc;
use consumers::events::TopicKind;
use decision_views::api::auth::Role;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;
use serde_json::json;

use crate::helpers::spawn_app;
use crate::model::ts;

#[test]
fn librdkafka_is_built_with_tls_sasl_and_the_codecs() {
    let config = ClientConfig::new().create_native_config().expect("a native config");
    let features = config.get("builtin.features").expect("builtin.features");
    let features: Vec<&str> = features.split(',').collect();
    for want in ["ssl", "sasl_plain", "sasl_scram", "sasl_oauthbearer", "gzip", "snappy", "lz4", "zstd"] {
        assert!(features.contains(&want), "{want} is not built in: {features:?}");
    }
    // What a secured cluster's settings ask of a client is accepted (it was refused before:
    // "Unsupported value \"sasl_ssl\"", TLS not built in).
    for (protocol, mechanism) in [
        ("ssl", None),
        ("sasl_ssl", Some("SCRAM-SHA-512")),
        ("sasl_ssl", Some("PLAIN")),
        ("sasl_plaintext", Some("SCRAM-SHA-256")),
        ("sasl_ssl", Some("OAUTHBEARER")),
    ] {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", "127.0.0.1:1").set("group.id", "g").set("security.protocol", protocol);
        if let Some(m) = mechanism {
            c.set("sasl.mechanism", m);
            if m != "OAUTHBEARER" {
                c.set("sasl.username", "u").set("sasl.password", "p");
            }
        }
        let created: Result<rdkafka::consumer::BaseConsumer, _> = c.create();
        assert!(created.is_ok(), "{protocol} {mechanism:?}: {:?}", created.err());
    }
}

fn impression(id: &str) -> Vec<u8> {
    json!({"id": id, "tenantId": "acme", "customerId": "c1", "offerId": "off_1", "channelId": "email",
           "outcome": "impression", "occurredAt": ts(Utc::now())})
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_compressed_with_each_codec_are_ingested_exactly() {
    let app = spawn_app().await;
    let topic = app.env.topic(TopicKind::Interactions).to_owned();
    let mut published = 0;
    for codec in ["gzip", "lz4", "zstd"] {
        let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
            .set("bootstrap.servers", &app.env.servers.brokers)
            .set("compression.type", codec)
            // Batches of many records, so that each is compressed as a whole.
            .set("linger.ms", "50")
            .create()
            .expect("producer");
        for i in 0..40 {
            let payload = impression(&format!("{codec}-{i}"));
            producer.send(BaseRecord::to(&topic).key("acme:c1").payload(&payload)).expect("queued");
            published += 1;
        }
        producer.flush(Duration::from_secs(30)).expect("flushed");
    }

    app.env.wait_caught_up(Duration::from_secs(60)).await;
    let dead: i64 = sqlx::query_scalar("SELECT count(*) FROM dead_letters").fetch_one(&app.env.pool).await.unwrap();
    assert_eq!(dead, 0, "nothing dead-lettered");
    let key = app.env.api_key("acme", Role::Viewer).await;
    let (status, body) = app.get("/api/v1/dashboard-data?type=acceptance_rate&days=1", &key, "acme").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"][0]["impressions"], published, "every compressed event applied once: {body}");
}
