// The view's state lives in the URL's query string, so a view can be bookmarked and shared:
// every control reads its value from here and writes it back (history.pushState, no reload;
// Back and Forward restore the previous view). Values equal to their default stay out of the URL.

export const DEFAULTS = Object.freeze({
  view: "dashboards",
  // The dashboards: the window and segment of every panel, then each panel's own parameters.
  days: "7",
  asOf: "",
  segmentId: "",
  groupBy: "channel",
  scoreGroupBy: "",
  filterId: "",
  offerId: "",
  channelId: "",
  categoryId: "",
  decisionFlowId: "",
  modelId: "",
  baselineDays: "",
  // The traces browser.
  customerId: "",
  requestId: "",
  offset: "0",
  trace: "",
});

export function read() {
  const q = new URLSearchParams(location.search);
  const state = { ...DEFAULTS };
  for (const k of Object.keys(DEFAULTS)) {
    if (q.has(k)) state[k] = q.get(k);
  }
  return state;
}

/** Merge `changes` into the URL's state; a new history entry unless `replace`. */
export function update(changes, { replace = false } = {}) {
  const next = { ...read(), ...changes };
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(next)) {
    if (v !== "" && v !== undefined && v !== null && v !== DEFAULTS[k]) q.set(k, v);
  }
  const search = q.toString() ? `?${q}` : "";
  if (search !== location.search) {
    (replace ? history.replaceState : history.pushState).call(history, null, "", search || location.pathname);
  }
  return next;
}

/** A query string from `params`, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== "" && v !== undefined && v !== null) q.set(k, v);
  }
  return q.toString();
}
