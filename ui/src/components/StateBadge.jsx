// StateBadge.jsx — a test's state: "rolled out" (a global rollout overrides the policy),
// "warm-up" (fewer rewards than its min_updates: variants are drawn uniformly) or "learning".

/** The state of a test summary; defaultMin is /admin/model_config's min_update_requests. */
export function testState(model, defaultMin = 10) {
  if (model.global_rolled_out) return 'rolled out';
  if (typeof model.warmup === 'boolean') return model.warmup ? 'warm-up' : 'learning';
  const min = Number.isInteger(model.min_updates) ? model.min_updates : defaultMin;
  return (model.update_requests || 0) < min ? 'warm-up' : 'learning';
}

const HINTS = {
  'rolled out': 'Everyone gets one variant; learning is paused.',
  'warm-up': 'Collecting the first rewards: variants are drawn uniformly.',
  learning: 'The policy moves traffic toward the better variants.',
};

export function StateBadge({ state, variant }) {
  const cls = state === 'rolled out' ? 'badge-rollout' : state === 'warm-up' ? 'badge-warmup' : 'badge-learning';
  return (
    <span class={`badge ${cls}`} title={HINTS[state]} data-testid="state-badge">
      {state}
      {state === 'rolled out' && variant != null ? `: ${variant}` : ''}
    </span>
  );
}
