// api.js — every call the UI makes to scoutd, in one place.
// Same-origin relative URLs; the bearer token (if any) lives in sessionStorage and is sent on
// every call, the live log stream included. Failures become ApiError objects that carry the HTTP
// status and the server's `detail` sentence. A 401 also tells the app to show the sign-in panel.

const TOKEN_KEY = 'scout.token';

/** An HTTP failure: `status` (0 when the server could not be reached) and the server's `detail`. */
export class ApiError extends Error {
  constructor(status, detail, { method = 'GET', path = '', retryAfter = null } = {}) {
    super(detail);
    this.name = 'ApiError';
    this.status = status;
    this.detail = detail;
    this.method = method;
    this.path = path;
    this.retryAfter = retryAfter;
  }
}

// ---- token --------------------------------------------------------------------------------

const listeners = new Set();

/** Subscribes to auth events: {type: 'unauthorized', hadToken} and {type: 'token', token}. */
export function onAuthEvent(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function emit(event) {
  for (const fn of listeners) fn(event);
}

export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  emit({ type: 'token', token });
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
  emit({ type: 'token', token: '' });
}

/** Forgets the token and asks the app for the sign-in panel (to switch to another token). */
export function switchToken() {
  clearToken();
  emit({ type: 'unauthorized', hadToken: false });
}

function authHeaders(token = getToken()) {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

// ---- requests -----------------------------------------------------------------------------

async function failure(res, method, path) {
  let detail = '';
  try {
    const body = await res.json();
    detail = typeof body?.detail === 'string' ? body.detail : JSON.stringify(body?.detail ?? body);
  } catch {
    detail = res.statusText || `HTTP ${res.status}`;
  }
  const retry = Number(res.headers.get('Retry-After'));
  return new ApiError(res.status, detail || `HTTP ${res.status}`, {
    method,
    path,
    retryAfter: Number.isFinite(retry) && retry > 0 ? retry : null,
  });
}

/**
 * Performs one request and returns the parsed JSON body.
 * Options: body (sent as JSON), signal, token (overrides the stored one: used to try a token
 * before keeping it), quiet401 (do not raise the sign-in panel).
 */
export async function request(method, path, { body, signal, token, quiet401 = false } = {}) {
  const headers = { Accept: 'application/json', ...authHeaders(token ?? getToken()) };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: 'no-store',
    });
  } catch (e) {
    if (e?.name === 'AbortError') throw e;
    throw new ApiError(0, 'Cannot reach the Scout server. Is scoutd running?', { method, path });
  }
  if (!res.ok) {
    const err = await failure(res, method, path);
    if (res.status === 401 && !quiet401) emit({ type: 'unauthorized', hadToken: Boolean(token ?? getToken()) });
    throw err;
  }
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

const get = (path, opts) => request('GET', path, opts);
const post = (path, body, opts) => request('POST', path, { ...opts, body });
const enc = encodeURIComponent;

// ---- tests --------------------------------------------------------------------------------

export const listModels = (opts) => get('/api/models', opts);
export const modelDetails = (id, opts) => get(`/api/model_details/${enc(id)}`, opts);
export const createModel = (definition) => post('/api/create_model', definition);
export const deleteModel = (id) => post(`/api/delete_model/${enc(id)}`, {});
export const rolloutVariant = (id, variant) => post(`/api/rollout_global_variant/${enc(id)}`, { variant });
export const clearRollout = (id) => post(`/api/clear_global_variant/${enc(id)}`, {});

// ---- admin and health ---------------------------------------------------------------------

export const getProtection = (opts) => get('/admin/get_protection', opts);
export const setProtection = (on) => post('/admin/set_protection', { protected_api: on });
export const listTokens = (opts) => get('/admin/tokens', opts);
export const generateToken = (spec) => post('/admin/generate_token', spec);
export const revokeToken = (id) => post(`/admin/tokens/${enc(id)}/revoke`, {});
export const getModelConfig = (opts) => get('/admin/model_config', opts);
export const saveModelConfig = (config) => post('/admin/model_config', config);
export const storeHealth = (opts) => get('/admin/redis_health', opts);

/** GET /readyz: {ready, status}; 503 means the store does not answer (not an exception). */
export async function readiness({ signal } = {}) {
  try {
    const res = await fetch('/readyz', { signal, cache: 'no-store' });
    let body = null;
    try {
      body = await res.json();
    } catch {
      /* not JSON */
    }
    return { ready: res.ok, status: body?.status || (res.ok ? 'ready' : `HTTP ${res.status}`) };
  } catch (e) {
    if (e?.name === 'AbortError') throw e;
    return { ready: false, status: 'unreachable' };
  }
}

/**
 * Tries a token without keeping it: resolves to 'ok' (admin), 'limited' (valid, but its scope
 * does not reach /admin), or throws the ApiError (401 wrong token, 429 too many attempts, ...).
 */
export async function checkToken(token) {
  try {
    await getProtection({ token, quiet401: true });
    return 'ok';
  } catch (e) {
    if (e instanceof ApiError && e.status === 403) return 'limited';
    throw e;
  }
}

// ---- live log -----------------------------------------------------------------------------

/**
 * Opens GET /logs/stream with fetch (EventSource cannot send Authorization) and parses the
 * Server-Sent Events itself. Calls onRecord(rawData) per `data:` event and onRetry(ms) for a
 * `retry:` field. Resolves when the server ends the stream; rejects with ApiError or AbortError.
 */
export async function streamLogs({ signal, onOpen, onRecord, onRetry }) {
  let res;
  try {
    res = await fetch('/logs/stream', {
      headers: { Accept: 'text/event-stream', ...authHeaders() },
      signal,
      cache: 'no-store',
    });
  } catch (e) {
    if (e?.name === 'AbortError') throw e;
    throw new ApiError(0, 'Cannot reach the Scout server. Is scoutd running?', { path: '/logs/stream' });
  }
  if (!res.ok) {
    const err = await failure(res, 'GET', '/logs/stream');
    if (res.status === 401) emit({ type: 'unauthorized', hadToken: Boolean(getToken()) });
    throw err;
  }
  onOpen?.();
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let data = [];
  const dispatchLine = (line) => {
    if (line === '') {
      if (data.length) onRecord(data.join('\n'));
      data = [];
      return;
    }
    if (line.startsWith(':')) return; // comment (keep-alive)
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'retry' && /^\d+$/.test(value)) onRetry?.(Number(value));
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let nl;
    while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
      if (buffer[nl] === '\r' && nl === buffer.length - 1) break; // maybe half of a CRLF
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + (buffer[nl] === '\r' && buffer[nl + 1] === '\n' ? 2 : 1));
      dispatchLine(line);
    }
  }
}
