// api.mjs — a tiny Node client of the Scout API for the end-to-end tests (traffic, checks).

export function client(base, token = '') {
  async function call(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = text;
    }
    return { status: res.status, body: json };
  }
  async function ok(method, path, body) {
    const r = await call(method, path, body);
    if (r.status !== 200) throw new Error(`${method} ${path} answered ${r.status}: ${JSON.stringify(r.body)}`);
    return r.body;
  }
  return {
    call,
    ok,
    create: (def) => ok('POST', '/api/create_model', def),
    models: () => ok('GET', '/api/models'),
    details: (id) => ok('GET', `/api/model_details/${id}`),
    fetchVariant: (id, requestId, context) => ok('POST', '/api/fetch_recommended_variant', { cb_model_id: id, request_id: requestId, context }),
    reward: (id, requestId, reward) => ok('POST', `/api/update_model/${id}`, { updates: [{ request_id: requestId, reward }] }),
    remove: (id) => ok('POST', `/api/delete_model/${id}`, {}),
  };
}
