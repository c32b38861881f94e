//! Per-tenant rate limits (docs/api.md 5.4), as data: one entry per endpoint class. Limits are per API
//! process (governor keeps its state in memory): N replicas allow N times the rate.

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use super::error::ApiError;

/// An endpoint class and its policy.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub class: &'static str,
    /// Sustained requests per second.
    pub per_second: u32,
    pub burst: u32,
}

/// Dashboard and traces reads: 100/s, burst 200 (`DV_RATE_LIMIT_READS_PER_SEC`, `…_BURST`).
pub const READS: Policy = Policy { class: "reads", per_second: 100, burst: 200 };

#[derive(Clone)]
pub struct RateLimits {
    reads: Arc<DefaultKeyedRateLimiter<String>>,
}

impl RateLimits {
    pub fn new(reads: Policy) -> Self {
        let quota = Quota::per_second(NonZeroU32::new(reads.per_second.max(1)).expect("max(1) is non-zero"))
            .allow_burst(NonZeroU32::new(reads.burst.max(1)).expect("max(1) is non-zero"));
        Self { reads: Arc::new(DefaultKeyedRateLimiter::keyed(quota)) }
    }

    /// Admits one read of `tenant` or answers 429 with the seconds until the next one is allowed.
    pub fn check_read(&self, tenant: &str) -> Result<(), ApiError> {
        self.reads.check_key(&tenant.to_owned()).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            metrics::counter!("api_rate_limited_total", "class" => READS.class).increment(1);
            ApiError::TooManyRequests { retry_after_secs: wait.as_secs_f64().ceil() as u64 }
        })
    }
}
