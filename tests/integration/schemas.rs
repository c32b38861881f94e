//! The JSON Schemas in `schemas/` and the serde types cannot drift: every example validates
//! against its schema, decodes with the consumer's decoder and round-trips through the serde
//! types (the re-serialized event validates and decodes to the same value); every invalid
//! example fails both the schema and the decoder.

use std::path::Path;

use chrono::{TimeZone, Utc};
use consumers::decode::{decode, DecodeLimits};
use consumers::events::{Event, TopicKind};
use serde_json::Value;

fn load(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"))).unwrap()
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn validator(kind: TopicKind) -> jsonschema::Validator {
    let schema = load(&root().join(format!("schemas/{}.schema.json", kind.default_name())));
    jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("schema of {kind:?}: {e}"))
}

fn to_json(e: &Event) -> Value {
    match e {
        Event::Trace(t) => serde_json::to_value(t),
        Event::Interaction(i) => serde_json::to_value(i),
        Event::Catalog(c) => serde_json::to_value(c),
        Event::Membership(m) => serde_json::to_value(m),
        Event::Suppression(s) => serde_json::to_value(s),
        Event::Attribution(a) => serde_json::to_value(a),
        Event::ModelMetric(m) => serde_json::to_value(m),
    }
    .unwrap()
}

/// The examples are dated March 2026: decode them as of then, not as of the test's clock.
fn examples_now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 30, 0, 0, 0).unwrap()
}

#[test]
fn examples_validate_decode_and_round_trip() {
    let limits = DecodeLimits::default();
    for kind in TopicKind::ALL {
        let v = validator(kind);
        let examples = load(&root().join(format!("schemas/examples/{}.json", kind.default_name())));
        let examples = examples.as_array().expect("an array of examples");
        assert!(!examples.is_empty());
        for ex in examples {
            let errors: Vec<String> = v.iter_errors(ex).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{kind:?} example fails its schema: {errors:?}\n{ex}");
            let bytes = serde_json::to_vec(ex).unwrap();
            let event =
                decode(kind, &bytes, &limits, examples_now()).unwrap_or_else(|r| panic!("{kind:?}: {r:?}\n{ex}"));
            let again = to_json(&event);
            let errors: Vec<String> = v.iter_errors(&again).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{kind:?} re-serialized event fails the schema: {errors:?}\n{again}");
            let event2 = decode(kind, &serde_json::to_vec(&again).unwrap(), &limits, examples_now()).unwrap();
            assert_eq!(event, event2, "{kind:?} round trip");
        }
    }
}

#[test]
fn invalid_examples_fail_the_schema_and_the_decoder() {
    let limits = DecodeLimits::default();
    let invalid = load(&root().join("schemas/examples/invalid.json"));
    for case in invalid.as_array().unwrap() {
        let topic = case["topic"].as_str().unwrap();
        let kind = TopicKind::ALL.into_iter().find(|k| k.default_name() == topic).expect("known topic");
        let event = &case["event"];
        assert!(!validator(kind).is_valid(event), "schema accepts invalid {topic} ({}): {event}", case["reason"]);
        let bytes = serde_json::to_vec(event).unwrap();
        assert!(
            decode(kind, &bytes, &limits, examples_now()).is_err(),
            "decoder accepts invalid {topic} ({}): {event}",
            case["reason"]
        );
    }
}
