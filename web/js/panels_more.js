// The rest of the dashboard panels (see panels.js for what a panel is): catalog, policy and
// model views, the trace-based ones with their filters, anomalies and the ingest status.

import { line, bar } from "./charts.js";
import { el, fmt, table, tiles, badge } from "./render.js";

const names = (rows, key = "name") => rows.map((r) => r[key]);

const INGEST = {
  // Not a dashboard type: the ingest status of GET /api/v1/ingest/status, for admins.
  type: "ingest",
  title: "Ingest status",
  wide: true,
  url: () => "/api/v1/ingest/status",
  render: (b) => {
    const lag = (b.partitions || []).reduce((n, p) => n + (p.lag || 0), 0);
    const freshness = b.dataAsOf ? `${fmt(Math.max(0, Math.round((Date.now() - Date.parse(b.dataAsOf)) / 1000)))} s` : "—";
    const dead = Object.entries(b.deadLetters || {}).map(([topic, count]) => ({ topic, count }));
    return [
      tiles("", b, [
        { field: "dataAsOf", label: "Views complete up to" },
        { label: "Freshness", value: freshness },
        ...(b.partitions ? [{ label: "Total lag", value: fmt(lag) }, { field: "brokerReachable", label: "Broker reachable" }] : []),
      ]),
      el("h3", {}, "Dead letters per topic"),
      dead.length ? tiles("/deadLetters", b.deadLetters, dead.map((d) => ({ field: d.topic, label: d.topic })))
        : el("p", { class: "notice empty" }, "No dead letters."),
      b.partitions ? table("/partitions", b.partitions, [
        { field: "topic", label: "Topic" },
        { field: "partition", label: "Partition" },
        { field: "committedOffset", label: "Committed" },
        { field: "highWatermark", label: "High watermark" },
        { field: "lag", label: "Lag" },
        { field: "lastCommitAt", label: "Last commit", cell: (v) => el("time", { datetime: v || "" }, fmt(v)) },
      ], { caption: "Per partition (platform keys only)" }) : null,
    ];
  },
};

