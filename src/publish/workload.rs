//! The synthetic event generator. Deterministic for a seed and a "now".

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use consumers::events::TopicKind;

#[derive(Debug, Clone)]
pub struct WorkloadShape {
    pub tenants: usize,
    pub offers: usize,
    pub categories: usize,
    pub channels: usize,
    pub flows: usize,
    pub segments: usize,
    pub customers: u64,
    /// Customers (per tenant) with segment memberships.
    pub segmented_customers: u64,
    pub days: i64,
    pub time: EventTime,
    /// `decisionTraceSampleRate` of the large tenant (`tenant_0`): SPEC 7's standard workload
    /// follows seed 002's advice for high volume with 0.1; the small tenants keep the default
    /// 1.0. At 1.0 no `tenant_settings` event is published.
    pub large_tenant_trace_sample_rate: f64,
}

/// How event times are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventTime {
    /// A history of `days` ending now, in event-time order as a real stream delivers it, spread
    /// evenly over this many traces; one trace in a hundred arrives up to six hours late.
    History { traces: u64 },
    /// Live traffic: every event at the wall-clock time it is generated.
    Live,
}

impl Default for WorkloadShape {
    fn default() -> Self {
        Self {
            tenants: 10,
            offers: 200,
            categories: 10,
            channels: 6,
            flows: 5,
            segments: 20,
            customers: 1_000_000,
            segmented_customers: 2_000,
            days: 90,
            time: EventTime::History { traces: 1_000_000 },
            large_tenant_trace_sample_rate: 0.1,
        }
    }
}

/// One message to publish.
pub struct Generated {
    pub topic: TopicKind,
    pub key: String,
    pub payload: String,
}

pub struct Workload {
    shape: WorkloadShape,
    rng: StdRng,
    now: DateTime<Utc>,
    /// Part of every event id: the same seed republishes the same ids (an idempotent replay,
    /// which dedup absorbs); another seed publishes new events.
    seed: u64,
    seq: u64,
    traces: u64,
}

fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

impl Workload {
    pub fn new(shape: WorkloadShape, seed: u64, now: DateTime<Utc>) -> Self {
        Self { shape, rng: StdRng::seed_from_u64(seed), now, seed, seq: 0, traces: 0 }
    }

    /// The first tenant is the large one: half of all traffic.
    fn tenant(&mut self) -> String {
        let n = self.shape.tenants.max(1);
        let i = if n == 1 || self.rng.random_bool(0.5) { 0 } else { self.rng.random_range(1..n) };
        format!("tenant_{i}")
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.seq += 1;
        format!("{prefix}_{:x}_{:010}", self.seed, self.seq)
    }

    /// Catalog of every tenant and the memberships of the segmented customers.
    pub fn catalog_and_segments(&mut self) -> Vec<Generated> {
        let s = self.shape.clone();
        let now = ts(self.now - Duration::days(s.days));
        let mut out = Vec::new();
        let cat = |tenant: &str, entity: &str, id: String, data: serde_json::Value| Generated {
            topic: TopicKind::Catalog,
            key: tenant.to_owned(),
            payload: json!({"id": id, "tenantId": tenant, "entity": entity, "op": "upsert", "version": 1,
                            "data": data, "updatedAt": now})
            .to_string(),
        };
        for t in 0..s.tenants {
            let tenant = format!("tenant_{t}");
            for c in 0..s.channels {
                out.push(cat(
                    &tenant,
                    "channel",
                    format!("ch_{c}"),
                    json!({"name": format!("Channel {c}"), "status": "active"}),
                ));
            }
            for c in 0..s.categories {
                out.push(cat(&tenant, "category", format!("cat_{c}"), json!({"name": format!("Category {c}")})));
            }
            for f in 0..s.flows {
                out.push(cat(
                    &tenant,
                    "decision_flow",
                    format!("df_{f}"),
                    json!({"name": format!("Flow {f}"), "key": format!("flow-{f}")}),
                ));
            }
            for g in 0..s.segments {
                out.push(cat(
                    &tenant,
                    "segment",
                    format!("seg_{g:02}"),
                    json!({"name": format!("Segment {g}"), "status": "active"}),
                ));
            }
            for o in 0..s.offers {
                let status = ["active", "active", "active", "active", "inactive", "draft"][o % 6];
                let data = json!({"name": format!("Offer {o}"), "status": status, "priority": (o * 7) % 100,
                                  "categoryId": format!("cat_{}", o % s.categories),
                                  "budget": {"allocated": if o % 3 == 0 { 10_000.0 } else { 0.0 }}});
                out.push(cat(&tenant, "offer", format!("off_{o:03}"), data));
                for k in 0..(o % 3) {
                    out.push(cat(&tenant, "creative", format!("cr_{o:03}_{k}"),
                                 json!({"offerId": format!("off_{o:03}"), "name": format!("Creative {o}/{k}"), "status": "active"})));
                }
            }
            if t == 0 && s.large_tenant_trace_sample_rate < 1.0 {
                let rate = s.large_tenant_trace_sample_rate;
                out.push(cat(&tenant, "tenant_settings", tenant.clone(), json!({"decisionTraceSampleRate": rate})));
            }
            out.push(cat(&tenant, "experiment", "exp_1".into(), json!({"name": "Experiment 1", "status": "running"})));
            out.push(cat(&tenant, "journey", "jr_1".into(), json!({"name": "Journey 1", "status": "active"})));
            out.push(cat(&tenant, "trigger", "tr_1".into(), json!({"name": "Trigger 1", "status": "active"})));
            for c in 0..s.segmented_customers.min(s.customers) {
                let n_segments = 1 + (c % 3);
                for k in 0..n_segments {
                    let seg = (c + k * 7) % s.segments as u64;
                    let customer = format!("cust_{c}");
                    out.push(Generated {
                        topic: TopicKind::SegmentMembership,
                        key: format!("{tenant}:{customer}"),
                        payload: json!({"id": format!("mem_{t}_{c}_{k}"), "tenantId": tenant, "segmentId": format!("seg_{seg:02}"),
                                        "customerId": customer, "op": "add", "at": now})
                        .to_string(),
                    });
                }
            }
        }
        out
    }

