// Create.jsx — the form that creates a test (POST /api/create_model): a name, two or more
// variants (added and removed), and Advanced options collapsed by default. The server's error
// detail is shown next to the form; on success the browser goes to the new test's page.
import { useRef, useState } from 'preact/hooks';
import { createModel } from '../api.js';
import { ErrorBox } from '../components/ErrorBox.jsx';
import { navigate, testHref } from '../router.js';

const POLICIES = [
  { value: 'auto', label: 'auto: Thompson sampling, contextual when a request has context' },
  { value: 'thompson', label: 'thompson: Thompson sampling' },
  { value: 'ucb1', label: 'ucb1: upper confidence bound' },
  { value: 'egreedy', label: 'egreedy: ε-greedy' },
  { value: 'linucb', label: 'linucb: contextual, LinUCB' },
  { value: 'lints', label: 'lints: contextual, linear Thompson sampling' },
];

let nextKey = 0;
const newVariant = (label = '') => ({ key: nextKey++, label });

/** Builds the request body; numbers left empty are omitted so the server's defaults apply. */
function definition({ name, variants, policy, features, minUpdates, epsilon }) {
  const body = {
    name: name.trim(),
    variants: Object.fromEntries(variants.map((v, i) => [String(i), v.label.trim()])),
  };
  if (policy !== 'auto') body.policy = policy;
  const keys = features
    .split(',')
    .map((f) => f.trim())
    .filter(Boolean);
  if (keys.length) body.features = keys;
  if (minUpdates.trim() !== '') body.min_updates = Number(minUpdates);
  if (policy === 'egreedy' && epsilon.trim() !== '') body.epsilon = Number(epsilon);
  return body;
}

export function Create() {
  const [name, setName] = useState('');
  const [variants, setVariants] = useState(() => [newVariant('A'), newVariant('B')]);
  const [policy, setPolicy] = useState('auto');
  const [features, setFeatures] = useState('');
  const [minUpdates, setMinUpdates] = useState('');
  const [epsilon, setEpsilon] = useState('0.1');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const list = useRef(null);

  const update = (key, label) => setVariants((vs) => vs.map((v) => (v.key === key ? { ...v, label } : v)));
  const add = () => {
    setVariants((vs) => [...vs, newVariant('')]);
    // Focus the new input once it exists.
    setTimeout(() => {
      const inputs = list.current?.querySelectorAll('input');
      inputs?.[inputs.length - 1]?.focus();
    });
  };
  const remove = (key, index) => {
    setVariants((vs) => vs.filter((v) => v.key !== key));
    setTimeout(() => {
      const inputs = list.current?.querySelectorAll('input');
      inputs?.[Math.max(0, index - 1)]?.focus();
    });
  };

  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const res = await createModel(definition({ name, variants, policy, features, minUpdates, epsilon }));
      navigate(testHref(res.model_id || res.cb_model_id));
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };

  return (
    <>
      <div class="page-head">
        <h1>New test</h1>
      </div>
      <form class="card form create-form" onSubmit={submit} aria-describedby={error ? 'create-error' : undefined} data-testid="create-form">
        <div class="field">
          <label for="test-name">Name</label>
          <input id="test-name" name="name" required maxLength={256} value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="homepage-headline" />
        </div>

        <fieldset class="variants">
          <legend>Variants</legend>
          <p class="small muted">What a visitor may be shown, e.g. two headlines. At least two; labels must differ.</p>
          <ol ref={list} class="variant-list">
            {variants.map((v, i) => (
              <li key={v.key} class="variant-row">
                <label for={`variant-${v.key}`} class="variant-label">
                  Variant {i + 1}
                </label>
                <input
                  id={`variant-${v.key}`}
                  required
                  maxLength={256}
                  value={v.label}
                  onInput={(e) => update(v.key, e.currentTarget.value)}
                  data-testid="variant-input"
                />
                <button
                  type="button"
                  class="btn btn-small"
                  onClick={() => remove(v.key, i)}
                  disabled={variants.length <= 2}
                  aria-label={`Remove variant ${i + 1}${v.label ? ` (${v.label})` : ''}`}
                  title={variants.length <= 2 ? 'A test needs at least two variants' : undefined}
                >
                  Remove
                </button>
              </li>
            ))}
          </ol>
          <button type="button" class="btn" onClick={add} disabled={variants.length >= 256}>
            Add variant
          </button>
        </fieldset>

        <details class="advanced">
          <summary>Advanced</summary>
          <div class="advanced-body">
            <div class="field">
              <label for="policy">Policy</label>
              <select id="policy" value={policy} onChange={(e) => setPolicy(e.currentTarget.value)}>
                {POLICIES.map((p) => (
                  <option key={p.value} value={p.value}>
                    {p.label}
                  </option>
                ))}
              </select>
            </div>
            <div class="field">
              <label for="features">Features</label>
              <input id="features" value={features} onInput={(e) => setFeatures(e.currentTarget.value)} placeholder="device, country" aria-describedby="features-help" />
              <p id="features-help" class="small muted">
                Comma-separated context keys to learn from. Empty: every key of a request's context is a feature.
              </p>
            </div>
            <div class="field">
              <label for="min-updates">Warm-up rewards (min_updates)</label>
              <input
                id="min-updates"
                type="number"
                inputMode="numeric"
                min={0}
                step={1}
                value={minUpdates}
                onInput={(e) => setMinUpdates(e.currentTarget.value)}
                placeholder="server default"
                aria-describedby="min-updates-help"
              />
              <p id="min-updates-help" class="small muted">
                Rewards before the policy takes over; until then variants are drawn uniformly. Empty: the default from Admin.
              </p>
            </div>
            {policy === 'egreedy' && (
              <div class="field">
                <label for="epsilon">Epsilon</label>
                <input
                  id="epsilon"
                  type="number"
                  inputMode="decimal"
                  min={0}
                  max={1}
                  step="any"
                  value={epsilon}
                  onInput={(e) => setEpsilon(e.currentTarget.value)}
                  aria-describedby="epsilon-help"
                />
                <p id="epsilon-help" class="small muted">
                  Share of decisions drawn at random, between 0 and 1.
                </p>
              </div>
            )}
          </div>
        </details>

        <div class="form-actions">
          <button type="submit" class="btn btn-primary" disabled={busy}>
            {busy ? 'Creating…' : 'Create test'}
          </button>
          <a class="btn btn-link" href="#/">
            Cancel
          </a>
        </div>
        <div id="create-error" data-testid="create-error">
          <ErrorBox error={error} title="The test was not created:" />
        </div>
      </form>
    </>
  );
}
