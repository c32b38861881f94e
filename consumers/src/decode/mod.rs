//! Bytes → validated [`Event`], or a [`Rejection`] saying why (docs/events.md 2.8).
//!
//! Decoding is the hot path of ingest, so it parses straight into the typed structs (free-form
//! parts stay unparsed `RawValue`s) and classifies failures only on the error path. Three
//! layers: [`storable`] scans the bytes for what PostgreSQL could not hold anywhere, serde
//! parses the topic's contract, [`validate`] checks every value against its documented range.

mod storable;
mod validate;

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use crate::events::{
    Attribution, CatalogChange, DecisionTrace, Event, Interaction, ModelMetric, SegmentMembership, Suppression,
    TopicKind,
};
use storable::storable;
pub use storable::MAX_DEPTH;
use validate::validate;
pub use validate::{MAX_RANK, MAX_SCORE};

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
    /// The message key names another tenant than the payload's `tenantId`.
    TenantMismatch,
    /// A trace array holds more entries than `DV_MAX_CANDIDATES_PER_TRACE`.
    TooManyCandidates,
    /// Decoded, but PostgreSQL refused it inside the batch (found by bisecting the batch).
    RejectedByDatabase,
    /// The Kafka client could not deliver these offsets (unsupported codec, corrupt batch).
    Undeliverable,
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
            RejectReason::TenantMismatch => "tenant_mismatch",
            RejectReason::TooManyCandidates => "too_many_candidates",
            RejectReason::RejectedByDatabase => "rejected_by_database",
            RejectReason::Undeliverable => "undeliverable",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: RejectReason,
    pub detail: String,
    /// The tenant whose admins see the dead letter (None: platform operators only).
    pub tenant_id: Option<String>,
}

impl Rejection {
    pub fn new(reason: RejectReason, detail: impl Into<String>, tenant_id: Option<String>) -> Rejection {
        Rejection { reason, detail: detail.into(), tenant_id }
    }
}

/// Limits of docs/events.md 2.8, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    pub max_event_bytes: usize,
    /// The catalog topic's own limit: a catalog `model` carries its whole tree ensemble
    /// (500 trees of depth 6 with their statistics are several MB), and catalog changes are rare.
    pub max_catalog_event_bytes: usize,
    /// How far in the future an event time may be (docs/events.md 2.8: 1 hour).
    pub max_future: Duration,
    /// The retention horizon (docs/guarantees.md 3: 400 days): older event times are rejected.
    pub retention: Duration,
    /// Most entries in each of a trace's four arrays (docs/events.md 2.8: what one event may contribute
    /// is bounded). Each distinct offer of them becomes ~3 view rows, each entry is visited.
    pub max_candidates: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_event_bytes: 256 * 1024,
            max_catalog_event_bytes: 16 * 1024 * 1024,
            max_future: Duration::hours(1),
            retention: Duration::days(400),
            max_candidates: 1_000,
        }
    }
}

/// Longest identifier (`id`, `tenantId`, `…Id`, `entity`, `model`, `policyType`). They are
/// key columns: PostgreSQL refuses a btree entry over 2,704 bytes, and a key holds up to five
/// of them, so a longer one would fail its batch on every retry.
pub const MAX_ID_BYTES: usize = 256;

/// Decodes one Kafka message: the payload as [`decode`] does, then the key. A message key
/// (`tenantId:customerId` or `tenantId`, docs/events.md) that names another tenant than the payload is
/// refused: a misconfigured producer of one tenant must not write into another's views. A
/// message that cannot be decoded is attributed to the tenant its key names.
pub fn decode_message(
    topic: TopicKind,
    key: Option<&[u8]>,
    payload: &[u8],
    limits: &DecodeLimits,
    now: DateTime<Utc>,
) -> Result<Event, Rejection> {
    let event = decode(topic, payload, limits, now).map_err(|mut r| {
        r.tenant_id = match (r.tenant_id.take(), key) {
            (None, Some(k)) => tenant_of_key(k),
            // A payload tenant the key contradicts: whose data it is cannot be told.
            (Some(t), Some(k)) if !key_names(k, &t) => None,
            (t, _) => t,
        };
        r
    })?;
    if let Some(key) = key {
        let tenant = event.tenant_id();
        if !key_names(key, tenant) {
            // Whose data it is cannot be told, so neither tenant's admins see it: only
            // platform operators (tenant '').
            return Err(Rejection::new(
                RejectReason::TenantMismatch,
                format!(
                    "the message key {:?} does not name the payload's tenant {tenant:?}",
                    String::from_utf8_lossy(key)
                ),
                None,
            ));
        }
    }
    Ok(event)
}

