//! The 18 documented dashboard types (docs/dashboard-types.md, docs/dashboard-types.md) and what each
//! reads: an enum, so that the dispatch is an exhaustive `match` and a new type cannot be
//! half-added.

use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DashboardType {
    Summary,
    AcceptanceRate,
    OfferPerformance,
    ChannelEffectiveness,
    BudgetBurn,
    Funnel,
    AttributionSummary,
    DailyTrend,
    ModelMetricsTrend,
    LatencyTrend,
    OfferPerformanceGrouped,
    RevenueTrend,
    PolicyImpact,
    ScoreDistribution,
    DegradedScoring,
    SelectionFrequency,
    AnomalyCandidates,
    WhyNotRanked,
}

use DashboardType::*;

impl DashboardType {
    /// Every type, in the documented order.
    pub const ALL: [DashboardType; 18] = [
        Summary,
        AcceptanceRate,
        OfferPerformance,
        ChannelEffectiveness,
        BudgetBurn,
        Funnel,
        AttributionSummary,
        DailyTrend,
        ModelMetricsTrend,
        LatencyTrend,
        OfferPerformanceGrouped,
        RevenueTrend,
        PolicyImpact,
        ScoreDistribution,
        DegradedScoring,
        SelectionFrequency,
        AnomalyCandidates,
        WhyNotRanked,
    ];

    /// Every type's name, in the documented order.
    pub const NAMES: [&'static str; 18] = {
        let mut out = [""; 18];
        let mut i = 0;
        while i < out.len() {
            out[i] = DashboardType::ALL[i].name();
            i += 1;
        }
        out
    };

    /// The `type` parameter's value.
    pub const fn name(self) -> &'static str {
        match self {
            Summary => "summary",
            AcceptanceRate => "acceptance_rate",
            OfferPerformance => "offer_performance",
            ChannelEffectiveness => "channel_effectiveness",
            BudgetBurn => "budget_burn",
            Funnel => "funnel",
            AttributionSummary => "attribution_summary",
            DailyTrend => "daily_trend",
            ModelMetricsTrend => "model_metrics_trend",
            LatencyTrend => "latency_trend",
            OfferPerformanceGrouped => "offer_performance_grouped",
            RevenueTrend => "revenue_trend",
            PolicyImpact => "policy_impact",
            ScoreDistribution => "score_distribution",
            DegradedScoring => "degraded_scoring",
            SelectionFrequency => "selection_frequency",
            AnomalyCandidates => "anomaly_candidates",
            WhyNotRanked => "why_not_ranked",
        }
    }

    /// Whether it reads the window (`days`, `asOf`). Catalog counts and the suppressions
    /// active now do not (`days` is ignored, docs/dashboard-types.md 5.1).
    pub fn reads_window(self) -> bool {
        !matches!(self, Summary | BudgetBurn | Funnel | PolicyImpact)
    }

    /// The parameters it reads besides the window: what keys its cache entries.
    pub fn params(self) -> &'static [&'static str] {
        match self {
            Summary | BudgetBurn | Funnel | PolicyImpact => &[],
            AttributionSummary | LatencyTrend | DegradedScoring => &[],
            AcceptanceRate | OfferPerformance | ChannelEffectiveness | DailyTrend | RevenueTrend => &["segmentId"],
            ModelMetricsTrend => &["modelId"],
            OfferPerformanceGrouped => &["groupBy", "segmentId"],
            ScoreDistribution => &["groupBy", "filterId"],
            SelectionFrequency => &["segmentId", "channelId", "decisionFlowId", "categoryId"],
            AnomalyCandidates => &["baselineDays"],
            WhyNotRanked => &["offerId", "segmentId"],
        }
    }
}

impl FromStr for DashboardType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        DashboardType::ALL.into_iter().find(|t| t.name() == s).ok_or_else(|| {
            let names: Vec<&str> = DashboardType::ALL.iter().map(|t| t.name()).collect();
            format!("unknown type {s:?}; valid types are: {}", names.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_are_unique() {
        for t in DashboardType::ALL {
            assert_eq!(t.name().parse::<DashboardType>(), Ok(t));
        }
        let err = "nope".parse::<DashboardType>().unwrap_err();
        assert!(err.contains("summary") && err.contains("why_not_ranked"), "{err}");
    }
}
