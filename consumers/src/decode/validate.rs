//! Field checks after parsing (docs/events.md 2.8), and the documented range of every value that reaches
//! a column or a counter.

use chrono::{DateTime, Datelike, Utc};

use super::{DecodeLimits, Invalid, RejectReason, MAX_ID_BYTES};
use crate::events::{DataError, DecisionTrace, Event};
use crate::units::money;

/// The free-form parts of a trace still have a shape (docs/events.md 2.1): `pipeline` an array of stage
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

/// Largest accepted `rank`. Rank sums are `bigint` per (day, offer[, dimension]): at this bound
/// a row holds 9.2 × 10^13 ranked entries, a million traces a second on one offer for a
/// thousand days. A rank is a position among a trace's candidates, which are far fewer; a
/// larger one is a producer bug (a `Long.MAX_VALUE` meaning "unranked").
pub const MAX_RANK: i64 = 100_000;

/// Largest accepted |score|. Scores are summed in micro-units (`bigint`) per (day, offer[,
/// dimension]): at this bound a row holds 9.2 × 10^9 scored entries, 106,000 a second on one
/// offer all day, twice docs/guarantees.md 7's whole trace rate. Scores are probabilities, margins or
/// expected values; one beyond ±1,000 is a producer bug.
pub const MAX_SCORE: f64 = 1_000.0;

/// Timestamps that are not the event time (which is already within the retention horizon):
/// what RFC 3339 can write (four-digit years), well inside PostgreSQL's `timestamptz`, which
/// refuses years before 4713 BC that chrono parses.
fn timestamp(field: &str, t: DateTime<Utc>) -> Result<(), Invalid> {
    if !(1..=9999).contains(&t.year()) {
        return Err((RejectReason::InvalidValue, format!("{field} {t} is outside the years 0001..9999")));
    }
    Ok(())
}

/// What one trace contributes is bounded (docs/events.md 2.8): each array at most `max` entries.
fn candidates(e: &DecisionTrace, max: usize) -> Result<(), Invalid> {
    let arrays = [
        ("qualificationResults", e.qualification_results.len()),
        ("contactPolicyResults", e.contact_policy_results.len()),
        ("scoringResults", e.scoring_results.len()),
        ("selectedOffers", e.selected_offers.len()),
    ];
    match arrays.into_iter().find(|(_, n)| *n > max) {
        Some((name, n)) => Err((RejectReason::TooManyCandidates, format!("{name} holds {n} entries, more than {max}"))),
        None => Ok(()),
    }
}

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

pub(super) fn validate(event: &Event, limits: &DecodeLimits, now: DateTime<Utc>) -> Result<(), Invalid> {
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
            candidates(e, limits.max_candidates)?;
            for s in e.scoring_results.iter().chain(&e.selected_offers) {
                non_empty("offerId", &s.offer_id)?;
                if !s.score.is_finite() {
                    return Err((RejectReason::NonFinite, "score must be finite".into()));
                }
                if s.score.abs() > MAX_SCORE {
                    return Err((RejectReason::InvalidValue, format!("score {} is outside ±{MAX_SCORE}", s.score)));
                }
                if !(1..=MAX_RANK).contains(&s.rank) {
                    return Err((
                        RejectReason::InvalidValue,
                        format!("rank must be within 1..={MAX_RANK}, got {}", s.rank),
                    ));
                }
            }
            // Durations beyond an hour are not latencies; they would also blow the histogram range.
            if e.total_duration_ms > crate::units::MAX_DURATION_MS as f64 {
                return Err((
                    RejectReason::InvalidValue,
                    format!("totalDurationMs {} exceeds {} ms", e.total_duration_ms, crate::units::MAX_DURATION_MS),
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
            if let Some(t) = e.expires_at {
                timestamp("expiresAt", t)?;
            }
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