export const MORE = [
  {
    type: "selection_frequency",
    title: "Selection frequency",
    wide: true,
    controls: [
      { name: "channelId", label: "Channel" },
      { name: "categoryId", label: "Category" },
      { name: "decisionFlowId", label: "Decision flow" },
    ],
    params: (s) => ({ channelId: s.channelId, categoryId: s.categoryId, decisionFlowId: s.decisionFlowId }),
    render: (b) => [
      tiles("", b, [{ field: "totalTraces", label: "Traces" }, { label: "Offers", value: fmt(b.data.length) }]),
      table("/data", b.data, [
        { field: "offerId", label: "Offer" },
        { field: "offerName", label: "Name" },
        { field: "eligibleCount", label: "Eligible" },
        { field: "scoredCount", label: "Scored" },
        { field: "selectedCount", label: "Selected" },
        { field: "selectionRate", label: "Selection rate" },
        { field: "avgRank", label: "Avg rank" },
        { field: "rankDistribution", label: "Ranks 1–10" },
      ]),
    ],
  },
  {
    type: "why_not_ranked",
    title: "Why not ranked",
    controls: [{ name: "offerId", label: "Offer", list: "offer-ids" }],
    params: (s) => ({ offerId: s.offerId }),
    needs: (s) => (s.offerId ? null : "Choose an offer to see why it was not selected."),
    render: (b) => {
      const m = b.missReasons;
      return [
        tiles("", b, [
          { field: "offerName", label: "Offer" },
          { field: "timesEligible", label: "Eligible" },
          { field: "timesSelected", label: "Selected" },
          { field: "missRate", label: "Miss rate" },
          { field: "avgScore", label: "Avg score" },
          { field: "sampleSize", label: "Traces read" },
        ]),
        bar("Outcomes when eligible", ["outcomes"], [
          { label: "selected", values: [b.timesSelected] },
          { label: "scored too low", values: [m.scoredTooLow] },
          { label: "contact policy", values: [m.filteredByContactPolicy] },
          { label: "qualification", values: [m.filteredByQualification] },
          { label: "not ranked", values: [m.notRanked || 0] },
        ], { stacked: true, horizontal: true }),
        tiles("/missReasons", m, [
          { field: "scoredTooLow", label: "Scored too low" },
          { field: "filteredByContactPolicy", label: "Contact policy" },
          { field: "filteredByQualification", label: "Qualification" },
          { field: "notRanked", label: "Not ranked" },
        ]),
        table("/missReasons/beatenBy", m.beatenBy, [
          { field: "offerId", label: "Beaten by" }, { field: "offerName", label: "Name" }, { field: "count", label: "Times" },
        ]),
        tiles("", b, [{ field: "rankDistribution", label: "Ranks 1–10" }]),
      ];
    },
  },
  {
    type: "score_distribution",
    title: "Score distribution",
    controls: [
      { name: "scoreGroupBy", label: "Group by", options: ["", "channel", "offer", "category"] },
      { name: "filterId", label: "Only" },
    ],
    params: (s) => ({ groupBy: s.scoreGroupBy, filterId: s.filterId }),
    render: (b) => [
      tiles("", b, [{ field: "totalScores", label: "Scores" }, { field: "groupBy", label: "Grouped by" }]),
      bar("Propensity score histogram", names(b.data), [{ label: "scores", values: b.data.map((d) => d.count) }]),
      table("/data", b.data, [{ field: "name", label: "Score" }, { field: "count", label: "Count" }]),
      b.dimensionBuckets.length ? table("/dimensionBuckets", b.dimensionBuckets, [
        { field: "name", label: "Id" }, { field: "dimName", label: "Name" },
        { field: "count", label: "Scores" }, { field: "avgScore", label: "Avg score" },
      ]) : null,
    ],
  },
  {
    type: "model_metrics_trend",
    title: "Model metrics",
    controls: [{ name: "modelId", label: "Model" }],
    params: (s) => ({ modelId: s.modelId }),
    render: (b) => [
      tiles("", b, [{ field: "modelName", label: "Model" }, { field: "modelCount", label: "Models" }]),
      line("AUC per day", names(b.aucTrend), [{ label: "AUC", values: b.aucTrend.map((d) => d.auc) }]),
      table("/aucTrend", b.aucTrend, [{ field: "name", label: "Day" }, { field: "auc", label: "AUC" }]),
      bar("Feature importance", names(b.featureImportance), [{ label: "importance", values: b.featureImportance.map((d) => d.value) }],
        { horizontal: true }),
      table("/featureImportance", b.featureImportance, [{ field: "name", label: "Feature" }, { field: "value", label: "Importance" }]),
    ],
  },
  {
    type: "budget_burn",
    title: "Budget burn",
    render: (b) => [table("/data", b.data, [
      { field: "offerId", label: "Offer" },
      { field: "allocated", label: "Allocated" },
      { field: "spent", label: "Spent" },
      { field: "remaining", label: "Remaining" },
      { field: "burnRate", label: "Burn %" },
    ])],
  },
  {
    type: "attribution_summary",
    title: "Attribution",
    render: (b) => [
      tiles("", b, [{ field: "totalConversions", label: "Conversions" }]),
      table("/data", b.data, [
        { field: "model", label: "Model" },
        { field: "conversions", label: "Conversions" },
        { field: "totalValue", label: "Total value" },
        { field: "avgValue", label: "Average value" },
      ]),
    ],
  },
  {
    type: "policy_impact",
    title: "Policy impact (active suppressions)",
    render: (b) => [
      tiles("", b, [{ field: "totalActive", label: "Active" }]),
      bar("Active suppressions per policy type", names(b.data, "policyType"), [{ label: "active", values: b.data.map((d) => d.count) }]),
      table("/data", b.data, [{ field: "policyType", label: "Policy type" }, { field: "count", label: "Active" }]),
    ],
  },
  {
    type: "anomaly_candidates",
    title: "Anomaly candidates",
    wide: true,
    controls: [{ name: "baselineDays", label: "Baseline days", type: "number" }],
    params: (s) => ({ baselineDays: s.baselineDays }),
    render: (b) => [
      tiles("/period", b.period, [
        { field: "currentDays", label: "Current days" }, { field: "baselineDays", label: "Baseline days" },
        { field: "since", label: "Since" },
        { label: "Critical", value: fmt(b.data.filter((d) => d.severity === "critical").length) },
      ]),
      b.data.length ? table("/data", b.data, [
        { field: "severity", label: "Severity", cell: (v) => badge(v) },
        { field: "metric", label: "Metric" },
        { field: "dimension", label: "Dimension" },
        { field: "dimensionKey", label: "Key" },
        { field: "dimensionName", label: "Name" },
        { field: "baseline", label: "Baseline" },
        { field: "current", label: "Current" },
        { field: "deltaPct", label: "Δ %" },
        { field: "zscore", label: "z" },
      ]) : el("p", { class: "notice empty" }, "No anomalies in this window."),
    ],
  },
  INGEST,
];
