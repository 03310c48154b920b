// TokensCard.jsx — API tokens: create one (the secret is shown once, with a copy button), list
// them (GET /admin/tokens: metadata only) and revoke one after a confirmation.
import { useState } from 'preact/hooks';
import { generateToken, listTokens, revokeToken } from '../api.js';
import { formatTime } from '../format.js';
import { usePoll } from '../poll.js';
import { ConfirmDialog } from './ConfirmDialog.jsx';
import { CopyButton } from './CopyButton.jsx';
import { ErrorBox } from './ErrorBox.jsx';

function NewSecret({ created, onDismiss }) {
  return (
    <div class="secret alert alert-warn" role="region" aria-labelledby="secret-h" data-testid="new-token">
      <h3 id="secret-h">New {created.scope} token “{created.name}”</h3>
      <p>
        <strong>Copy it now: it will not be shown again.</strong> Scout stores only a hash of it.
      </p>
      <div class="secret-row">
        <code class="secret-value" data-testid="token-secret">
          {created.token}
        </code>
        <CopyButton text={created.token} label="Copy token" testid="copy-token" />
      </div>
      <p class="small">{created.expires_at ? `Expires ${formatTime(created.expires_at)}.` : 'Never expires.'}</p>
      <button type="button" class="btn" onClick={onDismiss}>
        I have stored it
      </button>
    </div>
  );
}

function CreateTokenForm({ onCreated }) {
  const [name, setName] = useState('');
  const [scope, setScope] = useState('client');
  const [ttl, setTtl] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const spec = { name: name.trim() || 'api token', scope };
      if (ttl.trim() !== '') spec.ttl_hours = Number(ttl);
      const created = await generateToken(spec);
      setName('');
      setTtl('');
      onCreated(created);
    } catch (err) {
      setError(err);
    }
    setBusy(false);
  };
  return (
    <form class="form token-form" onSubmit={submit} data-testid="token-form">
      <div class="field">
        <label for="token-name">Name</label>
        <input id="token-name" maxLength={64} value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="checkout-service" />
      </div>
      <div class="field">
        <label for="token-scope">Scope</label>
        <select id="token-scope" value={scope} onChange={(e) => setScope(e.currentTarget.value)}>
          <option value="client">client (decisions and rewards only)</option>
          <option value="admin">admin (everything)</option>
        </select>
      </div>
      <div class="field">
        <label for="token-ttl">Lifetime (hours)</label>
        <input
          id="token-ttl"
          type="number"
          min={0}
          step="any"
          inputMode="decimal"
          value={ttl}
          onInput={(e) => setTtl(e.currentTarget.value)}
          placeholder="server default"
          aria-describedby="token-ttl-help"
        />
        <p id="token-ttl-help" class="small muted">
          0: never expires. Empty: the server's default (SCOUT_TOKEN_TTL_HOURS, 24 h unless changed).
        </p>
      </div>
      <div class="form-actions">
        <button type="submit" class="btn btn-primary" disabled={busy}>
          {busy ? 'Creating…' : 'Create token'}
        </button>
      </div>
      <ErrorBox error={error} title="The token was not created:" />
    </form>
  );
}

export function TokensCard({ onTokensChanged }) {
  const tokens = usePoll((signal) => listTokens({ signal }), 0);
  const [created, setCreated] = useState(null);
  const [revoking, setRevoking] = useState(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);

  const changed = () => {
    tokens.refresh();
    onTokensChanged?.();
  };
  const revoke = async () => {
    setBusy(true);
    setError(null);
    try {
      await revokeToken(revoking.id);
      setRevoking(null);
      changed();
    } catch (e) {
      setError(e);
    }
    setBusy(false);
  };

  return (
    <section class="card" aria-labelledby="tokens-h" data-testid="tokens-card">
      <h2 id="tokens-h">Tokens</h2>
      {created ? (
        <NewSecret created={created} onDismiss={() => setCreated(null)} />
      ) : (
        <CreateTokenForm
          onCreated={(t) => {
            setCreated(t);
            changed();
          }}
        />
      )}
      <h3>Existing tokens</h3>
      <ErrorBox error={tokens.error} title="Could not list the tokens:" />
      {tokens.data && tokens.data.length === 0 && <p class="muted">No tokens yet.</p>}
      {tokens.data && tokens.data.length > 0 && (
        <div class="table-wrap">
          <table class="table" data-testid="token-table">
            <caption class="sr-only">Tokens (metadata only; secrets are never shown again)</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Scope</th>
                <th scope="col">State</th>
                <th scope="col">Fingerprint</th>
                <th scope="col">Expires</th>
                <th scope="col">Last used</th>
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {tokens.data.map((t) => (
                <tr key={t.id} data-token-id={t.id}>
                  <th scope="row">{t.name}</th>
                  <td>{t.scope}</td>
                  <td>
                    <span class={`badge ${t.state === 'active' ? 'badge-learning' : 'badge-muted'}`}>{t.state}</span>
                  </td>
                  <td>
                    <code>{t.fingerprint}</code>
                  </td>
                  <td>{t.expires_at ? formatTime(t.expires_at) : 'never'}</td>
                  <td>{t.last_used_at ? formatTime(t.last_used_at) : 'never'}</td>
                  <td>
                    {t.id === 'bootstrap' ? (
                      <span class="small muted">from SCOUT_AUTH_TOKEN</span>
                    ) : t.state === 'active' || t.state === 'rotated' ? (
                      <button type="button" class="btn btn-small btn-danger-outline" onClick={() => setRevoking(t)} aria-label={`Revoke token ${t.name}`}>
                        Revoke
                      </button>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <ConfirmDialog
        open={Boolean(revoking)}
        title={`Revoke token “${revoking?.name}”?`}
        confirmLabel="Revoke"
        danger
        busy={busy}
        onConfirm={revoke}
        onCancel={() => {
          setRevoking(null);
          setError(null);
        }}
      >
        <p>
          Requests carrying it are refused from now on (fingerprint <code>{revoking?.fingerprint}</code>, scope {revoking?.scope}). This cannot be
          undone.
        </p>
        <ErrorBox error={error} />
      </ConfirmDialog>
    </section>
  );
}
