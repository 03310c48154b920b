// ProtectionCard.jsx — API protection on/off (GET /admin/get_protection, POST /admin/set_protection).
// Turning it on is refused (409) while no admin token exists: the server's detail is shown.
import { useEffect, useState } from 'preact/hooks';
import { getToken, setProtection } from '../api.js';
import { ErrorBox } from './ErrorBox.jsx';

export function ProtectionCard({ protection, onChange }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const on = Boolean(protection.protected_api);
  // A refusal is about the state it was made in: forget it once that state changes.
  useEffect(() => setError(null), [on, protection.admin_token_available]);
  const toggle = async () => {
    setBusy(true);
    setError(null);
    try {
      await setProtection(!on);
      await onChange();
    } catch (e) {
      setError(e);
    }
    setBusy(false);
  };
  return (
    <section class="card" aria-labelledby="protection-h" data-testid="protection-card">
      <h2 id="protection-h">API protection</h2>
      <div class="switch-row">
        <button
          type="button"
          role="switch"
          aria-checked={on}
          aria-labelledby="protection-label"
          aria-describedby="protection-help"
          class={`switch ${on ? 'on' : ''}`}
          onClick={toggle}
          disabled={busy}
          data-testid="protection-switch"
        >
          <span class="switch-knob" aria-hidden="true" />
        </button>
        <span id="protection-label">
          Require tokens: <strong data-testid="protection-state">{on ? 'on' : 'off'}</strong>
        </span>
      </div>
      <p id="protection-help" class="small muted">
        While on, every API call needs <code>Authorization: Bearer &lt;token&gt;</code>: client tokens may fetch decisions and report
        rewards, admin tokens may do everything. Health checks, <code>/docs</code> and this UI's files stay open.
        {!on && !getToken() && ' Turning it on will ask this browser for an admin token.'}
      </p>
      <p class="small">
        Admin token available: <strong>{protection.admin_token_available ? 'yes' : 'no (create one below first)'}</strong>
        {protection.metrics_require_token ? ' · /metrics requires a token' : ''}
      </p>
      <ErrorBox error={error} title={on ? 'Protection was not turned off:' : 'Protection was not turned on:'} />
    </section>
  );
}
