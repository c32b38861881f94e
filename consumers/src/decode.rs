//! Bytes → validated [`Event`], or a [`Rejection`] saying why (SPEC 2.8).
//!
//! Decoding is the hot path of ingest, so it parses straight into the typed structs (free-form
//! parts stay unparsed `RawValue`s) and classifies failures only on the error path.

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use crate::events::{
    Attribution, CatalogChange, DataError, DecisionTrace, Event, Interaction, ModelMetric, SegmentMembership,
    Suppression, TopicKind,
};
use crate::fold::money;

/// Why an event was not applied. The code is stored in `dead_letters.reason` and is what the
/// dead-letters API filters on; the detail says which field and what was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    TooLarge,
    InvalidJson,
    MissingField,
    WrongType,
    NonFinite,
    NegativeValue,
    InvalidValue,
    UnknownOutcome,
    FutureEventTime,
    EventTimeTooOld,
}

impl RejectReason {
    pub fn code(self) -> &'static str {
        match self {
            RejectReason::TooLarge => "too_large",
            RejectReason::InvalidJson => "invalid_json",
            RejectReason::MissingField => "missing_field",
            RejectReason::WrongType => "wrong_type",
            RejectReason::NonFinite => "non_finite",
            RejectReason::NegativeValue => "negative_value",
            RejectReason::InvalidValue => "invalid_value",
            RejectReason::UnknownOutcome => "unknown_outcome",
            RejectReason::FutureEventTime => "future_event_time",
            RejectReason::EventTimeTooOld => "event_time_too_old",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: RejectReason,
    pub detail: String,
    /// The tenant, when the payload was JSON with a string `tenantId` (so admins can filter).
    pub tenant_id: Option<String>,
}

/// Limits of SPEC 2.8, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    pub max_event_bytes: usize,
    /// How far in the future an event time may be (SPEC: 1 hour).
    pub max_future: Duration,
    /// The retention horizon (SPEC: 400 days): older event times are rejected.
    pub retention: Duration,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self { max_event_bytes: 256 * 1024, max_future: Duration::hours(1), retention: Duration::days(400) }
    }
}

/// Deepest nesting accepted, the event object being level 1. serde's typed fields stop at 127
/// anyway; unknown and free-form fields are skipped without a limit, and a trace is stored
/// whole as jsonb, whose parser fails past about 10,000 levels: the batch would never commit.
pub const MAX_DEPTH: usize = 64;

/// Longest identifier (`id`, `tenantId`, `…Id`, `entity`, `model`, `policyType`). They are
/// key columns: PostgreSQL refuses a btree entry over 2,704 bytes, and a key holds up to five
/// of them, so a longer one would fail its batch on every retry.
pub const MAX_ID_BYTES: usize = 256;

/// Decodes and validates one message payload of `topic`, as of processing time `now`.
pub fn decode(topic: TopicKind, payload: &[u8], limits: &DecodeLimits, now: DateTime<Utc>) -> Result<Event, Rejection> {
    if payload.len() > limits.max_event_bytes {
        return Err(reject(
            RejectReason::TooLarge,
            format!("{} bytes exceed the limit of {} bytes", payload.len(), limits.max_event_bytes),
            None,
        ));
    }
    // Before serde, which would accept these in skipped fields and leave PostgreSQL to refuse
    // them inside the batch transaction (a poison message that wedges ingest).
    storable(payload).map_err(|(reason, detail)| reject(reason, detail, None))?;
    let parsed = match topic {
        TopicKind::DecisionTraces => serde_json::from_slice::<DecisionTrace>(payload).map(|mut e| {
            // Parsed as JSON, hence valid UTF-8: kept for the traces API, unknown fields included.
            e.raw = std::str::from_utf8(payload).ok().map(str::to_owned);
            Event::Trace(Box::new(e))
        }),
        TopicKind::Interactions => serde_json::from_slice::<Interaction>(payload).map(Event::Interaction),
        TopicKind::Catalog => serde_json::from_slice::<CatalogChange>(payload).map(Event::Catalog),
        TopicKind::SegmentMembership => serde_json::from_slice::<SegmentMembership>(payload).map(Event::Membership),
        TopicKind::Suppressions => serde_json::from_slice::<Suppression>(payload).map(Event::Suppression),
        TopicKind::Attributions => serde_json::from_slice::<Attribution>(payload).map(Event::Attribution),
        TopicKind::ModelMetrics => serde_json::from_slice::<ModelMetric>(payload).map(Event::ModelMetric),
    };
    let event = parsed.map_err(|e| classify(&e, payload))?;
    validate(&event, limits, now).map_err(|(reason, detail)| {
        let tenant = Some(event.tenant_id()).filter(|t| id_ok(t)).map(str::to_owned);
        reject(reason, detail, tenant)
    })?;
    Ok(event)
}

