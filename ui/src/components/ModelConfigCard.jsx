// ModelConfigCard.jsx — defaults for every test (GET/POST /admin/model_config): the analytics
// window, its bucket width, and the warm-up length of tests without their own min_updates.
import { useEffect, useState } from 'preact/hooks';
import { getModelConfig, saveModelConfig } from '../api.js';
import { usePoll } from '../poll.js';
import { ErrorBox } from './ErrorBox.jsx';

const FIELDS = [
  { key: 'time_window_minutes', label: 'Analytics window (minutes)', help: 'How far back traffic shares and charts look (1–10080).' },
  { key: 'bucket_granularity_seconds', label: 'Chart bucket width (seconds)', help: 'Width of one column of the time charts (1–86400).' },
  { key: 'min_update_requests', label: 'Warm-up rewards (min_update_requests)', help: 'Rewards before the policy takes over, for tests without their own.' },
];

export function ModelConfigCard() {
  const config = usePoll((signal) => getModelConfig({ signal }), 0);
  const [values, setValues] = useState(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [saved, setSaved] = useState('');

  const toValues = (c) => Object.fromEntries(FIELDS.map((f) => [f.key, String(c[f.key] ?? '')]));
  // Fill the form once; later loads must not overwrite what is being typed.
  useEffect(() => {
    if (config.data && values === null) setValues(toValues(config.data));
  }, [config.data]); // eslint-disable-line react-hooks/exhaustive-deps

  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setSaved('');
    try {
      const body = Object.fromEntries(FIELDS.map((f) => [f.key, Number(values[f.key])]));
      const res = await saveModelConfig(body);
      setValues(toValues({ ...body, ...res })); // what the server kept
      setSaved(res?.message || 'Saved');
    } catch (err) {
      setError(err);
    }
    setBusy(false);
  };

  return (
    <section class="card" aria-labelledby="config-h" data-testid="config-card">
      <h2 id="config-h">Test defaults</h2>
      <ErrorBox error={config.error} title="Could not load the settings:" />
      {values && (
        <form class="form" onSubmit={submit}>
          {FIELDS.map((f) => (
            <div class="field" key={f.key}>
              <label for={`cfg-${f.key}`}>{f.label}</label>
              <input
                id={`cfg-${f.key}`}
                type="number"
                inputMode="numeric"
                min={f.key === 'min_update_requests' ? 0 : 1}
                step={1}
                required
                value={values[f.key]}
                onInput={(e) => setValues({ ...values, [f.key]: e.currentTarget.value })}
                aria-describedby={`cfg-${f.key}-help`}
              />
              <p id={`cfg-${f.key}-help`} class="small muted">
                {f.help}
              </p>
            </div>
          ))}
          <div class="form-actions">
            <button type="submit" class="btn btn-primary" disabled={busy}>
              {busy ? 'Saving…' : 'Save defaults'}
            </button>
            <span role="status" class="saved">
              {saved}
            </span>
          </div>
          <ErrorBox error={error} title="Not saved:" />
        </form>
      )}
    </section>
  );
}
