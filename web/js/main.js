// The page: sign-in, the dashboards (every panel fetched once, then the visible ones polled
// with If-None-Match) and the traces browser. The URL holds the state (state.js).

import * as api from "./api.js";
import * as state from "./state.js";
import { PANELS, common } from "./panels.js";
import { el, notice, when } from "./render.js";
import { mountTraces } from "./traces.js";

/** How often a visible panel asks whether its answer changed (a 304 when it did not). */
const POLL_MS = 5000;

const $ = (id) => document.getElementById(id);
const views = { dashboards: $("dashboards"), traces: $("traces") };
let panels = [];
let poller = null;
let newestAsOf = null;

function showSignIn(message = "") {
  clearInterval(poller);
  for (const v of [...Object.values(views), $("views"), $("who")]) v.hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message;
  $("as-of").textContent = "";
  $("login-key").focus();
}

$("login-form").addEventListener("submit", (e) => {
  e.preventDefault();
  api.signIn($("login-key").value.trim(), $("login-tenant").value.trim());
  $("login-key").value = "";
  start();
});

$("sign-out").addEventListener("click", () => {
  api.signOut();
  showSignIn();
});

/** A refusal of the key itself sends the reader back to sign in, with the API's reason. */
function signInAgainOn(err) {
  if (err instanceof api.ApiError && err.status === 401) {
    api.signOut();
    showSignIn(`The key was not accepted: ${err.message}`);
    return true;
  }
  return false;
}

function start() {
  const s = api.session();
  if (!s) return showSignIn();
  $("login").hidden = true;
  $("views").hidden = false;
  $("who").hidden = false;
  $("who-tenant").textContent = s.tenant ? `tenant ${s.tenant}` : "platform key";
  if (!panels.length) buildPanels();
  show(state.read());
  clearInterval(poller);
  poller = setInterval(poll, POLL_MS);
}