    /// One decision trace and the interactions it leads to.
    pub fn next_trace(&mut self) -> Vec<Generated> {
        let s = self.shape.clone();
        let tenant = self.tenant();
        let customer = format!("cust_{}", self.rng.random_range(0..s.customers.max(1)));
        let key = format!("{tenant}:{customer}");
        let created = self.trace_time();
        let channel = format!("ch_{}", self.rng.random_range(0..s.channels));
        let flow = format!("df_{}", self.rng.random_range(0..s.flows));
        let n = self.rng.random_range(20..=40);
        let mut qualification = Vec::with_capacity(n);
        let mut contact = Vec::new();
        let mut scored: Vec<(String, f64)> = Vec::new();
        let first = self.rng.random_range(0..s.offers);
        for i in 0..n {
            let offer = format!("off_{:03}", (first + i * 7) % s.offers);
            let passed = self.rng.random_bool(0.85);
            qualification.push(json!({"offerId": offer, "passed": passed,
                                      "reason": if passed { "passed" } else { "segment_mismatch" }}));
            if !passed {
                continue;
            }
            let blocked = self.rng.random_bool(0.1);
            contact.push(json!({"offerId": offer, "blocked": blocked, "reason": if blocked { "frequency_cap" } else { "passed" }}));
            if !blocked {
                scored.push((offer, (self.rng.random::<f64>() * 1000.0).round() / 1000.0));
            }
        }
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let scoring: Vec<_> =
            scored.iter().enumerate().map(|(i, (o, sc))| json!({"offerId": o, "score": sc, "rank": i + 1})).collect();
        let k = self.rng.random_range(3..=5).min(scored.len());
        let selected: Vec<_> = scoring[..k].to_vec();
        let degraded = self.rng.random_bool(0.02);
        let trace_id = self.next_id("tr");
        let duration = self.rng.random_range(5..200);
        let trace = json!({
            "id": trace_id, "tenantId": tenant, "customerId": customer, "requestId": self.next_id("req"),
            "decisionFlowId": flow, "decisionFlowKey": flow.replace('_', "-"), "channelId": channel,
            "pipeline": [
                {"stage": "qualification", "candidates": n, "passed": contact.len(), "durationMs": duration / 4},
                {"stage": "contact_policy", "candidates": contact.len(), "passed": scoring.len(), "durationMs": duration / 5},
                {"stage": "scoring", "candidates": scoring.len(), "durationMs": duration / 3},
                {"stage": "ranking", "topScore": scored.first().map(|x| x.1), "durationMs": 2},
                {"stage": "arbitration", "method": "priority_weighted", "durationMs": 3}],
            "result": {"count": k, "topOffer": selected.first()},
            "qualificationResults": qualification, "contactPolicyResults": contact,
            "scoringResults": scoring, "selectedOffers": selected,
            "degraded": degraded, "totalDurationMs": duration, "createdAt": ts(created)
        });
        let mut out =
            vec![Generated { topic: TopicKind::DecisionTraces, key: key.clone(), payload: trace.to_string() }];
        for (offer, _) in scored.iter().take(3.min(k)) {
            let at = created + Duration::seconds(1);
            let push = |out: &mut Vec<Generated>, this: &mut Self, outcome: &str, revenue: f64| {
                let id = this.next_id("int");
                out.push(Generated {
                    topic: TopicKind::Interactions,
                    key: key.clone(),
                    payload: json!({"id": id, "tenantId": tenant, "customerId": customer, "offerId": offer,
                                    "channelId": channel, "decisionTraceId": trace_id, "outcome": outcome,
                                    "revenue": revenue, "cost": 0.05, "occurredAt": ts(at)})
                    .to_string(),
                });
            };
            push(&mut out, self, "impression", 0.0);
            let r: f64 = self.rng.random();
            if r < 0.05 {
                let revenue = (self.rng.random::<f64>() * 100.0 * 100.0).round() / 100.0;
                let outcome = if self.rng.random_bool(0.5) { "accept" } else { "convert" };
                push(&mut out, self, outcome, revenue);
                if outcome == "convert" {
                    let conversion = format!("int_{:x}_{:010}", self.seed, self.seq);
                    self.attributions(&mut out, &tenant, &conversion, offer, &channel, revenue, at);
                }
            } else if r < 0.07 {
                let outcome = if self.rng.random_bool(0.5) { "reject" } else { "dismiss" };
                push(&mut out, self, outcome, 0.0);
            }
        }
        if self.rng.random_bool(0.01) {
            self.suppression(&mut out, &tenant, &customer, &scored, &channel, created);
        }
        if self.rng.random_bool(0.0005) {
            self.model_metric(&mut out, &tenant, created);
        }
        out
    }

