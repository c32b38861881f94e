//! Per-tenant rate limits (docs/api.md 5.4), as data: one policy per endpoint class. Limits are
//! per API process (governor keeps its state in memory): N replicas allow N times the rate.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use super::error::ApiError;

/// An endpoint class and its policy: `rate` requests per `per`, up to `burst` at once.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub class: &'static str,
    pub rate: u32,
    pub per: Duration,
    pub burst: u32,
}

/// Dashboard and traces reads: 100/s, burst 200 (`DV_RATE_LIMIT_READS_PER_SEC`, `…_BURST`).
pub const READS: Policy = Policy { class: "reads", rate: 100, per: Duration::from_secs(1), burst: 200 };
/// SHAP computations: 30 a minute (`DV_RATE_LIMIT_SHAP_PER_MIN`, the seed's limit).
pub const SHAP: Policy = Policy { class: "shap", rate: 30, per: Duration::from_secs(60), burst: 30 };
/// Narratives: 20 a minute (`DV_RATE_LIMIT_NARRATIVE_PER_MIN`, the seed's limit).
pub const NARRATIVE: Policy = Policy { class: "narrative", rate: 20, per: Duration::from_secs(60), burst: 20 };

struct Limiter {
    policy: Policy,
    limiter: DefaultKeyedRateLimiter<String>,
}

impl Limiter {
    fn new(policy: Policy) -> Limiter {
        let one = |n: u32| NonZeroU32::new(n.max(1)).expect("max(1) is non-zero");
        let interval = policy.per / policy.rate.max(1);
        let quota = Quota::with_period(interval.max(Duration::from_nanos(1)))
            .expect("a positive period")
            .allow_burst(one(policy.burst));
        Limiter { policy, limiter: DefaultKeyedRateLimiter::keyed(quota) }
    }

    /// Admits one request of `tenant` or answers 429 with the seconds until the next one.
    fn check(&self, tenant: &str) -> Result<(), ApiError> {
        self.limiter.check_key(&tenant.to_owned()).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            metrics::counter!("api_rate_limited_total", "class" => self.policy.class).increment(1);
            ApiError::TooManyRequests { retry_after_secs: wait.as_secs_f64().ceil() as u64 }
        })
    }
}

#[derive(Clone)]
pub struct RateLimits {
    reads: Arc<Limiter>,
    shap: Arc<Limiter>,
    narrative: Arc<Limiter>,
}

impl RateLimits {
    pub fn new(reads: Policy, shap: Policy, narrative: Policy) -> Self {
        Self {
            reads: Arc::new(Limiter::new(reads)),
            shap: Arc::new(Limiter::new(shap)),
            narrative: Arc::new(Limiter::new(narrative)),
        }
    }

    pub fn check_read(&self, tenant: &str) -> Result<(), ApiError> {
        self.reads.check(tenant)
    }

    pub fn check_shap(&self, tenant: &str) -> Result<(), ApiError> {
        self.shap.check(tenant)
    }

    pub fn check_narrative(&self, tenant: &str) -> Result<(), ApiError> {
        self.narrative.check(tenant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_class_admits_its_burst_then_tells_how_long_to_wait() {
        let limits = RateLimits::new(READS, Policy { burst: 3, ..SHAP }, NARRATIVE);
        for _ in 0..3 {
            limits.check_shap("t").unwrap();
        }
        match limits.check_shap("t") {
            Err(ApiError::TooManyRequests { retry_after_secs }) => assert_eq!(retry_after_secs, 2),
            other => panic!("{other:?}"),
        }
        limits.check_shap("another tenant").unwrap();
        limits.check_narrative("t").unwrap();
    }
}
