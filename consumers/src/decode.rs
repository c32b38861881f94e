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

/// Decodes and validates one message payload of `topic`, as of processing time `now`.
pub fn decode(topic: TopicKind, payload: &[u8], limits: &DecodeLimits, now: DateTime<Utc>) -> Result<Event, Rejection> {
    if payload.len() > limits.max_event_bytes {
        return Err(reject(
            RejectReason::TooLarge,
            format!("{} bytes exceed the limit of {} bytes", payload.len(), limits.max_event_bytes),
            None,
        ));
    }
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
    validate(&event, limits, now)
        .map_err(|(reason, detail)| reject(reason, detail, Some(event.tenant_id().to_owned())))?;
    Ok(event)
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
        serde_json::Value::String(s) if !s.is_empty() => Some(s),
        _ => None,
    }
}

/// The tenant part of a message key (`tenantId:customerId` or `tenantId`).
pub fn tenant_of_key(key: &[u8]) -> Option<String> {
    let key = std::str::from_utf8(key).ok()?;
    let tenant = key.split_once(':').map_or(key, |(t, _)| t);
    (!tenant.is_empty()).then(|| tenant.to_owned())
}

type Invalid = (RejectReason, String);

fn non_empty(field: &str, value: &str) -> Result<(), Invalid> {
    if value.is_empty() {
        return Err((RejectReason::InvalidValue, format!("{field} must be a non-empty string")));
    }
    Ok(())
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
            amount("revenue", e.revenue)?;
            amount("cost", e.cost)?;
        }
        Event::Catalog(e) => {
            e.fields().map_err(|d| match d {
                DataError::WrongType(m) => (RejectReason::WrongType, m),
                DataError::Negative(m) => (RejectReason::NegativeValue, m),
                DataError::Invalid(m) => (RejectReason::InvalidValue, m),
            })?;
        }
        Event::Membership(e) => {
            non_empty("segmentId", &e.segment_id)?;
            non_empty("customerId", &e.customer_id)?;
        }
        Event::Suppression(e) => {
            non_empty("suppressionId", &e.suppression_id)?;
            non_empty("policyType", &e.policy_type)?;
        }
        Event::Attribution(e) => {
            non_empty("conversionId", &e.conversion_id)?;
            non_empty("model", &e.model)?;
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
