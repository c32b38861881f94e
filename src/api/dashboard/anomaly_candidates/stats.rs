//! The statistics of `anomaly_candidates` (docs/dashboard-types.md 5.2), pure: proportions by a two-proportion z
//! test, revenue by the standard error of the daily mean, severity as the larger of the z
//! class and the percent class. Classification uses unrounded values.

use serde::Serialize;

use crate::api::dashboard::format::round;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = AnomalySeverity)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// Minimum trials on each side for a proportion test.
pub const MIN_N: i64 = 30;

/// (baseline, current, deltaPct, z) of a proportion metric, or None when skipped.
pub fn proportion(x1: i64, n1: i64, x0: i64, n0: i64) -> Option<(f64, f64, Option<f64>, Option<f64>)> {
    if n1 < MIN_N || n0 < MIN_N {
        return None;
    }
    let (p1, p0) = (x1 as f64 / n1 as f64, x0 as f64 / n0 as f64);
    let p = (x1 + x0) as f64 / (n1 + n0) as f64;
    let den = (p * (1.0 - p) * (1.0 / n1 as f64 + 1.0 / n0 as f64)).sqrt();
    let z = (den > 0.0).then(|| (p1 - p0) / den);
    Some((p0, p1, delta_pct(p0, p1), z))
}

/// The daily revenue totals of a window, in micro-units: their sum over its days (days without
/// revenue count as 0), and for the baseline `b · Σx² − (Σx)²`, which PostgreSQL computes
/// exactly (numeric) from the running sums of the totals and of their squares, so that a
/// constant series has no deviation at all (the rounding of a two-pass mean would leave one).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DailyRevenue {
    pub current_sum: f64,
    pub current_days: i64,
    pub baseline_sum: f64,
    pub baseline_days: i64,
    pub baseline_spread: f64,
}

/// Revenue: mean daily revenue of each window (currency units) and the z of the current mean
/// against the baseline's, by the standard error of the daily mean.
pub fn revenue(r: DailyRevenue) -> Option<(f64, f64, Option<f64>, Option<f64>)> {
    let mean = |sum: f64, days: i64| if days <= 0 { 0.0 } else { sum / 1e6 / days as f64 };
    let (mu1, mu0) = (mean(r.current_sum, r.current_days), mean(r.baseline_sum, r.baseline_days));
    if mu1 == 0.0 && mu0 == 0.0 {
        return None;
    }
    let b = r.baseline_days;
    let z = if b >= 2 {
        // Sample variance (b − 1 degrees of freedom), from micro-units² to units².
        let s0 = (r.baseline_spread.max(0.0) / (b as f64 * (b - 1) as f64)).sqrt() / 1e6;
        let se = s0 / (r.current_days as f64).sqrt();
        (se > 0.0).then(|| (mu1 - mu0) / se)
    } else {
        None
    };
    Some((mu0, mu1, delta_pct(mu0, mu1), z))
}

fn delta_pct(baseline: f64, current: f64) -> Option<f64> {
    (baseline != 0.0).then(|| (current - baseline) / baseline * 100.0)
}

/// The larger of the z class and the percent class; a null counts as 0.
pub fn severity(delta_pct: Option<f64>, z: Option<f64>) -> Option<Severity> {
    let class = |v: f64, info: f64, warning: f64, critical: f64| {
        let v = v.abs();
        if v >= critical {
            Some(Severity::Critical)
        } else if v >= warning {
            Some(Severity::Warning)
        } else if v >= info {
            Some(Severity::Info)
        } else {
            None
        }
    };
    class(z.unwrap_or(0.0), 2.0, 3.0, 4.0).max(class(delta_pct.unwrap_or(0.0), 15.0, 30.0, 50.0))
}

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = AnomalyCandidate)]
pub struct Candidate {
    pub metric: &'static str,
    pub dimension: &'static str,
    pub dimension_key: Option<String>,
    pub dimension_name: Option<String>,
    pub baseline: f64,
    pub current: f64,
    pub delta_pct: Option<f64>,
    pub zscore: Option<f64>,
    pub severity: Severity,
    #[serde(skip)]
    pub abs_z: f64,
}

