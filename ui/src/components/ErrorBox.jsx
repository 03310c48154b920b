// ErrorBox.jsx — shows a failed API call: the server's `detail`, and for 403 an explanation of
// token scopes (never swallowed), for 429 when to retry, for status 0 that the server is away.
import { switchToken } from '../api.js';

/** What a refused request was trying to do, in words. */
function action(method, path) {
  if (path.startsWith('/admin/')) return 'administration (protection, tokens, settings and store health)';
  if (path.startsWith('/logs/')) return 'reading the live log';
  if (path === '/api/models') return 'listing tests';
  if (path.startsWith('/api/model_details/')) return "reading a test's analytics";
  if (path === '/api/create_model') return 'creating tests';
  if (path.startsWith('/api/delete_model/')) return 'deleting tests';
  if (path.includes('_global_variant/')) return 'rolling out variants';
  return `${method} ${path}`;
}

export function ErrorBox({ error, title }) {
  if (!error) return null;
  const status = error.status;
  if (status === 403) {
    return (
      <div class="alert alert-error" role="alert" data-testid="forbidden">
        <p>
          <strong>Not allowed.</strong> This token's scope does not allow {action(error.method, error.path || '')}.
          Client tokens may only fetch decisions and report rewards; sign in with an admin token to use this
          page.
        </p>
        <p class="muted small">Server said (403): {error.detail}</p>
        <button type="button" class="btn" onClick={switchToken}>
          Sign in with another token
        </button>
      </div>
    );
  }
  let text = error.detail || String(error.message || error);
  if (status === 429) text = `Too many failed sign-ins from this address${error.retryAfter ? `; try again in ${error.retryAfter} s` : ''}. (${error.detail})`;
  return (
    <div class="alert alert-error" role="alert">
      {title && <strong>{title} </strong>}
      {text}
      {status > 0 && <span class="muted small"> (HTTP {status})</span>}
    </div>
  );
}
