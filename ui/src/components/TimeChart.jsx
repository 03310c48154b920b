// TimeChart.jsx — a trail of per-bucket counts by variant as stacked columns, either in counts
// ("decisions over time" from request_trail, "rewards over time" from reward_trail) or
// normalised per bucket ("traffic share over time").
import { formatClock, formatInt, formatNum, variantColor } from '../format.js';
import { niceScale } from '../scale.js';

/**
 * trail: [{time_bucket, [field]: {label: n}, total}]; variants: labels in id order; field: the
 * per-label counts ("frequency" of request_trail, "rewards" of reward_trail); noun: what is
 * counted; sums: optional per-label sums shown beside the counts ("reward_sum").
 */
export function TimeChart({ trail, variants, mode = 'count', title, testid, field = 'frequency', noun = 'decisions', sums }) {
  const buckets = trail || [];
  const n = buckets.length;
  const counts = (b) => b[field] || {};
  const totals = buckets.map((b) => b.total ?? Object.values(counts(b)).reduce((s, x) => s + x, 0));
  const sum = totals.reduce((s, x) => s + x, 0);
  const max = Math.max(1, ...totals);
  const sumTotal = sums ? buckets.reduce((s, b) => s + (b.total_sum || 0), 0) : undefined;
  const { hi, ticks } = mode === 'share' ? { hi: 1, ticks: [0, 0.5, 1] } : niceScale(0, max, 3);
  const busiest = totals.indexOf(Math.max(...totals));
  const summary =
    sum === 0
      ? `${title}: no ${noun} in this window.`
      : `${title}: ${formatInt(sum)} ${noun}${sums ? ` summing to ${formatNum(sumTotal)}` : ''} in ${n} buckets; busiest bucket at ${formatClock(buckets[busiest]?.time_bucket)} with ${formatInt(totals[busiest])}.`;
  const cell = (b, v) => {
    const c = formatInt(counts(b)[String(v)] || 0);
    return sums ? `${v} ${c} (sum ${formatNum(b[sums]?.[String(v)] || 0)})` : `${v} ${c}`;
  };
  const tickLabel = (t) => (mode === 'share' ? `${Math.round(t * 100)}%` : formatInt(t));
  const label = (i) => (buckets[i] ? formatClock(buckets[i].time_bucket) : '');
  return (
    <figure class="chart time-chart" data-testid={testid} data-total={sum} data-sum={sumTotal} data-buckets={n}>
      <div class="tchart">
        <div class="tchart-yaxis" aria-hidden="true">
          {ticks.map((t) => (
            <span key={t} style={{ bottom: `${(t / hi) * 100}%` }}>
              {tickLabel(t)}
            </span>
          ))}
        </div>
        <svg class="tchart-plot" viewBox={`0 0 ${Math.max(1, n)} 100`} preserveAspectRatio="none" role="img" aria-label={summary}>
          {ticks.map((t) => (
            <line key={t} x1="0" x2={n} y1={100 - (t / hi) * 100} y2={100 - (t / hi) * 100} class="tchart-grid" vector-effect="non-scaling-stroke" />
          ))}
          {buckets.map((b, i) => {
            const total = totals[i];
            if (!total) return null;
            let y = 100;
            return (
              <g key={b.time_bucket} data-total={total}>
                <title>{`${formatClock(b.time_bucket)}: ${variants.map((v) => cell(b, v)).join(', ')}`}</title>
                {variants.map((v, vi) => {
                  const c = counts(b)[String(v)] || 0;
                  if (!c) return null;
                  const h = mode === 'share' ? (c / total) * 100 : (c / hi) * 100;
                  y -= h;
                  return <rect key={String(v)} x={i + 0.08} width={0.84} y={y} height={h} fill={variantColor(vi)} />;
                })}
              </g>
            );
          })}
        </svg>
      </div>
      <div class="tchart-xaxis small muted" aria-hidden="true">
        <span>{label(0)}</span>
        <span>{label(Math.floor((n - 1) / 2))}</span>
        <span>{label(n - 1)}</span>
      </div>
      <figcaption class="small muted">{summary}</figcaption>
    </figure>
  );
}