/// What PostgreSQL cannot store even where the contract is free-form (unknown fields, a
/// trace's `pipeline` and `result`, all skipped by serde, a trace then stored whole as jsonb):
/// nesting deeper than [`MAX_DEPTH`], NUL (`\u0000`: text and jsonb refuse it), lone UTF-16
/// surrogate escapes and bytes that are not UTF-8 (not Unicode text), numbers past numeric's
/// range (exponent beyond ±[`MAX_EXPONENT`]) or longer than [`MAX_NUMBER_CHARS`]. One pass
/// over the bytes; anything else that is not JSON is left to serde to report.
fn storable(payload: &[u8]) -> Result<(), Invalid> {
    if std::str::from_utf8(payload).is_err() {
        return Err((RejectReason::InvalidJson, "not UTF-8".into()));
    }
    let (mut depth, mut in_string, mut i) = (0usize, false, 0usize);
    let unit = |at: usize| -> Option<u16> {
        let hex = payload.get(at..at + 4)?;
        u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
    };
    while i < payload.len() {
        match payload[i] {
            b'"' => in_string = !in_string,
            b'\\' if in_string => {
                if payload.get(i + 1) == Some(&b'u') {
                    match unit(i + 2) {
                        Some(0) => {
                            return Err((RejectReason::InvalidValue, "a string holds NUL (\\u0000)".into()));
                        }
                        Some(0xD800..=0xDBFF)
                            if payload.get(i + 6..i + 8) == Some(b"\\u")
                                && matches!(unit(i + 8), Some(0xDC00..=0xDFFF)) =>
                        {
                            i += 6
                        }
                        Some(0xD800..=0xDFFF) => {
                            return Err((RejectReason::InvalidJson, "lone UTF-16 surrogate escape".into()))
                        }
                        _ => {}
                    }
                }
                i += 1; // the escaped character
            }
            b'[' | b'{' if !in_string => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err((RejectReason::InvalidJson, format!("nested deeper than {MAX_DEPTH} levels")));
                }
            }
            b']' | b'}' if !in_string => depth = depth.saturating_sub(1),
            b'-' | b'0'..=b'9' if !in_string => {
                let len = payload[i..]
                    .iter()
                    .take_while(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                    .count();
                number(&payload[i..i + len])?;
                i += len - 1;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Longest number literal, and largest decimal exponent: a double's range (serde's typed
/// fields already call a larger number non-finite), far inside PostgreSQL numeric's.
const MAX_NUMBER_CHARS: usize = 64;
const MAX_EXPONENT: u32 = 308;

fn number(literal: &[u8]) -> Result<(), Invalid> {
    if literal.len() > MAX_NUMBER_CHARS {
        return Err((RejectReason::InvalidValue, format!("a number of {} characters", literal.len())));
    }
    let exponent = literal.iter().position(|b| matches!(b, b'e' | b'E')).map(|e| &literal[e + 1..]);
    let digits = exponent.map(|x| x.strip_prefix(b"-").or(x.strip_prefix(b"+")).unwrap_or(x));
    let magnitude = digits.and_then(|d| std::str::from_utf8(d).ok()?.parse::<u32>().ok());
    if magnitude.is_some_and(|m| m > MAX_EXPONENT) {
        return Err((RejectReason::NonFinite, format!("exponent beyond ±{MAX_EXPONENT}")));
    }
    Ok(())
}

/// The free-form parts of a trace still have a shape (SPEC 2.1): `pipeline` an array of stage
/// objects, `result` an object. They are kept unparsed, so the shape is checked here.
fn free_form_shapes(e: &DecisionTrace) -> Result<(), Invalid> {
    let wrong = |m: &str| (RejectReason::WrongType, m.to_owned());
    if let Some(p) = &e.pipeline {
        let stages: Vec<&serde_json::value::RawValue> =
            serde_json::from_str(p.get()).map_err(|_| wrong("pipeline: expected an array"))?;
        if !stages.iter().all(|s| s.get().starts_with('{')) {
            return Err(wrong("pipeline: expected an array of objects"));
        }
    }
    if e.result.as_ref().is_some_and(|r| !r.get().starts_with('{')) {
        return Err(wrong("result: expected an object"));
    }
    Ok(())
}

/// A tenant or identifier that can be stored in a key.
fn id_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_ID_BYTES && !s.contains('\0')
}

fn reject(reason: RejectReason, detail: String, tenant_id: Option<String>) -> Rejection {
    Rejection { reason, detail, tenant_id }
}

/// Maps a serde error to a reason. serde's messages for these cases are stable
/// ("missing field `x`", "invalid type: …", "unknown variant …"); anything else that fails in
/// the data layer is a wrong type or value.
fn classify(err: &serde_json::Error, payload: &[u8]) -> Rejection {
    use serde_json::error::Category;
    let msg = err.to_string();
    let reason = if msg.contains(crate::events::interaction_unknown_outcome()) {
        RejectReason::UnknownOutcome
    } else if msg.starts_with("number out of range") {
        RejectReason::NonFinite
    } else {
        match err.classify() {
            Category::Syntax | Category::Eof | Category::Io => RejectReason::InvalidJson,
            Category::Data if msg.starts_with("missing field") => RejectReason::MissingField,
            Category::Data if msg.starts_with("unknown variant") => RejectReason::InvalidValue,
            Category::Data => RejectReason::WrongType,
        }
    };
    Rejection { reason, detail: msg, tenant_id: tenant_of(payload) }
}

/// Best-effort tenant of a payload that failed to decode (error path only).
fn tenant_of(payload: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct TenantOnly {
        #[serde(rename = "tenantId")]
        tenant_id: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<TenantOnly>(payload).ok()?.tenant_id? {
        serde_json::Value::String(s) if id_ok(&s) => Some(s),
        _ => None,
    }
}

/// The tenant part of a message key (`tenantId:customerId` or `tenantId`).
pub fn tenant_of_key(key: &[u8]) -> Option<String> {
    let key = std::str::from_utf8(key).ok()?;
    let tenant = key.split_once(':').map_or(key, |(t, _)| t);
    id_ok(tenant).then(|| tenant.to_owned())
}

type Invalid = (RejectReason, String);

fn non_empty(field: &str, value: &str) -> Result<(), Invalid> {
    if value.is_empty() {
        return Err((RejectReason::InvalidValue, format!("{field} must be a non-empty string")));
    }
    id_length(field, Some(value))
}

/// Identifiers are bounded (see [`MAX_ID_BYTES`]); `None`: an absent optional one.
fn id_length(field: &str, value: Option<&str>) -> Result<(), Invalid> {
    match value {
        Some(v) if v.len() > MAX_ID_BYTES => {
            Err((RejectReason::InvalidValue, format!("{field} is {} bytes long, more than {MAX_ID_BYTES}", v.len())))
        }
        _ => Ok(()),
    }
}

fn non_negative(field: &str, value: f64) -> Result<(), Invalid> {
    if !value.is_finite() {
        return Err((RejectReason::NonFinite, format!("{field} must be finite")));
    }
    if value < 0.0 {
        return Err((RejectReason::NegativeValue, format!("{field} must be >= 0, got {value}")));
    }
    Ok(())
}

fn amount(field: &str, value: f64) -> Result<(), Invalid> {
    non_negative(field, value)?;
    money::micros(value).map(|_| ()).map_err(|e| (RejectReason::InvalidValue, format!("{field}: {e}")))
}

fn validate(event: &Event, limits: &DecodeLimits, now: DateTime<Utc>) -> Result<(), Invalid> {
    non_empty("tenantId", event.tenant_id())?;
    non_empty("id", event.id())?;
    let t = event.event_time();
    if t > now + limits.max_future {
        return Err((
            RejectReason::FutureEventTime,
            format!("event time {t} is more than {} min ahead of {now}", limits.max_future.num_minutes()),
        ));
    }
    if t < now - limits.retention {
        return Err((
            RejectReason::EventTimeTooOld,
            format!("event time {t} is older than the retention horizon of {} days", limits.retention.num_days()),
        ));
    }
    match event {
        Event::Trace(e) => {
            non_empty("customerId", &e.customer_id)?;
            id_length("requestId", Some(&e.request_id))?;
            id_length("decisionFlowId", e.decision_flow_id.as_deref())?;
            id_length("channelId", e.channel_id.as_deref())?;
            free_form_shapes(e)?;
            for q in &e.qualification_results {
                id_length("qualificationResults.offerId", Some(&q.offer_id))?;
                id_length("qualificationResults.ruleId", q.rule_id.as_deref())?;
            }
            for c in &e.contact_policy_results {
                id_length("contactPolicyResults.offerId", Some(&c.offer_id))?;
                id_length("contactPolicyResults.policyId", c.policy_id.as_deref())?;
            }
            non_negative("totalDurationMs", e.total_duration_ms)?;
            for s in e.scoring_results.iter().chain(&e.selected_offers) {
                non_empty("offerId", &s.offer_id)?;
                if !s.score.is_finite() {
                    return Err((RejectReason::NonFinite, "score must be finite".into()));
                }
                if s.rank < 1 {
                    return Err((RejectReason::InvalidValue, format!("rank must be >= 1, got {}", s.rank)));
                }
            }
            // Durations beyond an hour are not latencies; they would also blow the histogram range.
            if e.total_duration_ms > crate::fold::MAX_DURATION_MS as f64 {
                return Err((
                    RejectReason::InvalidValue,
                    format!("totalDurationMs {} exceeds {} ms", e.total_duration_ms, crate::fold::MAX_DURATION_MS),
                ));
            }
        }
        Event::Interaction(e) => {
            non_empty("customerId", &e.customer_id)?;
            non_empty("offerId", &e.offer_id)?;
            non_empty("channelId", &e.channel_id)?;
            id_length("creativeId", e.creative_id.as_deref())?;
            id_length("decisionTraceId", e.decision_trace_id.as_deref())?;
            amount("revenue", e.revenue)?;
            amount("cost", e.cost)?;
        }
        Event::Catalog(e) => {
            let fields = e.fields().map_err(|d| match d {
                DataError::WrongType(m) => (RejectReason::WrongType, m),
                DataError::Negative(m) => (RejectReason::NegativeValue, m),
                DataError::Invalid(m) => (RejectReason::InvalidValue, m),
            })?;
            id_length("entity", Some(&e.entity))?;
            id_length("data.categoryId", fields.category_id.as_deref())?;
            id_length("data.offerId", fields.offer_id.as_deref())?;
        }
        Event::Membership(e) => {
            non_empty("segmentId", &e.segment_id)?;
            non_empty("customerId", &e.customer_id)?;
        }
        Event::Suppression(e) => {
            non_empty("suppressionId", &e.suppression_id)?;
            non_empty("policyType", &e.policy_type)?;
            id_length("customerId", Some(&e.customer_id))?;
            id_length("policyId", Some(&e.policy_id))?;
            id_length("offerId", e.offer_id.as_deref())?;
            id_length("channelId", e.channel_id.as_deref())?;
        }
        Event::Attribution(e) => {
            non_empty("conversionId", &e.conversion_id)?;
            non_empty("model", &e.model)?;
            id_length("offerId", e.offer_id.as_deref())?;
            id_length("channelId", e.channel_id.as_deref())?;
            amount("value", e.value)?;
        }
        Event::ModelMetric(e) => {
            non_empty("modelId", &e.model_id)?;
            if !(0.0..=1.0).contains(&e.auc) {
                return Err((RejectReason::InvalidValue, format!("auc must be within [0, 1], got {}", e.auc)));
            }
            if e.feature_importance.iter().any(|f| !f.value.is_finite()) {
                return Err((RejectReason::NonFinite, "featureImportance values must be finite".into()));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storable_rejects_what_postgresql_cannot_hold() {
        let nested = |n: usize| format!("{{\"a\":{}1{}}}", "[".repeat(n - 1), "]".repeat(n - 1));
        assert!(storable(nested(MAX_DEPTH).as_bytes()).is_ok());
        assert_eq!(storable(nested(MAX_DEPTH + 1).as_bytes()).unwrap_err().0, RejectReason::InvalidJson);
        // Brackets inside strings are text.
        assert!(storable(format!("{{\"a\":\"{}\"}}", "[".repeat(500)).as_bytes()).is_ok());
        assert_eq!(storable(br#"{"a":"x\u0000"}"#).unwrap_err().0, RejectReason::InvalidValue);
        assert_eq!(storable(br#"{"a":"x\uD800y"}"#).unwrap_err().0, RejectReason::InvalidJson);
        assert_eq!(storable(br#"{"a":"\udc00"}"#).unwrap_err().0, RejectReason::InvalidJson);
        assert_eq!(storable(br#"{"a":1e999999}"#).unwrap_err().0, RejectReason::NonFinite);
        assert_eq!(storable(br#"{"a":[1.5E-400]}"#).unwrap_err().0, RejectReason::NonFinite);
        assert_eq!(
            storable(format!("{{\"a\":{}}}", "9".repeat(65)).as_bytes()).unwrap_err().0,
            RejectReason::InvalidValue
        );
        assert!(storable(br#"{"a":-1.25e+308,"b":0,"c":"1e999999"}"#).is_ok());
        assert_eq!(storable(b"{\"a\":\"\xff\"}").unwrap_err().0, RejectReason::InvalidJson);
        // A surrogate pair is one character; an escaped backslash before "u0000" is text.
        assert!(storable(br#"{"a":"\ud83d\ude00 \\u0000 \"\u00e9"}"#).is_ok());
    }

    #[test]
    fn tenants_of_keys_must_fit_a_key() {
        assert_eq!(tenant_of_key(b"acme:c1").as_deref(), Some("acme"));
        assert_eq!(tenant_of_key(b"ac\0me:c1"), None);
        assert_eq!(tenant_of_key("x".repeat(MAX_ID_BYTES + 1).as_bytes()), None);
    }
}
