// Snippets.jsx — ready-to-paste client code for one test (curl, Python requests, JavaScript
// fetch): ask for a variant with a request_id and context, then report the reward for that
// request_id. The base URL is this page's own origin. Keyboard-usable tabs (arrow keys).
import { useRef, useState } from 'preact/hooks';
import { CopyButton } from './CopyButton.jsx';

function exampleContext(features) {
  if (!features?.length) return { device: 'mobile', country: 'DE' };
  return Object.fromEntries(features.map((f) => [f, 'value']));
}

/** JSON on one line with a space after every comma and colon, as people write it. */
function jsonInline(v) {
  if (Array.isArray(v)) return `[${v.map(jsonInline).join(', ')}]`;
  if (v && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${jsonInline(x)}`).join(', ')}}`;
  return JSON.stringify(v);
}

/** Quotes text for a single-quoted shell word ('…'). */
const shq = (text) => text.replace(/'/g, `'\\''`);

function curlSnippet(base, id, ctx, auth) {
  const h = auth ? `\n  -H "Authorization: Bearer $SCOUT_TOKEN" \\` : '';
  // The request id is spliced in from the shell variable: '…"'"$REQUEST_ID"'"…'.
  const rid = `"'"$REQUEST_ID"'"`;
  return `BASE=${base}
REQUEST_ID="req-$(date +%s)-$RANDOM"   # any unique id of yours

# 1. Ask which variant to show (the decision is remembered under REQUEST_ID)
curl -s -X POST "$BASE/api/fetch_recommended_variant" \\${h}
  -H 'Content-Type: application/json' \\
  -d '{
    "cb_model_id": ${shq(JSON.stringify(id))},
    "context": ${shq(jsonInline(ctx))},
    "request_id": ${rid}
  }'

# 2. Later, report the reward for that request (1 = converted)
curl -s -X POST "$BASE/api/update_model/${id}" \\${h}
  -H 'Content-Type: application/json' \\
  -d '{"updates": [{"request_id": ${rid}, "reward": 1}]}'
`;
}

function pythonSnippet(base, id, ctx, auth) {
  const ctxPy = jsonInline(ctx);
  return `${auth ? 'import os\n' : ''}import uuid

import requests

BASE = "${base}"
TEST_ID = "${id}"
HEADERS = ${auth ? '{"Authorization": f"Bearer {os.environ[\'SCOUT_TOKEN\']}"}' : '{}'}

# 1. Ask which variant to show
request_id = str(uuid.uuid4())
r = requests.post(f"{BASE}/api/fetch_recommended_variant", json={
    "cb_model_id": TEST_ID,
    "context": ${ctxPy},
    "request_id": request_id,
}, headers=HEADERS, timeout=5)
r.raise_for_status()
variant = r.json()["recommended_variant"]
print("show:", variant)

# 2. Later, report the reward for that request (1 = converted)
r = requests.post(f"{BASE}/api/update_model/{TEST_ID}", json={
    "updates": [{"request_id": request_id, "reward": 1}],
}, headers=HEADERS, timeout=5)
r.raise_for_status()
print(r.json())
`;
}

function jsSnippet(base, id, ctx, auth) {
  const ctxJs = `{ ${Object.entries(ctx)
    .map(([k, v]) => `${/^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k)}: ${JSON.stringify(v)}`)
    .join(', ')} }`;
  return `const BASE = '${base}';
const TEST_ID = '${id}';
${auth ? "const TOKEN = process.env.SCOUT_TOKEN; // a client token; keep tokens out of browser code\n" : ''}const headers = { 'Content-Type': 'application/json'${auth ? ', Authorization: `Bearer ${TOKEN}`' : ''} };

// 1. Ask which variant to show
const requestId = crypto.randomUUID();
const res = await fetch(\`\${BASE}/api/fetch_recommended_variant\`, {
  method: 'POST',
  headers,
  body: JSON.stringify({ cb_model_id: TEST_ID, context: ${ctxJs}, request_id: requestId }),
});
if (!res.ok) throw new Error((await res.json()).detail);
const { recommended_variant } = await res.json();
console.log('show:', recommended_variant);

// 2. Later, report the reward for that request (1 = converted)
const upd = await fetch(\`\${BASE}/api/update_model/\${TEST_ID}\`, {
  method: 'POST',
  headers,
  body: JSON.stringify({ updates: [{ request_id: requestId, reward: 1 }] }),
});
console.log(await upd.json());
`;
}

const TABS = [
  { key: 'curl', label: 'curl', make: curlSnippet },
  { key: 'python', label: 'Python', make: pythonSnippet },
  { key: 'js', label: 'JavaScript', make: jsSnippet },
];

export function Snippets({ id, features, auth }) {
  const [active, setActive] = useState(0);
  const refs = useRef([]);
  const base = location.origin;
  const ctx = exampleContext(features);
  const onKey = (e) => {
    const dir = e.key === 'ArrowRight' ? 1 : e.key === 'ArrowLeft' ? -1 : 0;
    let next = e.key === 'Home' ? 0 : e.key === 'End' ? TABS.length - 1 : (active + dir + TABS.length) % TABS.length;
    if (!dir && e.key !== 'Home' && e.key !== 'End') return;
    e.preventDefault();
    setActive(next);
    refs.current[next]?.focus();
  };
  const tab = TABS[active];
  const code = tab.make(base, id, ctx, auth);
  return (
    <div class="snippets">
      <div class="tabs" role="tablist" aria-label="Client code language" onKeyDown={onKey}>
        {TABS.map((t, i) => (
          <button
            key={t.key}
            ref={(el) => (refs.current[i] = el)}
            type="button"
            role="tab"
            id={`tab-${t.key}`}
            aria-selected={i === active}
            aria-controls={`panel-${t.key}`}
            tabIndex={i === active ? 0 : -1}
            class="tab"
            onClick={() => setActive(i)}
          >
            {t.label}
          </button>
        ))}
      </div>
      <div role="tabpanel" id={`panel-${tab.key}`} aria-labelledby={`tab-${tab.key}`} class="snippet-panel">
        <div class="snippet-bar">
          <span class="small muted">
            {auth ? 'Set SCOUT_TOKEN to a client token first. ' : ''}Base URL: {base}
          </span>
          <CopyButton text={code} label={`Copy ${tab.label}`} testid="copy-snippet" />
        </div>
        <pre class="code" tabIndex={0} data-testid={`snippet-${tab.key}`}>
          <code>{code}</code>
        </pre>
      </div>
    </div>
  );
}
