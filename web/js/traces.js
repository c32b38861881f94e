// The traces browser: GET /api/v1/decision-traces with its filters and paging, one trace's
// pipeline as a funnel with its scoring, selection, qualification and contact-policy detail,
// and the trace's SHAP values and narrative (explain.js).

import * as api from "./api.js";
import * as state from "./state.js";
import { bar } from "./charts.js";
import { el, fmt, table, tiles, notice } from "./render.js";
import { explainPanel } from "./explain.js";

const LIMIT = 50;

function filters(s, container) {
  const form = el("form", { class: "controls", "aria-label": "Trace filters" },
    el("label", {}, "Customer", el("input", { name: "customerId", value: s.customerId })),
    el("label", {}, "Request", el("input", { name: "requestId", value: s.requestId })),
    el("button", { type: "submit" }, "Search"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const next = state.update({
      customerId: form.elements.customerId.value.trim(),
      requestId: form.elements.requestId.value.trim(),
      offset: "0",
      trace: "",
    });
    mountTraces(container, next);
  });
  return form;
}

/** Draws the browser for state `s` into `container`. */
export async function mountTraces(container, s) {
  const list = el("section", { class: "panel wide", "data-type": "traces", "data-state": "loading", "aria-labelledby": "h-traces" },
    el("header", {}, el("h2", { id: "h-traces" }, "Decision traces")));
  const detail = el("div", { id: "trace-detail" });
  container.replaceChildren(filters(s, container), list, detail);
  const offset = Math.max(0, Number.parseInt(s.offset, 10) || 0);
  const url = `/api/v1/decision-traces?${state.query({ customerId: s.customerId, requestId: s.requestId, limit: LIMIT, offset })}`;
  list.dataset.query = url;
  try {
    const { body } = await api.get(url);
    const page = (to) => () => mountTraces(container, state.update({ offset: String(to), trace: "" }));
    const last = Math.min(offset + body.traces.length, body.total);
    const selected = body.traces.findIndex((t) => t.id === s.trace);
    list.append(
      ...(body.traces.length
        ? table("/traces", body.traces, [
          { field: "id", label: "Trace" },
          { field: "customerId", label: "Customer" },
          { field: "decisionFlowKey", label: "Flow" },
          { field: "result.count", label: "Offers" },
          { field: "result.topOffer.offerId", label: "Top offer" },
          { field: "totalDurationMs", label: "ms" },
          { field: "createdAt", label: "Created", cell: (v) => el("time", { datetime: v }, fmt(v)) },
        ], { onRow: (t) => mountTraces(container, state.update({ trace: t.id })), selected })
        : [notice("empty", "No traces match (is tracing enabled for this tenant?).")]),
      el("nav", { class: "pager", "aria-label": "Pages" },
        el("button", { type: "button", class: "secondary", disabled: offset === 0, onclick: page(Math.max(0, offset - LIMIT)) }, "Previous"),
        el("span", { "data-field": "total" }, body.total ? `${fmt(offset + 1)}–${fmt(last)} of ${fmt(body.total)}` : "0 traces"),
        el("button", { type: "button", class: "secondary", disabled: last >= body.total, onclick: page(offset + LIMIT) }, "Next")),
    );
    list.dataset.state = "ok";
  } catch (err) {
    list.append(notice("error", err.message));
    list.dataset.state = "error";
  }
  if (s.trace) showTrace(detail, s.trace);
}

async function showTrace(container, id) {
  const section = el("section", { class: "panel wide", "data-type": "trace", "data-state": "loading", "aria-labelledby": "h-trace" },
    el("header", {}, el("h2", { id: "h-trace" }, `Trace ${id}`)));
  container.replaceChildren(section);
  const url = `/api/v1/decision-traces/${encodeURIComponent(id)}`;
  section.dataset.query = url;
  let t;
  try {
    t = (await api.get(url)).body;
  } catch (err) {
    section.append(notice("error", err.message));
    section.dataset.state = "error";
    return;
  }
  const stages = t.pipeline || [];
  section.append(
    tiles("", t, [
      { field: "customerId", label: "Customer" },
      { field: "requestId", label: "Request" },
      { field: "decisionFlowKey", label: "Flow" },
      { field: "totalDurationMs", label: "Total ms" },
      { field: "result.count", label: "Offers returned" },
      { field: "result.topOffer.offerId", label: "Top offer" },
      { field: "result.topOffer.score", label: "Top score" },
      { field: "createdAt", label: "Created" },
    ]),
    el("h3", {}, "Pipeline"),
    bar("Candidates entering and passing each stage", stages.map((st) => st.stage), [
      { label: "candidates", values: stages.map((st) => st.candidates ?? null) },
      { label: "passed", values: stages.map((st) => st.passed ?? null) },
    ], { horizontal: true }),
    ...table("/pipeline", stages, [
      { field: "stage", label: "Stage" },
      { field: "candidates", label: "Candidates" },
      { field: "passed", label: "Passed" },
      { field: "topScore", label: "Top score" },
      { field: "method", label: "Method" },
      { field: "durationMs", label: "ms" },
    ]),
    ...detailTables(t),
  );
  section.dataset.state = "ok";
  container.append(explainPanel(t));
}

function detailTables(t) {
  const out = [];
  const add = (key, title, columns) => {
    if (Array.isArray(t[key]) && t[key].length) out.push(el("h3", {}, title), ...table(`/${key}`, t[key], columns));
  };
  add("selectedOffers", "Selected offers", [{ field: "rank", label: "Rank" }, { field: "offerId", label: "Offer" }, { field: "score", label: "Score" }]);
  add("scoringResults", "Scoring", [{ field: "rank", label: "Rank" }, { field: "offerId", label: "Offer" }, { field: "score", label: "Score" }]);
  add("qualificationResults", "Qualification", [
    { field: "offerId", label: "Offer" }, { field: "passed", label: "Passed" },
    { field: "reason", label: "Reason" }, { field: "ruleId", label: "Rule" },
  ]);
  add("contactPolicyResults", "Contact policy", [
    { field: "offerId", label: "Offer" }, { field: "blocked", label: "Blocked" },
    { field: "reason", label: "Reason" }, { field: "policyId", label: "Policy" },
  ]);
  return out;
}
