// Dashboard.jsx — every test (GET /api/models) with its variants, traffic-share bar, decisions,
// rewards and state, plus the store's health; refreshed every few seconds without overlap.
import { useRef } from 'preact/hooks';
import { getModelConfig, listModels, readiness, storeHealth } from '../api.js';
import { ErrorBox } from '../components/ErrorBox.jsx';
import { ShareBar } from '../components/ShareBar.jsx';
import { StateBadge, testState } from '../components/StateBadge.jsx';
import { StoreHealth } from '../components/StoreHealth.jsx';
import { ago, formatInt } from '../format.js';
import { usePoll } from '../poll.js';
import { testHref } from '../router.js';

const REFRESH_MS = 5000;

async function loadTests(signal) {
  const models = await listModels({ signal });
  // Servers that do not report a test's resolved warm-up get the global default.
  const needDefault = models.some((m) => typeof m.warmup !== 'boolean' && !Number.isInteger(m.min_updates));
  const config = needDefault ? await getModelConfig({ signal }).catch(() => null) : null;
  return { models, defaultMin: config?.min_update_requests ?? 10 };
}

/** Readiness (open to all) and store health (admin); a token without admin scope asks once. */
async function loadHealth(signal, forbidden) {
  const [ready, health] = await Promise.all([
    readiness({ signal }),
    forbidden.current
      ? { e: forbidden.current }
      : storeHealth({ signal }).then(
          (h) => ({ h }),
          (e) => {
            if (e?.name === 'AbortError') throw e;
            if (e?.status === 403) forbidden.current = e;
            return { e };
          },
        ),
  ]);
  return { ready, health: health.h, error: health.e };
}

function TestCard({ m, defaultMin }) {
  const state = testState(m, defaultMin);
  return (
    <li class="card test-card" data-testid="test-card" data-model-id={m.model_id}>
      <div class="test-card-head">
        <h2 class="test-name">
          <a href={testHref(m.model_id)}>{m.name}</a>
        </h2>
        <StateBadge state={state} variant={m.global_variant} />
      </div>
      <p class="small muted variants-line">
        {m.variants.length} variants · {m.policy || 'auto'} policy
        {m.features?.length ? ` · features: ${m.features.join(', ')}` : ''}
      </p>
      <ShareBar variants={m.variants} shares={m.prediction_ratio} />
      <dl class="stats">
        <div>
          <dt>Decisions</dt>
          <dd class="num" data-testid="decisions">
            {formatInt(m.prediction_requests)}
          </dd>
        </div>
        <div>
          <dt>Rewards</dt>
          <dd class="num" data-testid="rewards">
            {formatInt(m.update_requests)}
          </dd>
        </div>
        <div>
          <dt>Last decision</dt>
          <dd>{ago(m.latest_prediction_request)}</dd>
        </div>
      </dl>
      {state === 'warm-up' && (
        <p class="small muted">
          Warm-up: {formatInt(m.update_requests)} of {formatInt(Number.isInteger(m.min_updates) ? m.min_updates : defaultMin)} rewards
          before the policy takes over.
        </p>
      )}
    </li>
  );
}

export function Dashboard() {
  const tests = usePoll(loadTests, REFRESH_MS);
  const forbidden = useRef(null);
  const health = usePoll((signal) => loadHealth(signal, forbidden), REFRESH_MS * 2);
  const models = tests.data?.models;
  return (
    <>
      <div class="page-head">
        <h1>Tests</h1>
        <a class="btn btn-primary" href="#/new">
          New test
        </a>
      </div>
      <StoreHealth health={health.data?.health} ready={health.data?.ready} error={health.data?.error} />
      <ErrorBox error={tests.error} title="Could not load the tests." />
      {tests.loading && !models && <p class="muted">Loading tests…</p>}
      {models && models.length === 0 && (
        <section class="card empty">
          <h2>No tests yet</h2>
          <p>
            A test shows one of several variants to each visitor and learns which one earns the most. <a href="#/new">Create the first
            test</a>.
          </p>
        </section>
      )}
      {models && models.length > 0 && (
        <ul class="test-grid" aria-label="Tests">
          {models.map((m) => (
            <TestCard key={m.model_id} m={m} defaultMin={tests.data.defaultMin} />
          ))}
        </ul>
      )}
      {models && <p class="small muted refresh-note">Refreshes every {REFRESH_MS / 1000} s. Traffic shares cover the recent window.</p>}
    </>
  );
}
