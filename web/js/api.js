// The page's one API client. It sends the signed-in key and tenant on every request, and keeps
// the ETag of each URL's last answer so that a poll which finds nothing new costs a bodiless
// 304 and redraws nothing.

const SESSION = "dv.session";

/** The key and tenant of this tab, or null before sign-in. */
export function session() {
  try {
    const s = JSON.parse(sessionStorage.getItem(SESSION));
    return s && s.key ? s : null;
  } catch {
    return null;
  }
}

export function signIn(key, tenant) {
  sessionStorage.setItem(SESSION, JSON.stringify({ key, tenant }));
}

export function signOut() {
  sessionStorage.removeItem(SESSION);
  answers.clear();
}

/** An answer that is not 2xx: the status, the API's `error` sentence and `Retry-After`. */
export class ApiError extends Error {
  constructor(status, message, retryAfter) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

/** url -> { etag, body, asOf } of its last 200. */
const answers = new Map();

function headers(extra = {}) {
  const s = session();
  const h = { Accept: "application/json", ...extra };
  if (s) {
    h["X-API-Key"] = s.key;
    if (s.tenant) h["X-Tenant-Id"] = s.tenant;
  }
  return h;
}

async function body(resp) {
  const text = await resp.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { error: text.slice(0, 200) };
  }
}

async function failure(resp) {
  const b = await body(resp);
  const message = (b && b.error) || `${resp.status} ${resp.statusText}`;
  return new ApiError(resp.status, message, resp.headers.get("Retry-After"));
}

/**
 * GET `url`. Resolves to { changed, body, asOf, etag }: `changed` is false when the server
 * answered 304 to the ETag of the previous answer (then `body` is that answer's).
 */
export async function get(url) {
  const prev = answers.get(url);
  const resp = await fetch(url, {
    headers: headers(prev ? { "If-None-Match": prev.etag } : {}),
    cache: "no-store",
  });
  const asOf = resp.headers.get("X-Data-As-Of");
  if (resp.status === 304 && prev) {
    if (asOf) prev.asOf = asOf;
    return { changed: false, body: prev.body, asOf: prev.asOf, etag: prev.etag };
  }
  if (!resp.ok) throw await failure(resp);
  const answer = { etag: resp.headers.get("ETag"), body: await body(resp), asOf };
  if (answer.etag) answers.set(url, answer);
  return { changed: true, ...answer };
}

/** POST a JSON body; resolves to the JSON answer. */
export async function post(url, payload) {
  const resp = await fetch(url, {
    method: "POST",
    headers: headers({ "Content-Type": "application/json" }),
    body: JSON.stringify(payload),
    cache: "no-store",
  });
  if (!resp.ok) throw await failure(resp);
  return body(resp);
}