/// A candidate when the figures classify; values rounded for the answer (4 decimals for
/// rates, 2 for revenue; deltaPct and zscore 1 decimal).
pub fn candidate(
    metric: &'static str,
    dimension: &'static str,
    key: Option<(String, String)>,
    figures: Option<(f64, f64, Option<f64>, Option<f64>)>,
) -> Option<Candidate> {
    let (baseline, current, delta, z) = figures?;
    let severity = severity(delta, z)?;
    let decimals = if metric == "revenue" { 2 } else { 4 };
    let (dimension_key, dimension_name) = match key {
        Some((k, n)) => (Some(k), Some(n)),
        None => (None, None),
    };
    Some(Candidate {
        metric,
        dimension,
        dimension_key,
        dimension_name,
        baseline: round(baseline, decimals),
        current: round(current, decimals),
        delta_pct: delta.map(|d| round(d, 1)),
        zscore: z.map(|z| round(z, 1)),
        severity,
        abs_z: z.map_or(0.0, f64::abs),
    })
}

/// Critical first, then |z| desc, then metric, dimension and key (deterministic ties).
pub fn rank(c: &mut [Candidate]) {
    c.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.abs_z.total_cmp(&a.abs_z))
            .then(a.metric.cmp(b.metric))
            .then(a.dimension.cmp(b.dimension))
            .then_with(|| a.dimension_key.cmp(&b.dimension_key))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proportions_need_thirty_trials_each_side() {
        assert!(proportion(5, 29, 5, 100).is_none());
        let (p0, p1, d, z) = proportion(20, 100, 10, 100).unwrap();
        assert_eq!((p0, p1), (0.1, 0.2));
        assert!((d.unwrap() - 100.0).abs() < 1e-9);
        // pooled p = 0.15: z = 0.1 / sqrt(0.15 * 0.85 * 0.02)
        assert!((z.unwrap() - 0.1 / (0.15f64 * 0.85 * 0.02).sqrt()).abs() < 1e-12);
        assert_eq!(proportion(0, 100, 0, 100).unwrap().3, None); // p(1-p) = 0: z is null
    }

    #[test]
    fn severity_is_the_larger_class_and_nulls_count_as_zero() {
        assert_eq!(severity(Some(10.0), Some(2.5)), Some(Severity::Info));
        assert_eq!(severity(Some(-35.0), Some(1.0)), Some(Severity::Warning));
        assert_eq!(severity(None, Some(4.2)), Some(Severity::Critical));
        assert_eq!(severity(Some(14.9), None), None);
    }

    #[test]
    fn revenue_uses_the_standard_error_of_the_daily_mean() {
        // Baseline days 10, 20, 30 (units); current days 30, 30.
        let m = 1e6;
        let (sum0, sq0) = (60.0 * m, (100.0 + 400.0 + 900.0) * m * m);
        let r = DailyRevenue {
            current_sum: 60.0 * m,
            current_days: 2,
            baseline_sum: sum0,
            baseline_days: 3,
            baseline_spread: 3.0 * sq0 - sum0 * sum0,
        };
        let (mu0, mu1, d, z) = revenue(r).unwrap();
        assert_eq!((mu0, mu1), (20.0, 30.0));
        assert_eq!(d, Some(50.0));
        assert!((z.unwrap() - 10.0 / (10.0 / 2f64.sqrt())).abs() < 1e-12);
        let zero = DailyRevenue {
            current_sum: 0.0,
            current_days: 1,
            baseline_sum: 0.0,
            baseline_days: 2,
            baseline_spread: 0.0,
        };
        assert!(revenue(zero).is_none());
        // B < 2: no deviation; a constant baseline: none either.
        let one = DailyRevenue { current_sum: 5.0 * m, baseline_sum: 4.0 * m, baseline_days: 1, ..zero };
        assert_eq!(revenue(one).unwrap().3, None);
        let flat = DailyRevenue { current_sum: 5.0 * m, baseline_sum: 8.0 * m, ..zero };
        assert_eq!(revenue(flat).unwrap().3, None);
    }
}
