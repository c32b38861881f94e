// A trace's explanations: its SHAP values (POST /api/v1/decisions/{id}/shap) as a waterfall
// from the baseline to the raw margin, and its narrative (POST …/narrative). Both are opt-in per
// tenant; when they are off the panel shows the API's reason instead of drawing nothing.

import * as api from "./api.js";
import { waterfall } from "./charts.js";
import { el, fmt, tiles, notice } from "./render.js";

/** SHAP values as rows of a table keyed by feature (`data-entries`: an object, not an array). */
function shapTable(values) {
  const rows = Object.entries(values).sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
  return el("div", { class: "table-wrap" }, el("table", { "data-entries": "/shapValues" },
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Feature"), el("th", { scope: "col", class: "num" }, "φ (logit)"))),
    el("tbody", {}, rows.map(([k, v]) => el("tr", { "data-key": k },
      el("td", {}, k), el("td", { class: "num", "data-field": "value" }, fmt(v)))))));
}

function shapForm(trace, out) {
  const top = trace.result && trace.result.topOffer ? trace.result.topOffer.offerId : "";
  const form = el("form", { class: "controls", "aria-label": "SHAP values" },
    el("label", {}, "Model", el("input", { name: "modelId", required: true })),
    el("label", {}, "Offer", el("input", { name: "offerId", value: top || "" })),
    el("label", {}, "Decimals", el("input", { name: "round", type: "number", min: "0", max: "15", value: "6" })),
    el("label", { class: "wide" }, "Attributes at decision time (JSON)",
      el("textarea", { name: "attributes", required: true }, "{}")),
    el("button", { type: "submit" }, "Compute SHAP values"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = form.elements;
    let attributes;
    try {
      attributes = JSON.parse(f.attributes.value);
    } catch (err) {
      out.replaceChildren(notice("error", `The attributes are not JSON: ${err.message}`));
      return;
    }
    out.dataset.state = "loading";
    try {
      const body = {
        modelId: f.modelId.value.trim(),
        attributes,
        round: Number(f.round.value),
        ...(f.offerId.value.trim() ? { offerId: f.offerId.value.trim() } : {}),
      };
      const r = await api.post(`/api/v1/decisions/${encodeURIComponent(trace.id)}/shap`, body);
      const steps = Object.entries(r.shapValues).map(([label, value]) => ({ label, value }));
      out.replaceChildren(
        tiles("", r, [
          { field: "modelName", label: "Model" },
          { field: "baseline", label: "Baseline" },
          { field: "rawMargin", label: "Raw margin" },
          { label: "Score", value: fmt(1 / (1 + Math.exp(-r.rawMargin))) },
          { field: "additivityResidual", label: "Additivity residual" },
          { field: "featureCount", label: "Features" },
        ]),
        waterfall("SHAP values from the baseline to the raw margin", r.baseline, steps, r.rawMargin),
        shapTable(r.shapValues));
      out.dataset.state = "ok";
    } catch (err) {
      out.replaceChildren(notice("error", err.message));
      out.dataset.state = "error";
    }
  });
  return form;
}

function narrativeForm(trace, out) {
  const form = el("form", { class: "controls", "aria-label": "Narrative" },
    el("label", {}, "Audience", el("select", { name: "mode" },
      ["regulator", "agent", "customer"].map((m) => el("option", { value: m }, m)))),
    el("label", {}, "Fresh", el("input", { name: "noCache", type: "checkbox" })),
    el("button", { type: "submit" }, "Explain this decision"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    out.dataset.state = "loading";
    try {
      const r = await api.post(`/api/v1/decisions/${encodeURIComponent(trace.id)}/narrative`,
        { mode: form.elements.mode.value, noCache: form.elements.noCache.checked });
      out.replaceChildren(
        el("p", { class: "narrative", "data-field": "narrative" }, r.narrative),
        tiles("", r, [
          { field: "mode", label: "Audience" }, { field: "model", label: "Model" }, { field: "cached", label: "Cached" },
          { field: "tokens.input", label: "Tokens in" }, { field: "tokens.output", label: "Tokens out" },
          { field: "createdAt", label: "Created" },
        ]));
      out.dataset.state = "ok";
    } catch (err) {
      out.replaceChildren(notice("error", err.message));
      out.dataset.state = "error";
    }
  });
  return form;
}

/** The explanations panel of one trace. */
export function explainPanel(trace) {
  const shap = el("div", { "data-type": "shap", "data-state": "idle" });
  const story = el("div", { "data-type": "narrative", "data-state": "idle" });
  return el("section", { class: "panel wide", "aria-labelledby": "h-explain" },
    el("header", {}, el("h2", { id: "h-explain" }, "Why this decision")),
    el("p", { class: "notice empty" },
      "SHAP values and narratives are opt-in per tenant (aiAnalyzerSettings.llmExplanationsEnabled); "
      + "raw attributes are not stored with a trace, so SHAP needs the ones the scorer saw."),
    el("h3", {}, "SHAP values"), shapForm(trace, shap), shap,
    el("h3", {}, "Narrative"), narrativeForm(trace, story), story);
}
