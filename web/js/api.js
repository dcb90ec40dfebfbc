// Talks to the vigil server: one place that adds the API key, parses the JSON error body
// ({"error", "code", "request_id"}) and reports authentication failures to the header.

const kKeyStorage = 'vigil.apiKey';

// Routes are resolved against the UI's own location (/ui/ -> /), so the UI also works behind a
// reverse proxy that mounts the server under a prefix.
export function apiUrl(path, query) {
  const url = new URL('..' + path, document.baseURI);
  for (const [k, v] of Object.entries(query ?? {})) url.searchParams.set(k, String(v));
  return url;
}

export function getApiKey() {
  try {
    return localStorage.getItem(kKeyStorage) ?? '';
  } catch {
    return '';  // storage disabled (privacy mode): the key lives only in the field then
  }
}

let memoryKey = null;

export function setApiKey(key) {
  memoryKey = key;
  try {
    if (key) localStorage.setItem(kKeyStorage, key);
    else localStorage.removeItem(kKeyStorage);
  } catch {
    // keep memoryKey only
  }
}

function currentKey() {
  return memoryKey ?? getApiKey();
}

/** An HTTP or network failure with the server's message and kind. */
export class ApiError extends Error {
  constructor({ status, code, message, requestId, retryAfter }) {
    super(message);
    this.status = status;          // 0 = the server could not be reached
    this.code = code;              // the contract's kind: bad_request, unauthorized, ...
    this.requestId = requestId;
    this.retryAfter = retryAfter;  // seconds, for 429 / 503
  }

  /** A one-paragraph explanation for a person, with a pointer to the fix where there is one. */
  describe() {
    const parts = [];
    if (this.status === 0) return `Cannot reach the server: ${this.message}`;
    parts.push(`${this.status} ${this.code}: ${this.message}`);
    if (this.status === 401) parts.push('This server needs an API key: enter it in the “API key” field at the top.');
    if (this.status === 403) parts.push('The server rejected the API key: check the “API key” field at the top.');
    if (this.retryAfter) parts.push(`Retry after ${this.retryAfter} s.`);
    if (this.requestId) parts.push(`(request ${this.requestId})`);
    return parts.join('\n');
  }
}

const authListeners = new Set();

/** fn(error|null): called with the ApiError on 401/403 and with null after an authorised request. */
export function onAuthChange(fn) {
  authListeners.add(fn);
}

function notifyAuth(err) {
  for (const fn of authListeners) fn(err);
}

const kStatusText = {
  400: 'bad_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 405: 'method_not_allowed',
  413: 'too_large', 415: 'unsupported_media_type', 429: 'rate_limited', 500: 'internal', 503: 'overloaded',
};

async function errorFrom(res) {
  let body = null;
  const text = await res.text().catch(() => '');
  try {
    body = JSON.parse(text);
  } catch {
    // a proxy or a server path that answered without the JSON error body
  }
  const retry = res.headers.get('Retry-After');
  return new ApiError({
    status: res.status,
    code: body?.code ?? kStatusText[res.status] ?? 'http_error',
    message: body?.error ?? (text.trim().slice(0, 200) || res.statusText || `HTTP ${res.status}`),
    requestId: body?.request_id ?? res.headers.get('X-Request-Id') ?? undefined,
    retryAfter: retry ? Number(retry) : undefined,
  });
}

/**
 * fetch() with the API key; resolves to the Response when it is 2xx, else throws ApiError.
 * `auth` = false for routes that never need the key (so they do not clear an auth warning).
 */
export async function request(path, { method = 'GET', query, body, headers = {}, signal, auth = true } = {}) {
  const h = new Headers(headers);
  const key = currentKey();
  if (key) h.set('X-API-Key', key);
  let res;
  try {
    res = await fetch(apiUrl(path, query), { method, body, headers: h, signal, cache: 'no-store' });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError({ status: 0, code: 'network', message: e.message || 'network error' });
  }
  if (!res.ok) {
    const err = await errorFrom(res);
    if (err.status === 401 || err.status === 403) notifyAuth(err);
    throw err;
  }
  if (auth) notifyAuth(null);
  return res;
}

export async function getJson(path, opts) {
  const res = await request(path, opts);
  return res.json();
}

/** POST one image to /v1/predict; returns {json, clientMs}. */
export async function predict(blob, filename, query, signal) {
  const form = new FormData();
  form.append('file', blob, filename);
  const t0 = performance.now();
  const res = await request('/v1/predict', { method: 'POST', body: form, query, signal });
  const json = await res.json();
  return { json, clientMs: performance.now() - t0 };
}
