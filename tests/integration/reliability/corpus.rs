//! A generated corpus of malformed messages for every topic, each with the verdict the
//! contract gives it, computed without the program: the topic's JSON Schema (`schemas/`) plus
//! the documented limits beyond it (size, nesting, identifier length, NUL; README "Bad input").
//!
//! Starting from the fullest valid example of each topic (`schemas/examples/`), re-dated to
//! now: every field (nested ones too) replaced by a value of each other JSON type; 100,000
//! nested arrays at the top level, in a typed field, in a free-form field and in an unknown
//! one; strings past the size limit in string fields and identifiers just over their limit; NUL and
//! lone-surrogate escapes, bytes that are not UTF-8, numbers past PostgreSQL numeric's range;
//! empty, null (tombstone) and random-byte payloads; garbage keys.

use std::path::Path;

use consumers::decode::DecodeLimits;
use consumers::events::TopicKind;
use serde_json::{json, Value};

/// What must happen to a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Applied,
    /// Dead-lettered with this reason (`None`: any reason; the verdict is what matters).
    Dead(Option<&'static str>),
}

#[derive(Debug, Clone)]
pub struct Case {
    pub kind: TopicKind,
    pub label: String,
    pub key: Vec<u8>,
    /// `None`: a tombstone.
    pub payload: Option<Vec<u8>>,
    pub verdict: Verdict,
}

/// Documented limits beyond the schemas (README "Bad input"; the size limit is 256 KiB).
/// Levels of nesting (the event object is level 1).
pub const MAX_DEPTH: usize = 64;
pub const MAX_ID_BYTES: usize = 256;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn load(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn schema(kind: TopicKind) -> Value {
    load(&root().join(format!("schemas/{}.schema.json", kind.default_name())))
}

const TIME_FIELDS: [&str; 6] = ["occurredAt", "createdAt", "updatedAt", "at", "evaluatedAt", "expiresAt"];

/// The fullest valid example of a topic, as tenant `acme`, dated a minute ago, id `id`.
pub fn example(kind: TopicKind, id: &str) -> Value {
    let all = load(&root().join(format!("schemas/examples/{}.json", kind.default_name())));
    let mut e = all.as_array().unwrap().iter().max_by_key(|e| e.to_string().len()).unwrap().clone();
    let now = chrono::Utc::now() - chrono::Duration::minutes(1);
    for f in TIME_FIELDS {
        if e.get(f).is_some() {
            let t = if f == "expiresAt" { now + chrono::Duration::days(1) } else { now };
            e[f] = json!(crate::model::ts(t));
        }
    }
    e["tenantId"] = json!("acme");
    e["id"] = json!(id);
    e
}

/// The schema's verdict, with the consumer's one leniency: `null` for an optional field without
/// a documented default reads as absent (producers should omit it; the schemas say so).
fn schema_verdict(schema: &Value, v: &jsonschema::Validator, event: &Value, nulled: Option<&[String]>) -> Verdict {
    if v.is_valid(event) {
        return Verdict::Applied;
    }
    if let Some(path) = nulled {
        let (parent, field) = path.split_at(path.len() - 1);
        let mut absent = event.clone();
        if let Some(obj) = get_mut(&mut absent, parent).and_then(Value::as_object_mut) {
            obj.remove(&field[0]);
        }
        if v.is_valid(&absent) && !has_default(schema, path) {
            return Verdict::Applied;
        }
    }
    Verdict::Dead(None)
}

/// Whether the schema documents a default for the field at `path` (a `null` there is a wrong
/// type, not "absent": the default applies only to a missing field).
fn has_default(schema: &Value, path: &[String]) -> bool {
    let node = path.iter().try_fold(schema, |node, seg| match seg.parse::<usize>() {
        Ok(_) => node.get("items"),
        Err(_) => node.get("properties")?.get(seg),
    });
    node.is_some_and(|n| n.get("default").is_some())
}

fn get_mut<'a>(v: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, p| match v {
        Value::Object(o) => o.get_mut(p),
        Value::Array(a) => a.get_mut(p.parse::<usize>().ok()?),
        _ => None,
    })
}

/// Every path of `v` (objects' fields, arrays' first element), parents before children.
fn paths(v: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let children: Vec<(String, &Value)> = match v {
        Value::Object(o) => o.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::Array(a) => a.first().map(|v| ("0".to_string(), v)).into_iter().collect(),
        _ => vec![],
    };
    for (k, child) in children {
        prefix.push(k);
        out.push(prefix.clone());
        paths(child, prefix, out);
        prefix.pop();
    }
}