    fn trace_time(&mut self) -> DateTime<Utc> {
        self.traces += 1;
        match self.shape.time {
            EventTime::Live => Utc::now(),
            EventTime::History { traces } => {
                let span_ms = self.shape.days * 86_400_000;
                let step = span_ms as f64 / traces.max(1) as f64;
                let on_time = (span_ms - (self.traces as f64 * step) as i64).max(0);
                let late_ms = if self.rng.random_bool(0.01) { self.rng.random_range(0..21_600_000) } else { 0 };
                // Never in the future, never before the span.
                self.now - Duration::milliseconds((on_time + late_ms).min(span_ms - 1))
            }
        }
    }

    /// A conversion credited by two attribution models (docs/events.md 2.6).
    #[allow(clippy::too_many_arguments)]
    fn attributions(
        &mut self,
        out: &mut Vec<Generated>,
        tenant: &str,
        conversion: &str,
        offer: &str,
        channel: &str,
        value: f64,
        at: DateTime<Utc>,
    ) {
        for model in ["last_touch", "linear"] {
            let id = self.next_id("attr");
            out.push(Generated {
                topic: TopicKind::Attributions,
                key: tenant.to_owned(),
                payload: json!({"id": id, "tenantId": tenant, "conversionId": conversion, "model": model,
                                "value": value, "offerId": offer, "channelId": channel, "occurredAt": ts(at)})
                .to_string(),
            });
        }
    }

    /// A contact-policy suppression of one of the trace's offers, expiring after two weeks;
    /// one in five is lifted a day later (docs/events.md 2.5).
    fn suppression(
        &mut self,
        out: &mut Vec<Generated>,
        tenant: &str,
        customer: &str,
        scored: &[(String, f64)],
        channel: &str,
        at: DateTime<Utc>,
    ) {
        let Some((offer, _)) = scored.last() else { return };
        let suppression_id = self.next_id("sup");
        let policy = self.rng.random_range(0..8);
        let policy_type = ["frequency_cap", "cooldown", "fatigue", "opt_out"][policy % 4];
        let event = |this: &mut Self, op: &str, when: DateTime<Utc>| Generated {
            topic: TopicKind::Suppressions,
            key: format!("{tenant}:{customer}"),
            payload: json!({"id": this.next_id("supev"), "tenantId": tenant, "suppressionId": suppression_id,
                            "customerId": customer, "offerId": offer, "channelId": channel,
                            "policyId": format!("pol_{policy}"),
                            "policyType": policy_type,
                            "op": op, "createdAt": ts(when), "expiresAt": ts(at + Duration::days(14))})
            .to_string(),
        };
        out.push(event(self, "create", at));
        if self.rng.random_bool(0.2) {
            out.push(event(self, "lift", (at + Duration::days(1)).min(self.now)));
        }
    }

    /// A model evaluation (docs/events.md 2.7): three models, AUC drifting around 0.8.
    fn model_metric(&mut self, out: &mut Vec<Generated>, tenant: &str, at: DateTime<Utc>) {
        let m = self.rng.random_range(0..3);
        let auc = ((0.75 + self.rng.random::<f64>() * 0.1) * 1000.0).round() / 1000.0;
        let features: Vec<_> = ["recency", "frequency", "monetary", "tenure"]
            .iter()
            .map(|f| json!({"name": f, "value": (self.rng.random::<f64>() * 1000.0).round() / 1000.0}))
            .collect();
        out.push(Generated {
            topic: TopicKind::ModelMetrics,
            key: tenant.to_owned(),
            payload: json!({"id": self.next_id("mm"), "tenantId": tenant, "modelId": format!("model_{m}"),
                            "modelName": format!("Model {m}"), "auc": auc, "featureImportance": features,
                            "evaluatedAt": ts(at)})
            .to_string(),
        });
    }
}
