//! The default narrative writer: deterministic text from the decision's facts, offline, no
//! model behind it (`model: "template-v1"`). Bump [`VERSION`] whenever the wording changes:
//! it is part of every cached narrative's key.

use super::facts::{Facts, Ranked, Removal, Stage};
use super::Mode;

pub const VERSION: &str = "template-v1";

/// The narrative of `facts` for `mode`.
pub fn write(facts: &Facts, mode: Mode) -> String {
    match mode {
        Mode::Regulator => regulator(facts),
        Mode::Customer => customer(facts),
        // The same facts, as fields (the seed: a JSON document, as a string).
        Mode::Agent => serde_json::to_string_pretty(facts).unwrap_or_default(),
    }
}

fn score(x: f64) -> String {
    format!("{x:.6}").trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn offer(r: &Ranked) -> String {
    match &r.offer_name {
        Some(name) => format!("{} (\"{name}\")", r.offer_id),
        None => r.offer_id.clone(),
    }
}

fn removals(stage: &Stage, by: &str) -> String {
    let list: Vec<String> = stage
        .removed
        .iter()
        .map(|Removal { offer_id, reason, by: id }| match id {
            Some(id) => format!("{offer_id} ({by} {id}: {reason})"),
            None => format!("{offer_id} ({reason})"),
        })
        .collect();
    if list.is_empty() {
        String::new()
    } else {
        format!(" Removed: {}.", list.join("; "))
    }
}

/// Formal prose naming every stage, every removal with its rule or policy, every selection.
fn regulator(f: &Facts) -> String {
    let mut out = format!(
        "Decision trace {} (request {}) concerns customer {}{}{}, decided at {} in {} ms.",
        f.trace_id,
        f.request_id,
        f.customer_id,
        f.flow.as_ref().map(|x| format!(" in decision flow {x}")).unwrap_or_default(),
        f.channel.as_ref().map(|x| format!(" for channel {x}")).unwrap_or_default(),
        f.created_at,
        score(f.total_duration_ms),
    );
    out.push('\n');
    for (stage, s, by) in [("Qualification", &f.qualification, "rule"), ("Contact policy", &f.contact_policy, "policy")]
    {
        out.push_str(&format!(
            "\n{stage}: {} offers were evaluated and {} passed.{}",
            s.evaluated,
            s.passed,
            removals(s, by)
        ));
    }
    out.push_str(&format!("\nScoring: {} offers were scored", f.scored));
    match (&f.degraded, &f.degraded_reason) {
        (true, Some(reason)) => out.push_str(&format!(" in degraded mode ({reason}).")),
        (true, None) => out.push_str(" in degraded mode (no reason recorded)."),
        (false, _) => out.push('.'),
    }
    if f.selected.is_empty() {
        out.push_str("\nSelection: no offer was selected.");
    } else {
        let list: Vec<String> = f
            .selected
            .iter()
            .map(|r| format!("{} at rank {} with score {}", offer(r), r.rank, score(r.score)))
            .collect();
        out.push_str(&format!("\nSelection: {} offer(s) were selected: {}.", f.selected.len(), list.join("; ")));
    }
    if !f.runners_up.is_empty() {
        let list: Vec<String> = f
            .runners_up
            .iter()
            .map(|r| {
                format!(
                    "{} at rank {} with score {}, {} below the lowest selected score",
                    offer(&r.offer),
                    r.offer.rank,
                    score(r.offer.score),
                    score(r.behind)
                )
            })
            .collect();
        out.push_str(&format!("\nNot selected: {}.", list.join("; ")));
    }
    out
}

/// A few plain sentences for the customer: no internal ids, offers by their catalog names.
fn customer(f: &Facts) -> String {
    let names: Vec<&str> = f.selected.iter().filter_map(|r| r.offer_name.as_deref()).collect();
    let mut out = match (f.selected.len(), names.len()) {
        (0, _) => "We did not have an offer to recommend to you this time.".to_owned(),
        (n, 0) => format!("We recommended {} to you.", if n == 1 { "an offer".into() } else { format!("{n} offers") }),
        (n, _) if names.len() < n => {
            format!("We recommended {} and {} other offer(s) to you.", names.join(", "), n - names.len())
        }
        _ => format!("We recommended {} to you.", names.join(", ")),
    };
    if !f.selected.is_empty() {
        out.push_str(" They were chosen because, among the offers you qualified for, they matched you best.");
    }
    if !f.qualification.removed.is_empty() {
        out.push_str(" Some offers were not shown because their eligibility requirements were not met.");
    }
    if !f.contact_policy.removed.is_empty() {
        out.push_str(" Some offers were held back because we limit how often we contact you.");
    }
    if f.degraded {
        out.push_str(" This recommendation was made with less information than usual.");
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::narrative::facts::Facts;

    fn facts() -> Facts {
        let trace: consumers::events::DecisionTrace = serde_json::from_value(serde_json::json!({
            "id": "trace_001", "tenantId": "t", "customerId": "CUST001", "requestId": "req-1",
            "decisionFlowKey": "default-flow", "channelId": "email",
            "qualificationResults": [
                {"offerId": "off_premium_card", "passed": true, "reason": "passed"},
                {"offerId": "off_gold_plus", "passed": true, "reason": "passed"},
                {"offerId": "off_restricted", "passed": false, "reason": "segment_mismatch", "ruleId": "rule_42"}],
            "contactPolicyResults": [
                {"offerId": "off_premium_card", "blocked": false, "reason": "passed"},
                {"offerId": "off_weekly_promo", "blocked": true, "reason": "frequency_cap", "policyId": "pol_email_daily_cap"}],
            "scoringResults": [{"offerId": "off_premium_card", "score": 0.89, "rank": 1},
                               {"offerId": "off_gold_plus", "score": 0.71, "rank": 2}],
            "selectedOffers": [{"offerId": "off_premium_card", "score": 0.89, "rank": 1}],
            "degraded": true, "degradedReason": "model_timeout",
            "totalDurationMs": 42, "createdAt": "2026-03-16T14:30:00Z"}))
        .unwrap();
        let names = HashMap::from([("off_premium_card".to_owned(), "Premium Card".to_owned())]);
        Facts::of(&trace, &names)
    }

    #[test]
    fn the_regulator_reads_every_stage_removal_and_selection() {
        let text = write(&facts(), Mode::Regulator);
        for part in [
            "Decision trace trace_001 (request req-1) concerns customer CUST001 in decision flow default-flow for channel email",
            "Qualification: 3 offers were evaluated and 2 passed. Removed: off_restricted (rule rule_42: segment_mismatch).",
            "Contact policy: 2 offers were evaluated and 1 passed. Removed: off_weekly_promo (policy pol_email_daily_cap: frequency_cap).",
            "Scoring: 2 offers were scored in degraded mode (model_timeout).",
            "off_premium_card (\"Premium Card\") at rank 1 with score 0.89",
            "Not selected: off_gold_plus at rank 2 with score 0.71, 0.18 below the lowest selected score.",
        ] {
            assert!(text.contains(part), "missing {part:?} in:\n{text}");
        }
    }

    #[test]
    fn the_customer_reads_no_internal_ids() {
        let text = write(&facts(), Mode::Customer);
        assert!(text.starts_with("We recommended Premium Card to you."), "{text}");
        for id in ["off_", "rule_", "pol_", "CUST001", "trace_001"] {
            assert!(!text.contains(id), "{id} in {text}");
        }
        assert!(text.contains("limit how often we contact you") && text.contains("less information"));
    }

    #[test]
    fn the_agent_gets_the_facts_as_a_json_document() {
        let doc: serde_json::Value = serde_json::from_str(&write(&facts(), Mode::Agent)).unwrap();
        assert_eq!(doc["selected"][0]["offerName"], "Premium Card");
        assert_eq!(doc["runnersUp"][0]["offerId"], "off_gold_plus");
        assert_eq!(doc["contactPolicy"]["removed"][0]["by"], "pol_email_daily_cap");
    }
}
