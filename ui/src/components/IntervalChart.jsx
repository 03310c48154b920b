// IntervalChart.jsx — mean reward per variant with its 95% credible interval: one row per
// variant, a whisker from ci_low to ci_high and a dot at the posterior mean, on a shared axis.
import { formatNum, variantColor } from '../format.js';
import { niceScale, pct } from '../scale.js';

/** rows: [{label, index, mean, low, high, updates}] */
export function IntervalChart({ rows }) {
  const lows = rows.map((r) => r.low).filter(Number.isFinite);
  const highs = rows.map((r) => r.high).filter(Number.isFinite);
  const { lo, hi, ticks } = niceScale(Math.min(0, ...lows), Math.max(...highs, 0), 4);
  const summary = rows.map((r) => `${r.label}: ${formatNum(r.mean)} (95% interval ${formatNum(r.low)} to ${formatNum(r.high)})`).join('; ');
  return (
    <figure class="chart interval-chart" data-testid="interval-chart">
      <div class="ichart" role="img" aria-label={`Mean reward per variant with 95% credible interval. ${summary}`}>
        {rows.map((r) => (
          <div class="ichart-row" key={r.label} data-variant={r.label} data-mean={r.mean} data-updates={r.updates}>
            <div class="ichart-label" title={r.label}>
              {r.label}
            </div>
            <div class="ichart-track">
              {ticks.map((t) => (
                <span key={t} class="ichart-grid" style={{ left: `${pct(t, lo, hi)}%` }} />
              ))}
              <span
                class={`ichart-whisker ${r.updates ? '' : 'faint'}`}
                style={{ left: `${pct(r.low, lo, hi)}%`, width: `${pct(r.high, lo, hi) - pct(r.low, lo, hi)}%`, borderColor: variantColor(r.index) }}
              />
              <span class={`ichart-dot ${r.updates ? '' : 'faint'}`} style={{ left: `${pct(r.mean, lo, hi)}%`, background: variantColor(r.index) }} />
            </div>
            <div class="ichart-value num">
              {formatNum(r.mean)} <span class="muted">[{formatNum(r.low)}, {formatNum(r.high)}]</span>
            </div>
          </div>
        ))}
        <div class="ichart-row ichart-axis" aria-hidden="true">
          <div class="ichart-label" />
          <div class="ichart-track">
            {ticks.map((t) => (
              <span key={t} class="ichart-tick" style={{ left: `${pct(t, lo, hi)}%` }}>
                {formatNum(t, 2)}
              </span>
            ))}
          </div>
          <div class="ichart-value" />
        </div>
      </div>
      <figcaption class="small muted">Dot: posterior mean reward. Whisker: 95% credible interval. Faint: no rewards yet (prior only).</figcaption>
    </figure>
  );
}
