// ShareBar.jsx — one horizontal bar split by each variant's share of recent decisions
// (prediction_ratio), with a legend giving the exact percentages.
import { formatPct, variantColor } from '../format.js';

export function ShareBar({ variants, shares, caption = 'Traffic share, recent window' }) {
  const total = variants.reduce((s, v) => s + (shares?.[String(v)] || 0), 0);
  const summary = variants.map((v) => `${v} ${formatPct(shares?.[String(v)] || 0)}`).join(', ');
  return (
    <figure class="sharebar" data-testid="share-bar">
      <figcaption class="small muted">{caption}</figcaption>
      <div class="sharebar-track" role="img" aria-label={total > 0 ? `${caption}: ${summary}` : `${caption}: no decisions yet`}>
        {total > 0 &&
          variants.map((v, i) => {
            const share = shares?.[String(v)] || 0;
            return share > 0 ? (
              <span
                key={String(v)}
                class="sharebar-seg"
                data-variant={String(v)}
                style={{ width: `${(share / total) * 100}%`, background: variantColor(i) }}
                title={`${v}: ${formatPct(share, 1)}`}
              />
            ) : null;
          })}
      </div>
      <ul class="legend">
        {variants.map((v, i) => (
          <li key={String(v)}>
            <span class="swatch" style={{ background: variantColor(i) }} aria-hidden="true" />
            <span class="legend-label">{String(v)}</span>{' '}
            <span class="num">{total > 0 ? formatPct(shares?.[String(v)] || 0) : '–'}</span>
          </li>
        ))}
      </ul>
    </figure>
  );
}
