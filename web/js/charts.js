// Charts, drawn by the vendored Chart.js (web/vendor/, loaded before the modules). A chart is
// always paired with a table of the same numbers: the chart is for the eye, the table for
// screen readers, copying and the browser test. Animations are off: a poll redraws in place.

import { el } from "./render.js";

const PALETTE = ["#1f6feb", "#d4731c", "#2da44e", "#8250df", "#cf222e", "#0a7a8a", "#9a6700", "#6e7781"];

/** A canvas in a sized box; `describe` is its accessible name. */
function frame(describe, build) {
  const canvas = el("canvas", { role: "img", "aria-label": describe });
  const box = el("div", { class: "chart" }, canvas);
  // Chart.js needs the canvas in the document to size it: build once it is attached.
  queueMicrotask(() => {
    if (typeof Chart === "undefined") {
      box.replaceChildren(el("p", { class: "notice empty" }, "The chart library did not load."));
      return;
    }
    // eslint-disable-next-line no-undef
    new Chart(canvas, build());
  });
  return box;
}

const BASE = {
  animation: false,
  responsive: true,
  maintainAspectRatio: false,
  interaction: { mode: "index", intersect: false },
  plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
};

function datasets(series, extra = {}) {
  return series.map((s, i) => ({
    label: s.label,
    data: s.values,
    borderColor: PALETTE[i % PALETTE.length],
    backgroundColor: PALETTE[i % PALETTE.length],
    borderWidth: 2,
    pointRadius: 2,
    yAxisID: s.axis || "y",
    ...extra,
  }));
}

/** Lines over `labels`; a series with `axis: "y2"` is drawn against a right-hand axis. */
export function line(describe, labels, series) {
  const twoAxes = series.some((s) => s.axis === "y2");
  return frame(describe, () => ({
    type: "line",
    data: { labels, datasets: datasets(series) },
    options: {
      ...BASE,
      scales: {
        y: { beginAtZero: true },
        ...(twoAxes ? { y2: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false } } } : {}),
      },
    },
  }));
}

/** Bars over `labels`, side by side, stacked (`stacked`) or along the y axis (`horizontal`). */
export function bar(describe, labels, series, { stacked = false, horizontal = false } = {}) {
  return frame(describe, () => ({
    type: "bar",
    data: { labels, datasets: datasets(series, { borderWidth: 0 }) },
    options: {
      ...BASE,
      indexAxis: horizontal ? "y" : "x",
      plugins: { ...BASE.plugins, legend: { ...BASE.plugins.legend, display: series.length > 1 } },
      scales: { x: { stacked, beginAtZero: true }, y: { stacked, beginAtZero: true } },
    },
  }));
}

/**
 * A waterfall: from `start` each step adds its value (a floating bar from the running total to
 * the next), ending at `end`. Used for SHAP values: baseline + Σ φ = raw margin.
 */
export function waterfall(describe, start, steps, end) {
  const labels = ["baseline", ...steps.map((s) => s.label), "raw margin"];
  let at = start;
  const bars = [[0, start]];
  const colors = ["#6e7781"];
  for (const s of steps) {
    bars.push([at, at + s.value]);
    colors.push(s.value >= 0 ? "#cf222e" : "#1f6feb");
    at += s.value;
  }
  bars.push([0, end]);
  colors.push("#6e7781");
  return frame(describe, () => ({
    type: "bar",
    data: { labels, datasets: [{ label: "contribution", data: bars, backgroundColor: colors, borderWidth: 0 }] },
    options: { ...BASE, indexAxis: "y", plugins: { legend: { display: false } } },
  }));
}
