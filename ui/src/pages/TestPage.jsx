// TestPage.jsx — one test (GET /api/model_details/<id>, refreshed every few seconds): state and
// counts, mean reward with 95% credible intervals, probability of being best, traffic share and
// decisions over time, rewards per variant, the per-feature breakdown of contextual tests;
// actions: roll out / clear, delete (confirmed), copy the id; client snippets.
import { useState } from 'preact/hooks';
import { clearRollout, deleteModel, getToken, modelDetails, rolloutVariant } from '../api.js';
import { ConfirmDialog } from '../components/ConfirmDialog.jsx';
import { CopyButton } from '../components/CopyButton.jsx';
import { ErrorBox } from '../components/ErrorBox.jsx';
import { FeatureBreakdown } from '../components/FeatureBreakdown.jsx';
import { IntervalChart } from '../components/IntervalChart.jsx';
import { RewardBars } from '../components/RewardBars.jsx';
import { Snippets } from '../components/Snippets.jsx';
import { StateBadge, testState } from '../components/StateBadge.jsx';
import { TimeChart } from '../components/TimeChart.jsx';
import { formatInt, formatNum, formatPct, formatProb, formatTime, variantColor } from '../format.js';
import { usePoll } from '../poll.js';
import { navigate } from '../router.js';

const REFRESH_MS = 5000;

/** performance_summary rows in variant order, each with its index (for its colour). */
function variantRows(d) {
  const perf = Object.values(d.performance_summary || {});
  return d.variants.map((label, index) => {
    const p = perf.find((x) => String(x.label) === String(label)) || {};
    return {
      label: String(label),
      index,
      predictions: p.predictions ?? 0,
      updates: p.updates ?? 0,
      rewardSum: p.reward_sum ?? 0,
      average: p.average_reward ?? 0,
      mean: p.posterior_mean ?? NaN,
      low: p.ci_low ?? NaN,
      high: p.ci_high ?? NaN,
      best: p.probability_best ?? NaN,
      share: p.current_prediction_ratio ?? 0,
      policy: p.policy_probability,
    };
  });
}

function Stat({ label, value, testid }) {
  return (
    <div>
      <dt>{label}</dt>
      <dd class="num" data-testid={testid}>
        {value}
      </dd>
    </div>
  );
}