function show(s) {
  for (const [name, node] of Object.entries(views)) node.hidden = name !== s.view;
  for (const a of $("views").querySelectorAll("a[data-view]")) {
    if (a.dataset.view === s.view) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (s.view === "traces") {
    mountTraces(views.traces, s);
  } else {
    fillControls(s);
    for (const p of panels) refresh(p, s);
  }
}

for (const a of $("views").querySelectorAll("a[data-view]")) {
  a.addEventListener("click", (e) => {
    e.preventDefault();
    show(state.update({ view: a.dataset.view }));
  });
}
window.addEventListener("popstate", () => api.session() && show(state.read()));

// --- The dashboards -------------------------------------------------------------------

function fillControls(s) {
  const form = $("controls");
  for (const name of ["days", "asOf", "segmentId"]) form.elements[name].value = s[name];
  for (const p of panels) {
    for (const input of p.node.querySelectorAll("[data-state-key]")) input.value = s[input.dataset.stateKey];
  }
}

$("controls").addEventListener("submit", (e) => {
  e.preventDefault();
  const f = e.target.elements;
  const s = state.update({ days: f.days.value, asOf: f.asOf.value, segmentId: f.segmentId.value.trim() });
  for (const p of panels) refresh(p, s);
});

function control(def, c) {
  const attrs = { name: c.name, "data-state-key": c.name, list: c.list };
  const input = c.options
    ? el("select", attrs, c.options.map((o) => el("option", { value: o }, o || "none")))
    : el("input", { ...attrs, type: c.type || "text", min: c.type === "number" ? "1" : null, max: c.type === "number" ? "365" : null });
  input.addEventListener("change", () => {
    const s = state.update({ [c.name]: input.value.trim() });
    refresh(panels.find((p) => p.def === def), s);
  });
  return el("label", {}, c.label, input);
}

function buildPanels() {
  const grid = $("panels");
  const seen = new IntersectionObserver((entries) => {
    for (const e of entries) {
      const p = panels.find((q) => q.node === e.target);
      p.visible = e.isIntersecting;
      // Scrolled back into view after missing polls: ask now rather than at the next tick.
      if (p.visible && Date.now() - p.askedAt > POLL_MS && api.session()) refresh(p, state.read(), true);
    }
  });
  panels = PANELS.map((def) => {
    const body = el("div", { class: "panel-body" });
    const foot = el("footer", {});
    const node = el("section", { class: `panel${def.wide ? " wide" : ""}`, "data-type": def.type, "data-state": "loading", "aria-labelledby": `h-${def.type}` },
      el("header", {}, el("h2", { id: `h-${def.type}` }, def.title),
        def.controls ? el("div", { class: "panel-controls" }, def.controls.map((c) => control(def, c))) : null),
      body, foot);
    grid.append(node);
    seen.observe(node);
    return { def, node, body, foot, visible: true, busy: 0, url: null, askedAt: 0 };
  });
}

function url(def, s) {
  if (def.url) return def.url(s);
  return `/api/v1/dashboard-data?${state.query({ ...common(def.type, s), ...(def.params ? def.params(s) : {}) })}`;
}

function draw(p, nodes, kind) {
  for (const c of p.body.querySelectorAll("canvas")) {
    // eslint-disable-next-line no-undef
    if (typeof Chart !== "undefined") Chart.getChart(c)?.destroy();
  }
  p.body.replaceChildren(...nodes.flat(Infinity).filter(Boolean));
  p.node.dataset.state = kind;
}

/** Fetch and draw a panel's answer; a poll (`polling`) skips a panel still waiting for one. */
async function refresh(p, s = state.read(), polling = false) {
  if (!p || (polling && p.busy)) return;
  const reason = p.def.needs && p.def.needs(s);
  const target = url(p.def, s);
  p.node.dataset.query = target;
  if (reason) {
    p.url = null;
    return draw(p, [notice("empty", reason)], "idle");
  }
  // A new question (not a poll of the same one) shows as loading until its answer is drawn.
  if (target !== p.url) p.node.dataset.state = "loading";
  p.busy += 1;
  try {
    const answer = await api.get(target);
    p.askedAt = Date.now();
    // A newer request of this panel (the reader changed a control meanwhile) wins.
    if (p.node.dataset.query !== target) return;
    p.foot.textContent = answer.asOf ? `Data complete up to ${when(answer.asOf)}` : "";
    noteAsOf(answer.asOf);
    if (!answer.changed && p.url === target && p.node.dataset.state !== "error") return;
    p.url = target;
    p.node.dataset.etag = answer.etag || "";
    const b = answer.body;
    if (b && b.warning) return draw(p, [notice("warning", b.warning)], "warning");
    offerChoices(b);
    draw(p, p.def.render(b), "ok");
  } catch (err) {
    if (signInAgainOn(err)) return;
    p.url = null;
    const message = err instanceof api.ApiError
      ? messageFor(err)
      : `The request failed: ${err.message}`;
    draw(p, [notice("error", message)], "error");
  } finally {
    p.busy -= 1;
  }
}

function messageFor(err) {
  if (err.status === 403) return `Not allowed for this key: ${err.message}`;
  if (err.status === 429 || err.status === 503) {
    return `${err.message} (the service asks to retry${err.retryAfter ? ` in ${err.retryAfter} s` : " later"}; the next poll will)`;
  }
  return `${err.status}: ${err.message}`;
}

function noteAsOf(asOf) {
  if (!asOf || (newestAsOf && asOf <= newestAsOf)) return;
  newestAsOf = asOf;
  $("as-of").textContent = `Data complete up to ${when(asOf)}`;
  $("as-of").title = asOf;
}

/** Offers seen in answers, offered as choices for why_not_ranked. */
function offerChoices(b) {
  const list = $("offer-ids");
  if (!b || !Array.isArray(b.data) || list.childElementCount >= 500) return;
  const have = new Set([...list.options].map((o) => o.value));
  for (const r of b.data) {
    if (r.offerId && !have.has(r.offerId)) {
      have.add(r.offerId);
      list.append(el("option", { value: r.offerId }, r.offerName || r.name || r.offerId));
    }
  }
}

function poll() {
  if (document.hidden || !api.session()) return;
  const s = state.read();
  if (s.view !== "dashboards") return;
  for (const p of panels) if (p.visible) refresh(p, s, true);
}

start();