/// Decodes and validates one message payload of `topic`, as of processing time `now`.
pub fn decode(topic: TopicKind, payload: &[u8], limits: &DecodeLimits, now: DateTime<Utc>) -> Result<Event, Rejection> {
    let max_bytes = match topic {
        TopicKind::Catalog => limits.max_catalog_event_bytes,
        _ => limits.max_event_bytes,
    };
    if payload.len() > max_bytes {
        return Err(Rejection::new(
            RejectReason::TooLarge,
            format!("{} bytes exceed the limit of {max_bytes} bytes", payload.len()),
            None,
        ));
    }
    // Before serde, which would accept these in skipped fields and leave PostgreSQL to refuse
    // them inside the batch transaction (a poison message that wedges ingest).
    let text = storable(payload).map_err(|(reason, detail)| Rejection::new(reason, detail, None))?;
    // From text, not bytes: serde then skips its UTF-8 check of every string and key (15 % of
    // a trace's decode), which `storable` has done once for the whole payload.
    let parsed = match topic {
        TopicKind::DecisionTraces => serde_json::from_str::<Box<DecisionTrace>>(text).map(Event::Trace),
        // Into boxes directly: every variant is boxed (`Event`).
        TopicKind::Interactions => serde_json::from_str::<Box<Interaction>>(text).map(Event::Interaction),
        TopicKind::Catalog => serde_json::from_str::<Box<CatalogChange>>(text).map(Event::Catalog),
        TopicKind::SegmentMembership => serde_json::from_str::<Box<SegmentMembership>>(text).map(Event::Membership),
        TopicKind::Suppressions => serde_json::from_str::<Box<Suppression>>(text).map(Event::Suppression),
        TopicKind::Attributions => serde_json::from_str::<Box<Attribution>>(text).map(Event::Attribution),
        TopicKind::ModelMetrics => serde_json::from_str::<Box<ModelMetric>>(text).map(Event::ModelMetric),
    };
    let event = parsed.map_err(|e| classify(&e, payload))?;
    validate(&event, limits, now).map_err(|(reason, detail)| {
        let tenant = Some(event.tenant_id()).filter(|t| id_ok(t)).map(str::to_owned);
        Rejection::new(reason, detail, tenant)
    })?;
    Ok(event)
}

/// A tenant or identifier that can be stored in a key.
fn id_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_ID_BYTES && !s.contains('\0')
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

/// Whether a message key (`tenantId:customerId` or `tenantId`) names `tenant`. Compared as a
/// prefix, so that a tenant id holding ':' is still matched exactly.
fn key_names(key: &[u8], tenant: &str) -> bool {
    key.strip_prefix(tenant.as_bytes()).is_some_and(|rest| rest.is_empty() || rest.first() == Some(&b':'))
}

/// The tenant part of a message key (`tenantId:customerId` or `tenantId`).
pub fn tenant_of_key(key: &[u8]) -> Option<String> {
    let key = std::str::from_utf8(key).ok()?;
    let tenant = key.split_once(':').map_or(key, |(t, _)| t);
    id_ok(tenant).then(|| tenant.to_owned())
}

/// A failed check: the reason and the detail.
type Invalid = (RejectReason, String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_of_keys_must_fit_a_key() {
        assert_eq!(tenant_of_key(b"acme:c1").as_deref(), Some("acme"));
        assert_eq!(tenant_of_key(b"ac\0me:c1"), None);
        assert_eq!(tenant_of_key("x".repeat(MAX_ID_BYTES + 1).as_bytes()), None);
    }

    #[test]
    fn keys_must_name_the_payload_tenant() {
        assert!(key_names(b"acme:c1", "acme"));
        assert!(key_names(b"acme", "acme"));
        assert!(key_names(b"a:b:c1", "a:b"));
        assert!(!key_names(b"acme2:c1", "acme"));
        assert!(!key_names(b"globex:c1", "acme"));
        assert!(!key_names(b"", "acme"));
        assert!(!key_names(b"\xffacme", "acme"));
    }
}
