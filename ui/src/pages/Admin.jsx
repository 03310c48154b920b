// Admin.jsx — administration: API protection, tokens, test defaults and store health. A token
// without admin scope gets one clear 403 explanation instead of four broken cards.
import { getProtection, readiness, storeHealth } from '../api.js';
import { ErrorBox } from '../components/ErrorBox.jsx';
import { ModelConfigCard } from '../components/ModelConfigCard.jsx';
import { ProtectionCard } from '../components/ProtectionCard.jsx';
import { StoreHealth } from '../components/StoreHealth.jsx';
import { TokensCard } from '../components/TokensCard.jsx';
import { usePoll } from '../poll.js';

async function loadHealth(signal) {
  const [ready, health] = await Promise.all([readiness({ signal }), storeHealth({ signal })]);
  return { ready, health };
}

export function Admin() {
  const protection = usePoll((signal) => getProtection({ signal }), 15000);
  const health = usePoll(loadHealth, 10000);
  return (
    <>
      <div class="page-head">
        <h1>Admin</h1>
      </div>
      {protection.loading && !protection.data && !protection.error && <p class="muted">Loading…</p>}
      {protection.error && <ErrorBox error={protection.error} title="Could not read the protection state:" />}
      {protection.data && (
        <>
          <div class="grid-2">
            <ProtectionCard protection={protection.data} onChange={protection.refresh} />
            <section class="card" aria-labelledby="health-h">
              <h2 id="health-h">Store health</h2>
              <StoreHealth health={health.data?.health} ready={health.data?.ready} error={health.error} />
              {health.data?.health && (
                <p class="small muted">
                  Store: {health.data.health.store || 'redis'}, status {health.data.health.store_status || (health.data.health.redis_healthy ? 'ok' : 'unreachable')}.
                  Refreshes every 10 s.
                </p>
              )}
            </section>
          </div>
          <TokensCard onTokensChanged={protection.refresh} />
          <ModelConfigCard />
        </>
      )}
    </>
  );
}