fn json_type(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

/// The message key a producer sends (docs/events.md: `tenantId:customerId`, or `tenantId`), naming the
/// event's own tenant (a key naming another is `tenant_mismatch`, a case of its own).
fn key_of(e: &Value) -> Vec<u8> {
    let tenant = e["tenantId"].as_str().unwrap_or("acme");
    match e["customerId"].as_str() {
        Some(c) => format!("{tenant}:{c}").into_bytes(),
        None => tenant.as_bytes().to_vec(),
    }
}

fn deep(levels: usize) -> String {
    format!("{}{}", "[".repeat(levels), "]".repeat(levels))
}

/// The corpus of one topic under the decoder's `limits`. `ids` numbers the events (unique ids,
/// so dedup never interferes); `big_strings`: how many string fields get a value past the size
/// limit (each costs a message of that size).
pub fn corpus(kind: TopicKind, limits: &DecodeLimits, ids: &mut usize, big_strings: usize) -> Vec<Case> {
    let schema = schema(kind);
    let v = jsonschema::validator_for(&schema).unwrap();
    let mut out = Vec::new();
    let next = |ids: &mut usize| {
        *ids += 1;
        example(kind, &format!("bad-{}-{ids}", kind.default_name()))
    };
    let mut push = |label: String, key: Vec<u8>, payload: Option<Vec<u8>>, verdict: Verdict| {
        out.push(Case { kind, label, key, payload, verdict })
    };
    let base = next(ids);
    let mut all = Vec::new();
    paths(&base, &mut vec![], &mut all);

    // Wrong types everywhere: each field (nested ones too) as each other JSON type.
    let others = [json!(7), json!("str"), json!({"k": 1}), json!([1]), Value::Null, json!(true)];
    for path in &all {
        for other in &others {
            let mut e = next(ids);
            let Some(slot) = get_mut(&mut e, path) else { continue };
            if json_type(slot) == json_type(other) {
                continue;
            }
            *slot = other.clone();
            let nulled = other.is_null().then_some(&path[..]);
            let verdict = schema_verdict(&schema, &v, &e, nulled);
            push(format!("{} as {other}", path.join(".")), key_of(&e), Some(e.to_string().into_bytes()), verdict);
        }
    }

    // Deep nesting (serde's typed values stop at 128 levels; PostgreSQL's jsonb at ~10,000).
    let too_deep = Verdict::Dead(Some("invalid_json"));
    push("100k nested arrays".into(), key_of(&base), Some(deep(100_000).into_bytes()), too_deep.clone());
    for field in ["id", "pipeline", "result", "data", "featureImportance", "someUnknownField"] {
        if field != "id" && field != "someUnknownField" && base.get(field).is_none() {
            continue;
        }
        let e = next(ids);
        let text = e.to_string();
        let text = format!("{{\"{field}\":{},{}", deep(100_000), &text[1..]);
        push(format!("{field} nested 100k deep"), key_of(&e), Some(text.into_bytes()), too_deep.clone());
    }
    for (levels, verdict) in [(MAX_DEPTH, Verdict::Applied), (MAX_DEPTH + 1, too_deep)] {
        let e = next(ids);
        let text = format!("{{\"someUnknownField\":{},{}", deep(levels - 1), &e.to_string()[1..]);
        push(format!("{levels} levels of nesting"), key_of(&e), Some(text.into_bytes()), verdict);
    }

    // Strings over the size limit, and identifiers just over theirs.
    let strings: Vec<&Vec<String>> = all
        .iter()
        .filter(|p| matches!(get_mut(&mut base.clone(), p), Some(Value::String(_))))
        .filter(|p| !TIME_FIELDS.contains(&p[p.len() - 1].as_str()))
        .collect();
    // Past the topic's size limit: 1 MB (the default limit is 256 KiB), or past the catalog's
    // own (models carry tree ensembles).
    let big = match kind {
        TopicKind::Catalog => limits.max_catalog_event_bytes,
        _ => limits.max_event_bytes.max(1 << 20),
    };
    for path in strings.iter().take(big_strings) {
        let mut e = next(ids);
        *get_mut(&mut e, path).unwrap() = json!(random_text(big));
        push(
            format!("{} of {:.2} MiB", path.join("."), big as f64 / (1 << 20) as f64),
            key_of(&e),
            Some(e.to_string().into_bytes()),
            Verdict::Dead(Some("too_large")),
        );
    }
    for path in strings.iter().filter(|p| is_identifier(p)) {
        let mut e = next(ids);
        *get_mut(&mut e, path).unwrap() = json!(random_text(MAX_ID_BYTES + 1));
        let verdict = Verdict::Dead(Some("invalid_value"));
        push(
            format!("{} of {} bytes", path.join("."), MAX_ID_BYTES + 1),
            key_of(&e),
            Some(e.to_string().into_bytes()),
            verdict,
        );
        let mut e = next(ids);
        *get_mut(&mut e, path).unwrap() = json!(random_text(MAX_ID_BYTES));
        push(
            format!("{} of {MAX_ID_BYTES} bytes", path.join(".")),
            key_of(&e),
            Some(e.to_string().into_bytes()),
            Verdict::Applied,
        );
    }

    // Numbers past PostgreSQL numeric's range, and bytes that are not UTF-8, in a skipped field.
    let long_number = "9".repeat(65);
    for (label, value, reason) in [
        ("exponent of 999999", "1e999999", "non_finite"),
        ("number of 65 digits", long_number.as_str(), "invalid_value"),
        ("exponent of 308", "-1.5e308", ""),
    ] {
        let e = next(ids);
        let text = format!("{{\"someUnknownField\":{value},{}", &e.to_string()[1..]);
        let verdict = if reason.is_empty() { Verdict::Applied } else { Verdict::Dead(Some(reason)) };
        push(label.into(), key_of(&e), Some(text.into_bytes()), verdict);
    }
    let e = next(ids);
    let mut bytes = b"{\"someUnknownField\":\"\xff\xfe\",".to_vec();
    bytes.extend_from_slice(&e.to_string().as_bytes()[1..]);
    push("not UTF-8".into(), key_of(&e), Some(bytes), Verdict::Dead(Some("invalid_json")));

    // Escapes PostgreSQL cannot store: NUL anywhere, lone surrogates (stored raw as jsonb).
    for (label, escape, reason) in [("NUL", "\\u0000", "invalid_value"), ("lone surrogate", "\\ud800", "invalid_json")]
    {
        let e = next(ids);
        let text = format!("{{\"someUnknownField\":\"a{escape}b\",{}", &e.to_string()[1..]);
        push(format!("{label} escape"), key_of(&e), Some(text.into_bytes()), Verdict::Dead(Some(reason)));
    }

    // Not events at all, and garbage keys (tenant attribution must not choke on them).
    let e = next(ids);
    push("empty payload".into(), b"acme".to_vec(), Some(vec![]), Verdict::Dead(Some("invalid_json")));
    push("tombstone".into(), b"acme".to_vec(), None, Verdict::Dead(Some("invalid_json")));
    let bytes: Vec<u8> =
        std::iter::once(0xff).chain((0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)).collect();
    push("random bytes".into(), b"acme".to_vec(), Some(bytes.clone()), Verdict::Dead(Some("invalid_json")));
    push("random bytes, random key".into(), bytes[..64].to_vec(), Some(bytes), Verdict::Dead(Some("invalid_json")));
    push(
        "NUL in the key".into(),
        b"ac\0me:c1".to_vec(),
        Some(b"{not json".to_vec()),
        Verdict::Dead(Some("invalid_json")),
    );
    let huge_tenant_key = format!("{}:c1", random_text(10_000)).into_bytes();
    push(
        "10 KB tenant in the key".into(),
        huge_tenant_key,
        Some(b"{not json".to_vec()),
        Verdict::Dead(Some("invalid_json")),
    );
    push("valid, after all that".into(), key_of(&e), Some(e.to_string().into_bytes()), Verdict::Applied);
    out
}

/// Identifier fields: stored in keys and indexes, hence bounded (README "Bad input").
fn is_identifier(path: &[String]) -> bool {
    if matches!(path[0].as_str(), "pipeline" | "result") {
        return false; // free-form: stored as the trace's JSON, never in a key
    }
    let last = path[path.len() - 1].as_str();
    last == "id" || last.ends_with("Id") || matches!(last, "entity" | "model" | "policyType")
}

/// Incompressible printable text (PostgreSQL compresses repetitive values, which would hide
/// a key that is too long).
pub fn random_text(n: usize) -> String {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ n as u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (b'a' + (x % 26) as u8) as char
        })
        .collect()
}

