// RewardBars.jsx — rewards per variant: the sum of rewards as a bar, with how many rewards
// (updates) it came from and the average.
import { formatInt, formatNum, variantColor } from '../format.js';

/** rows: [{label, index, rewardSum, updates, average}] */
export function RewardBars({ rows }) {
  const max = Math.max(1e-12, ...rows.map((r) => Math.abs(r.rewardSum)));
  const summary = rows.map((r) => `${r.label}: reward sum ${formatNum(r.rewardSum)} from ${formatInt(r.updates)} rewards`).join('; ');
  return (
    <figure class="chart reward-bars" data-testid="reward-bars">
      <div class="hbars" role="img" aria-label={`Rewards per variant. ${summary}`}>
        {rows.map((r) => (
          <div class="hbar-row" key={r.label} data-variant={r.label} data-reward-sum={r.rewardSum} data-updates={r.updates}>
            <div class="hbar-label" title={r.label}>
              {r.label}
            </div>
            <div class="hbar-track">
              <span class="hbar" style={{ width: `${(Math.abs(r.rewardSum) / max) * 100}%`, background: variantColor(r.index), opacity: r.rewardSum < 0 ? 0.5 : 1 }} />
            </div>
            <div class="hbar-value num">
              {formatNum(r.rewardSum)} <span class="muted">from {formatInt(r.updates)}, avg {formatNum(r.average)}</span>
            </div>
          </div>
        ))}
      </div>
    </figure>
  );
}
