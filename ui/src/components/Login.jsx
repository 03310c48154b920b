// Login.jsx — the sign-in panel shown when the API answers 401 (protection is on): asks for a
// token once, tries it against the server, keeps it in sessionStorage (this tab only).
import { useEffect, useRef, useState } from 'preact/hooks';
import { checkToken, setToken } from '../api.js';

export function Login({ notice }) {
  const [token, setValue] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const input = useRef(null);
  useEffect(() => input.current?.focus(), []);

  const submit = async (e) => {
    e.preventDefault();
    const t = token.trim();
    if (!t) {
      setError('Paste a token first.');
      return;
    }
    setBusy(true);
    setError('');
    try {
      await checkToken(t); // 'ok' (admin) or 'limited' (client scope): both are valid tokens
      setToken(t);
    } catch (err) {
      if (err.status === 401) setError('This token was refused: it is unknown, expired or revoked. Check it and try again.');
      else if (err.status === 429)
        setError(`Too many failed attempts from this address${err.retryAfter ? `: wait ${err.retryAfter} s` : ''} before trying again.`);
      else setError(err.detail || String(err));
      setBusy(false);
      input.current?.focus();
    }
  };

  return (
    <section class="login card" aria-labelledby="login-title" data-testid="login-panel">
      <h1 id="login-title">Sign in</h1>
      <p>
        This Scout server requires an access token (API protection is on). Paste an <strong>admin</strong> token: one created on the
        Admin page, with <code>scoutd token create</code>, or the server's <code>SCOUT_AUTH_TOKEN</code>.
      </p>
      {notice && (
        <p class="alert alert-warn" role="status">
          {notice}
        </p>
      )}
      <form onSubmit={submit} class="form">
        <div class="field">
          <label for="login-token">Access token</label>
          <input
            id="login-token"
            ref={input}
            type="password"
            autocomplete="off"
            spellcheck={false}
            value={token}
            onInput={(e) => setValue(e.currentTarget.value)}
            aria-describedby="login-help"
            aria-invalid={error ? 'true' : undefined}
          />
          <p id="login-help" class="small muted">
            Kept in this browser tab only (sessionStorage) and sent as <code>Authorization: Bearer …</code> with every request.
          </p>
        </div>
        {error && (
          <p class="alert alert-error" role="alert" data-testid="login-error">
            {error}
          </p>
        )}
        <button type="submit" class="btn btn-primary" disabled={busy}>
          {busy ? 'Checking…' : 'Sign in'}
        </button>
      </form>
    </section>
  );
}