function VariantTable({ rows }) {
  return (
    <div class="table-wrap">
      <table class="table" data-testid="variant-table">
        <caption class="sr-only">Per-variant results</caption>
        <thead>
          <tr>
            <th scope="col">Variant</th>
            <th scope="col" class="num">
              Decisions
            </th>
            <th scope="col" class="num">
              Rewards
            </th>
            <th scope="col" class="num">
              Reward sum
            </th>
            <th scope="col" class="num">
              Mean [95% CI]
            </th>
            <th scope="col">Probability best</th>
            <th scope="col" class="num">
              Share now
            </th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.label} data-variant={r.label}>
              <th scope="row">
                <span class="swatch" style={{ background: variantColor(r.index) }} aria-hidden="true" /> {r.label}
              </th>
              <td class="num" data-col="predictions">
                {formatInt(r.predictions)}
              </td>
              <td class="num" data-col="updates">
                {formatInt(r.updates)}
              </td>
              <td class="num" data-col="reward_sum">
                {formatNum(r.rewardSum)}
              </td>
              <td class="num">
                {formatNum(r.mean)} <span class="muted">[{formatNum(r.low)}, {formatNum(r.high)}]</span>
              </td>
              <td data-col="probability_best">
                <span class="pbest">
                  <span class="pbest-track" aria-hidden="true">
                    <span class="pbest-bar" style={{ width: formatPct(r.best, 1), background: variantColor(r.index) }} />
                  </span>
                  <span class="num">{formatProb(r.best)}</span>
                </span>
              </td>
              <td class="num">{formatPct(r.share)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function RolloutControls({ d, onDone }) {
  const [choice, setChoice] = useState(String(d.variants[0]));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const act = async (fn) => {
    setBusy(true);
    setError(null);
    try {
      await fn();
      await onDone();
    } catch (e) {
      setError(e);
    }
    setBusy(false);
  };
  // Labels may be integers; send the variant as the API listed it.
  const chosen = d.variants.find((v) => String(v) === choice) ?? choice;
  return (
    <div class="rollout">
      {d.global_rolled_out ? (
        <p class="rollout-state">
          Everyone gets <strong>{String(d.global_variant)}</strong>; learning is paused.{' '}
          <button type="button" class="btn" disabled={busy} onClick={() => act(() => clearRollout(d.model_id))}>
            Clear rollout
          </button>
        </p>
      ) : (
        <form
          class="inline-form"
          onSubmit={(e) => {
            e.preventDefault();
            act(() => rolloutVariant(d.model_id, chosen));
          }}
        >
          <label for="rollout-variant">Send everyone to</label>
          <select id="rollout-variant" value={choice} onChange={(e) => setChoice(e.currentTarget.value)}>
            {d.variants.map((v) => (
              <option key={String(v)} value={String(v)}>
                {String(v)}
              </option>
            ))}
          </select>
          <button type="submit" class="btn" disabled={busy}>
            Roll out
          </button>
        </form>
      )}
      <ErrorBox error={error} />
    </div>
  );
}

export function TestPage({ id }) {
  const details = usePoll((signal) => modelDetails(id, { signal }), REFRESH_MS, [id]);
  const [confirm, setConfirm] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const [deleteError, setDeleteError] = useState(null);
  const d = details.data;

  if (!d || details.error?.status === 404) {
    return (
      <>
        <p class="back">
          <a href="#/">← All tests</a>
        </p>
        {details.error ? (
          <ErrorBox error={details.error} title={details.error.status === 404 ? 'This test does not exist (it may have been deleted).' : 'Could not load the test.'} />
        ) : (
          <p class="muted">Loading…</p>
        )}
      </>
    );
  }

  const rows = variantRows(d);
  const state = testState(d);
  const rewardTotal = rows.reduce((s, r) => s + r.rewardSum, 0);
  const explore = d.exploit_explore_ratio;
  const hasFeatures = Object.keys(d.feature_prediction_data || {}).length > 0 || d.contextual_model?.features?.length > 0;
  const windowText = `last ${formatInt(d.time_window_minutes)} min, ${formatInt(d.bucket_granularity_seconds)} s buckets`;

  const doDelete = async () => {
    setDeleting(true);
    setDeleteError(null);
    try {
      await deleteModel(d.model_id);
      setConfirm(false);
      navigate('#/');
    } catch (e) {
      setDeleteError(e);
      setDeleting(false);
    }
  };

  return (
    <>
      <p class="back">
        <a href="#/">← All tests</a>
      </p>
      <div class="page-head">
        <h1 data-testid="test-title">{d.name}</h1>
        <StateBadge state={state} variant={d.global_variant} />
      </div>
      <p class="small id-line">
        <span class="muted">Test id</span> <code data-testid="test-id">{d.model_id}</code>{' '}
        <CopyButton text={d.model_id} label="Copy id" testid="copy-id" />
      </p>
      <p class="small muted">
        {d.policy} policy · warm-up {formatInt(d.min_updates)} rewards · created {formatTime(d.created_at)}
        {d.features?.length ? ` · features: ${d.features.join(', ')}` : ''}
      </p>
      <ErrorBox error={details.error} title="Refresh failed; showing the last data." />
      {d.srm?.mismatch && (
        <p class="alert alert-warn" role="status">
          Sample-ratio mismatch (p = {formatNum(d.srm.p_value, 2)}): traffic is not split the way the policy says. Look for a cache, a bot
          or a client that ignores the recommended variant.
        </p>
      )}

      <section class="card" aria-labelledby="overview-h">
        <h2 id="overview-h">Overview</h2>
        <dl class="stats">
          <Stat label="Decisions" value={formatInt(d.prediction_requests)} testid="decisions" />
          <Stat label="Rewards" value={formatInt(d.update_requests)} testid="rewards" />
          <Stat label="Reward sum" value={formatNum(rewardTotal)} testid="reward-sum" />
          <Stat label="Exploiting" value={explore?.n ? formatPct((explore.exploitation || 0) / 100) : '–'} />
        </dl>
        <RolloutControls d={d} onDone={details.refresh} />
      </section>

      <div class="grid-2">
        <section class="card" aria-labelledby="mean-h">
          <h2 id="mean-h">Mean reward per variant</h2>
          <IntervalChart rows={rows} />
        </section>
        <section class="card" aria-labelledby="rewards-h">
          <h2 id="rewards-h">Rewards per variant</h2>
          <RewardBars rows={rows} />
        </section>
      </div>

      <section class="card" aria-labelledby="variants-h">
        <h2 id="variants-h">Variants</h2>
        <VariantTable rows={rows} />
        <p class="small muted">Probability best: how likely each variant has the highest mean reward, given the rewards so far.</p>
      </section>

      <div class="grid-2">
        <section class="card" aria-labelledby="share-h">
          <h2 id="share-h">Traffic share over time</h2>
          <p class="small muted">{windowText}</p>
          <TimeChart trail={d.request_trail} variants={d.variants} mode="share" title="Traffic share over time" testid="share-chart" />
          <Legend variants={d.variants} />
        </section>
        <section class="card" aria-labelledby="decisions-h">
          <h2 id="decisions-h">Decisions over time</h2>
          <p class="small muted">{windowText}</p>
          <TimeChart trail={d.request_trail} variants={d.variants} mode="count" title="Decisions over time" testid="decisions-chart" />
          <Legend variants={d.variants} />
        </section>
      </div>

      <section class="card" aria-labelledby="rewards-time-h">
        <h2 id="rewards-time-h">Rewards over time</h2>
        <p class="small muted">{windowText}. Rewards count when they arrive; a test with a reward window counts them when the window ends.</p>
        <TimeChart trail={d.reward_trail} variants={d.variants} mode="count" title="Rewards over time" testid="rewards-chart" field="rewards" noun="rewards" sums="reward_sum" />
        <Legend variants={d.variants} />
      </section>

      {hasFeatures && (
        <section class="card" aria-labelledby="features-h" data-testid="feature-breakdown">
          <h2 id="features-h">By context feature</h2>
          <FeatureBreakdown details={d} />
        </section>
      )}

      <section class="card" aria-labelledby="snippets-h">
        <h2 id="snippets-h">Use this test from your code</h2>
        <Snippets id={d.model_id} features={d.features} auth={Boolean(getToken())} />
      </section>

      <section class="card danger-zone" aria-labelledby="danger-h">
        <h2 id="danger-h">Delete</h2>
        <p class="small">Deleting removes the test, what it learned and its decision records. It cannot be undone.</p>
        <button type="button" class="btn btn-danger" onClick={() => setConfirm(true)}>
          Delete test…
        </button>
      </section>

      <ConfirmDialog
        open={confirm}
        title={`Delete “${d.name}”?`}
        confirmLabel="Delete"
        danger
        busy={deleting}
        onConfirm={doDelete}
        onCancel={() => {
          setConfirm(false);
          setDeleteError(null);
        }}
      >
        <p>The test, what it learned and its decision records are removed. Clients asking for it get 404. This cannot be undone.</p>
        <ErrorBox error={deleteError} />
      </ConfirmDialog>
      <p class="small muted refresh-note">Refreshes every {REFRESH_MS / 1000} s.</p>
    </>
  );
}

function Legend({ variants }) {
  return (
    <ul class="legend">
      {variants.map((v, i) => (
        <li key={String(v)}>
          <span class="swatch" style={{ background: variantColor(i) }} aria-hidden="true" />
          <span class="legend-label">{String(v)}</span>
        </li>
      ))}
    </ul>
  );
}
