// The dashboard panels, one per type of GET /api/v1/dashboard-data (the rest are in
// panels_more.js). A panel says which parameters it sends (`params`), which of its own controls
// it shows (`controls`: names of URL state keys), and draws an answer (`render`). Every number
// it draws is also in a table or a tile marked with the answer's field (render.js).

import { line, bar } from "./charts.js";
import { el, fmt, table, tiles, percent } from "./render.js";
import { MORE } from "./panels_more.js";

/** The types that take `segmentId` (seed 000). */
export const SEGMENTED = new Set([
  "acceptance_rate", "offer_performance", "offer_performance_grouped", "channel_effectiveness",
  "daily_trend", "revenue_trend", "selection_frequency", "why_not_ranked",
]);

/** The window every windowed type reads; the segment where the type takes one. */
export function common(type, s) {
  const p = { type, days: s.days, asOf: s.asOf };
  if (SEGMENTED.has(type)) p.segmentId = s.segmentId;
  return p;
}

const OFFER_COLUMNS = [
  { field: "offerId", label: "Offer" },
  { field: "name", label: "Name" },
  { field: "impressions", label: "Impressions" },
  { field: "conversions", label: "Conversions" },
  { field: "revenue", label: "Revenue" },
  { field: "conversionRate", label: "Conversion %" },
];

const names = (rows, key = "name") => rows.map((r) => r[key]);

const BASE = [
  {
    type: "summary",
    title: "Summary",
    render: (b) => [tiles("", b, [
      { field: "activeOffers", label: "Active offers" },
      { field: "activeChannels", label: "Active channels" },
      { field: "activeExperiments", label: "Active experiments" },
      { field: "totalJourneys", label: "Journeys" },
      { field: "activeTriggers", label: "Active triggers" },
      { field: "pendingApprovals", label: "Pending approvals" },
    ])],
  },
  {
    type: "funnel",
    title: "Offer funnel",
    render: (b) => [
      bar("Offer funnel stages", names(b.stages, "label"), [{ label: "count", values: b.stages.map((s) => s.count) }],
        { horizontal: true }),
      table("/stages", b.stages, [{ field: "label", label: "Stage" }, { field: "count", label: "Count" }]),
    ],
  },
  {
    type: "daily_trend",
    title: "Daily trend",
    render: (b) => [
      line("Impressions and conversions per day", names(b.data), [
        { label: "impressions", values: b.data.map((d) => d.impressions) },
        { label: "conversions", values: b.data.map((d) => d.conversions), axis: "y2" },
      ]),
      table("/data", b.data, [
        { field: "name", label: "Day" },
        { field: "impressions", label: "Impressions" },
        { field: "conversions", label: "Conversions" },
      ]),
    ],
  },
  {
    type: "revenue_trend",
    title: "Revenue trend",
    render: (b) => [
      tiles("", b, [{ field: "hasRealData", label: "Has data" }]),
      line("Revenue per day", names(b.data), [{ label: "revenue", values: b.data.map((d) => d.revenue) }]),
      table("/data", b.data, [{ field: "name", label: "Day" }, { field: "revenue", label: "Revenue" }]),
    ],
  },
  {
    type: "latency_trend",
    title: "Decision latency (ms)",
    render: (b) => [
      tiles("/overall", b.overall, [
        { field: "count", label: "Traces" }, { field: "p50", label: "p50" }, { field: "p90", label: "p90" },
        { field: "p99", label: "p99" }, { field: "p999", label: "p99.9" }, { field: "max", label: "max" },
      ]),
      line("Latency percentiles per day", names(b.data), [
        { label: "p50", values: b.data.map((d) => d.p50) },
        { label: "p99", values: b.data.map((d) => d.p99) },
      ]),
      table("/data", b.data, [{ field: "name", label: "Day" }, { field: "p50", label: "p50" }, { field: "p99", label: "p99" }]),
    ],
  },
  {
    type: "acceptance_rate",
    title: "Acceptance rate per offer",
    wide: true,
    render: (b) => [
      tiles("", b, [{ field: "total", label: "Offers" }, { field: "period.since", label: "Since" }]),
      table("/data", b.data, [
        { field: "offerId", label: "Offer" },
        { field: "offerName", label: "Name" },
        { field: "impressions", label: "Impressions" },
        { field: "positive", label: "Positive" },
        { field: "negative", label: "Negative" },
        { field: "acceptanceRate", label: "Acceptance rate" },
      ]),
    ],
  },
  {
    type: "offer_performance",
    title: "Offer performance (top 20)",
    wide: true,
    render: (b) => [table("/data", b.data, [
      { field: "offerId", label: "Offer" },
      { field: "name", label: "Name" },
      { field: "priority", label: "Priority" },
      { field: "creativeCount", label: "Creatives" },
      ...OFFER_COLUMNS.slice(2),
    ])],
  },
  {
    type: "offer_performance_grouped",
    title: "Offer performance by group",
    wide: true,
    controls: [{ name: "groupBy", label: "Group by", options: ["channel", "category", "segment"] }],
    params: (s) => ({ groupBy: s.groupBy }),
    render: (b) => [
      tiles("", b, [{ field: "groupBy", label: "Grouped by" }, { label: "Groups", value: fmt(b.groups.length) }]),
      ...b.groups.map((g, i) => [
        el("h3", {}, `${g.groupName} (${g.groupId})`),
        table(`/groups/${i}/offers`, g.offers, OFFER_COLUMNS),
      ]),
    ],
  },
  {
    type: "channel_effectiveness",
    title: "Channel effectiveness",
    render: (b) => [
      bar("Impressions and conversions per channel", names(b.data, "channelName"), [
        { label: "impressions", values: b.data.map((d) => d.impressions) },
        { label: "conversions", values: b.data.map((d) => d.conversions) },
      ]),
      table("/data", b.data, [
        { field: "channelId", label: "Channel" },
        { field: "channelName", label: "Name" },
        { field: "impressions", label: "Impressions" },
        { field: "conversions", label: "Conversions" },
        { field: "effectiveness", label: "Effectiveness %" },
      ]),
    ],
  },
  {
    type: "degraded_scoring",
    title: "Degraded scoring",
    render: (b) => [tiles("", b, [
      { field: "degradedCount", label: "Degraded" },
      { field: "totalCount", label: "Scored requests" },
      { label: "Rate", value: percent(b.degradedCount, b.totalCount) },
      { field: "days", label: "Days" },
    ])],
  },
];

/** Every panel, in page order. */
export const PANELS = [...BASE, ...MORE];