/// The decoder alone gives every case its verdict (and reason): a fast, precise check before
/// the end-to-end one, which goes through the broker and PostgreSQL.
#[test]
fn corpus_verdicts_match_the_decoder() {
    use consumers::decode::decode_message;
    let mut ids = 0;
    let mut wrong = Vec::new();
    let mut n = 0;
    for kind in TopicKind::ALL {
        for case in corpus(kind, &DecodeLimits::default(), &mut ids, 1) {
            n += 1;
            let payload = case.payload.clone().unwrap_or_default();
            let got =
                match decode_message(kind, Some(&case.key), &payload, &DecodeLimits::default(), chrono::Utc::now()) {
                    Ok(_) => Verdict::Applied,
                    Err(r) => Verdict::Dead(Some(r.reason.code())),
                };
            let ok = match (&case.verdict, &got) {
                (Verdict::Dead(None), Verdict::Dead(_)) => true,
                (want, got) => want == got,
            };
            if !ok {
                let text = String::from_utf8_lossy(&payload);
                wrong.push(format!("{kind:?} {}: want {:?}, got {got:?}: {:.200}", case.label, case.verdict, text));
            }
        }
    }
    assert!(wrong.is_empty(), "{} of {n} cases disagree:\n{}", wrong.len(), wrong.join("\n"));
}
