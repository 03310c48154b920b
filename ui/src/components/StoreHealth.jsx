// StoreHealth.jsx — the store's health (GET /admin/redis_health) and readiness (GET /readyz)
// as a compact status strip.
import { formatDuration, formatInt } from '../format.js';
import { ErrorBox } from './ErrorBox.jsx';

export function StoreHealth({ health, ready, error }) {
  const storeOk = health?.redis_healthy;
  const kind = health ? (health.store === 'embedded' ? 'embedded' : `Redis ${health.redis_host}:${health.redis_port}`) : 'store';
  return (
    <section class="health" aria-label="Store health" data-testid="store-health">
      <div class="health-item">
        <span class={`dot ${ready ? (ready.ready ? 'dot-ok' : 'dot-bad') : ''}`} aria-hidden="true" />
        <span>
          Readiness: <strong>{ready ? (ready.ready ? 'ready' : `not ready (${ready.status})`) : '…'}</strong>
        </span>
      </div>
      {health && (
        <div class="health-item">
          <span class={`dot ${storeOk ? 'dot-ok' : 'dot-bad'}`} aria-hidden="true" />
          <span>
            Store ({kind}): <strong>{storeOk ? 'healthy' : health.store_status || 'unreachable'}</strong>
          </span>
        </div>
      )}
      {health && (
        <div class="health-item">
          <span>
            Decisions waiting for a reward: <strong>{formatInt(health.context_keys_count)}</strong>
          </span>
        </div>
      )}
      {health && (
        <div class="health-item">
          <span>
            Decisions kept for: <strong>{formatDuration(health.ttl_seconds)}</strong>
          </span>
        </div>
      )}
      {error?.status === 403 ? (
        <div class="health-item small" data-testid="health-forbidden">
          Store health: this token's scope does not allow administration endpoints (admin tokens only).
        </div>
      ) : (
        error && <ErrorBox error={error} title="Store health unavailable." />
      )}
    </section>
  );
}
