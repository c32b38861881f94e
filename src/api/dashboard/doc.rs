//! The OpenAPI description of `GET /api/v1/dashboard-data`, derived from the same metadata the
//! dispatch uses (`kind.rs`): the `type` enum is [`DashboardType::NAMES`], each parameter
//! says which types read it from [`DashboardType::params`], and the answer is any of the 18
//! types' response structs, matched exhaustively, so a new type or parameter cannot be served
//! without being documented.

use std::borrow::Cow;

use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{RefOr, Required};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use super::kind::DashboardType;
use super::{
    acceptance_rate, anomaly_candidates, attribution_summary, budget_burn, channel_effectiveness, daily_trend,
    degraded_scoring, funnel, latency_trend, model_metrics_trend, offer_performance, offer_performance_grouped,
    policy_impact, revenue_trend, score_distribution, selection_frequency, summary, why_not_ranked,
};

/// The name and schema of the answer of each type (every one is also collected as a component).
fn answer(t: DashboardType, out: &mut Vec<(String, RefOr<Schema>)>) -> String {
    fn add<T: ToSchema>(out: &mut Vec<(String, RefOr<Schema>)>) -> String {
        T::schemas(out);
        out.push((T::name().into_owned(), T::schema()));
        T::name().into_owned()
    }
    use DashboardType::*;
    match t {
        Summary => add::<summary::Summary>(out),
        AcceptanceRate => add::<acceptance_rate::AcceptanceRate>(out),
        OfferPerformance => add::<offer_performance::OfferPerformance>(out),
        ChannelEffectiveness => add::<channel_effectiveness::ChannelEffectiveness>(out),
        BudgetBurn => add::<budget_burn::BudgetBurn>(out),
        Funnel => add::<funnel::Funnel>(out),
        AttributionSummary => add::<attribution_summary::AttributionSummary>(out),
        DailyTrend => add::<daily_trend::DailyTrend>(out),
        ModelMetricsTrend => add::<model_metrics_trend::ModelMetricsTrend>(out),
        LatencyTrend => add::<latency_trend::LatencyTrend>(out),
        OfferPerformanceGrouped => add::<offer_performance_grouped::Grouped>(out),
        RevenueTrend => add::<revenue_trend::RevenueTrend>(out),
        PolicyImpact => add::<policy_impact::PolicyImpact>(out),
        ScoreDistribution => add::<score_distribution::ScoreDistribution>(out),
        DegradedScoring => add::<degraded_scoring::DegradedScoring>(out),
        SelectionFrequency => add::<selection_frequency::SelectionFrequency>(out),
        AnomalyCandidates => add::<anomaly_candidates::AnomalyCandidates>(out),
        WhyNotRanked => add::<why_not_ranked::WhyNotRanked>(out),
    }
}

/// The schema component of each type's answer, by type name (the tests validate each answer
/// against its own).
pub fn answer_schemas() -> Vec<(&'static str, String)> {
    DashboardType::ALL.iter().map(|t| (t.name(), answer(*t, &mut Vec::new()))).collect()
}

/// `{"data": [], "warning": "…"}`: a segment that does not exist or is not materialized yet,
/// status 200 (seed 000), for the types that take `segmentId`.
#[derive(serde::Serialize, ToSchema)]
pub struct SegmentWarning {
    #[schema(max_items = 0)]
    pub data: Vec<serde_json::Value>,
    pub warning: String,
}

/// The answer of `GET /api/v1/dashboard-data`: the schema of its `type`.
pub struct DashboardAnswer;

impl PartialSchema for DashboardAnswer {
    fn schema() -> RefOr<Schema> {
        let mut any =
            AnyOfBuilder::new().description(Some("The answer of the requested `type` (see each schema's name)"));
        for t in DashboardType::ALL {
            any = any.item(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(answer(t, &mut Vec::new()))));
        }
        any = any.item(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(SegmentWarning::name())));
        RefOr::T(Schema::AnyOf(any.build()))
    }
}

impl ToSchema for DashboardAnswer {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("DashboardAnswer")
    }

    fn schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
        for t in DashboardType::ALL {
            answer(t, out);
        }
        out.push((SegmentWarning::name().into_owned(), SegmentWarning::schema()));
    }
}

/// What each parameter means, and its schema; which types read it comes from `kind.rs`.
fn describe(name: &str) -> (&'static str, Schema) {
    let text = |_| Schema::Object(ObjectBuilder::new().schema_type(Type::String).build());
    let days = |d: &'static str| {
        (d, Schema::Object(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).maximum(Some(365)).build()))
    };
    match name {
        "days" => days("Window in days ending on `asOf` (1–365; default 7)."),
        "baselineDays" => days("Length of the prior window compared against the current one (1–365; default `days`)."),
        "asOf" => (
            "Last day of the window, `YYYY-MM-DD` (UTC), from 1970-01-01 to today + 366 days; default today.",
            Schema::Object(ObjectBuilder::new().schema_type(Type::String).format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Date))).build()),
        ),
        "segmentId" => ("Restrict to customers in this segment; an unknown or unmaterialized segment answers `SegmentWarning`.", text(())),
        "groupBy" => (
            "offer_performance_grouped: channel (default), category or segment; score_distribution: channel, offer or category.",
            Schema::Object(ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["channel", "category", "segment", "offer"])).build()),
        ),
        "filterId" => ("Only scores of this dimension value.", text(())),
        "modelId" => ("Only this model's evaluations.", text(())),
        "channelId" => ("Only decisions made on this channel.", text(())),
        "categoryId" => ("Only offers of this category.", text(())),
        "decisionFlowId" => ("Only decisions of this decision flow.", text(())),
        "offerId" => ("The offer to analyse (required).", text(())),
        _ => ("", text(())),
    }
}

/// The query of `GET /api/v1/dashboard-data`.
pub struct DashboardQuery;

impl IntoParams for DashboardQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let type_schema = ObjectBuilder::new()
            .schema_type(SchemaType::new(Type::String))
            .enum_values(Some(DashboardType::NAMES))
            .default(Some("summary".into()));
        let mut params = vec![ParameterBuilder::new()
            .name("type")
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .description(Some("The dashboard type (default summary)."))
            .schema(Some(type_schema))
            .build()];
        let mut names: Vec<&str> = vec!["days", "asOf"];
        for t in DashboardType::ALL {
            names.extend(t.params().iter().filter(|p| !names.contains(p)).copied().collect::<Vec<_>>());
        }
        for name in names {
            let readers: Vec<&str> = DashboardType::ALL
                .iter()
                .filter(|t| match name {
                    "days" | "asOf" => t.reads_window(),
                    _ => t.params().contains(&name),
                })
                .map(|t| t.name())
                .collect();
            let (text, schema) = describe(name);
            let required = name == "offerId";
            params.push(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Query)
                    .required(Required::False)
                    .description(Some(format!(
                        "{text} Read by: {}.{}",
                        readers.join(", "),
                        if required { " Required by why_not_ranked." } else { "" }
                    )))
                    .schema(Some(schema))
                    .build(),
            );
        }
        params
    }
}
