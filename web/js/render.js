// DOM building blocks of the panels: numbers formatted one way everywhere, tables and tiles
// that say which part of the API's answer they show.
//
// Every table is marked `data-rows="<JSON pointer of the array it lists>"` and each of its
// cells `data-field="<the row's field>"`; every group of tiles `data-object="<pointer>"` and
// each value `data-field`. Screen readers get real tables next to the charts, and the browser
// test reads the same marks to compare what the page shows with what the API answered.

/** An element with attributes (`on*` functions become listeners) and children. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined && c !== false) node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

const INTEGER = new Intl.NumberFormat("en-US");
const DECIMAL = new Intl.NumberFormat("en-US", { maximumFractionDigits: 4 });

/**
 * How a value reads on the page: integers grouped ("1,250"), other numbers to 4 decimals,
 * lists joined by " · ", missing values as "—".
 */
export function fmt(v) {
  if (v === null || v === undefined) return "—";
  if (typeof v === "number") return Number.isInteger(v) ? INTEGER.format(v) : DECIMAL.format(v);
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (Array.isArray(v)) return v.map(fmt).join(" · ");
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

/** A field of `row` by a dotted path ("result.topOffer.offerId"). */
export function field(row, path) {
  return path.split(".").reduce((o, k) => (o === null || o === undefined ? undefined : o[k]), row);
}

/** A time as the reader's local date and time, with the ISO value in `title`. */
export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/**
 * A table of `rows` (the array at `pointer` of the answer), and a notice when it has none, as
 * a list of nodes. `columns`: { field, label, cell? } where `cell(value, row)` may return a
 * node; its text must still be `fmt(value)`.
 */
export function table(pointer, rows, columns, { caption, onRow, selected } = {}) {
  const numeric = columns.map((c) => rows.some((r) => typeof field(r, c.field) === "number"));
  const head = el("tr", {}, columns.map((c, i) =>
    el("th", { scope: "col", "data-field": c.field, class: numeric[i] ? "num" : null }, c.label)));
  const body = rows.map((r, ri) => el("tr", {
    tabindex: onRow ? "0" : null,
    "aria-selected": onRow ? String(selected === ri) : null,
    onclick: onRow ? () => onRow(r, ri) : null,
    onkeydown: onRow ? (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); onRow(r, ri); } } : null,
  }, columns.map((c, i) => {
    const v = field(r, c.field);
    return el("td", { "data-field": c.field, class: numeric[i] ? "num" : null }, c.cell ? c.cell(v, r) : fmt(v));
  })));
  const wrap = el("div", { class: "table-wrap" },
    el("table", { "data-rows": pointer, class: onRow ? "trace-list" : null },
      caption ? el("caption", {}, caption) : null, el("thead", {}, head), el("tbody", {}, body)));
  return rows.length ? [wrap] : [wrap, el("p", { class: "notice empty" }, "No rows for these parameters.")];
}

/** Tiles of `obj` (the object at `pointer`): [{ field, label }] or [{ label, value }] (derived). */
export function tiles(pointer, obj, items) {
  return el("dl", { class: "tiles", "data-object": pointer }, items.map((t) => el("div", {},
    el("dt", {}, t.label),
    t.field !== undefined
      ? el("dd", { "data-field": t.field, class: kind(field(obj, t.field)) }, fmt(field(obj, t.field)))
      : el("dd", {}, t.value))));
}

/** Long texts (times, names, lists) read smaller than the figures in a tile. */
function kind(v) {
  return typeof v === "number" || typeof v === "boolean" || v === null || v === undefined ? null : "text";
}

export function notice(kind, text) {
  return el("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

/** A rate shown beside its parts (derived, so not marked as an answer's field). */
export function percent(part, whole) {
  return whole ? `${DECIMAL.format((100 * part) / whole)} %` : "—";
}

export function badge(severity) {
  return el("span", { class: `badge ${severity}` }, fmt(severity));
}
