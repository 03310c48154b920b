// FeatureBreakdown.jsx — per-feature breakdown of a contextual test: for each context key, how
// decisions split by value (feature_prediction_data) and, from the contextual model, each
// variant's mean reward with its 95% interval per value (strings, booleans) or its learned
// weight per standard deviation (numbers).
import { formatInt, formatNum, formatPct } from '../format.js';

function modelFeature(contextual, name) {
  return contextual?.features?.find((f) => f.name === name) || null;
}

function ValueCell({ stats, share, best }) {
  return (
    <td class={`num ${best ? 'best' : ''}`}>
      {share != null && <span>{formatPct(share)}</span>}
      {stats && (
        <span class="cell-sub">
          mean {formatNum(stats.mean)} <span class="muted">[{formatNum(stats.ci_low)}, {formatNum(stats.ci_high)}]</span>, {formatInt(stats.rewards)} rewards
          {best && <span class="sr-only"> (most likely best)</span>}
        </span>
      )}
    </td>
  );
}

function FeatureTable({ name, variants, decisions, model }) {
  const rows = new Map();
  for (const b of decisions?.buckets || []) rows.set(b.bucket, { value: b.bucket, decision: b });
  for (const v of model?.values || []) rows.set(v.value, { ...(rows.get(v.value) || { value: v.value }), model: v });
  const kind = decisions?.type || model?.type || '';
  // Numeric bins in ascending order ("lo-hi"); other values by how often they were seen.
  const ordered = [...rows.values()].sort((a, b) =>
    kind === 'numeric' || kind === 'number'
      ? parseFloat(a.value) - parseFloat(b.value)
      : (b.decision?.total ?? 0) - (a.decision?.total ?? 0),
  );
  return (
    <section class="feature" data-testid="feature-table" data-feature={name}>
      <h4>
        <code>{name}</code> <span class="muted small">{kind}</span>
      </h4>
      {model?.type === 'number' && (
        <p class="small">
          Learned weight per standard deviation (mean {formatNum(model.mean)}, sd {formatNum(model.sd)}):{' '}
          {variants.map((v, i) => (
            <span key={String(v)}>
              {i > 0 && ', '}
              {String(v)} <span class="num">{formatNum(model.coefficients?.[String(v)] ?? NaN)}</span>
            </span>
          ))}
        </p>
      )}
      {rows.size > 0 && (
        <div class="table-wrap">
          <table class="table">
            <caption class="sr-only">Decisions and rewards by value of {name}</caption>
            <thead>
              <tr>
                <th scope="col">Value</th>
                <th scope="col" class="num">
                  Decisions
                </th>
                {variants.map((v) => (
                  <th scope="col" class="num" key={String(v)}>
                    {String(v)}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {ordered.map((r) => {
                const probs = variants.map((v) => r.model?.variants?.[String(v)]?.probability_best ?? -1);
                const bestIdx = probs.some((p) => p >= 0.5) ? probs.indexOf(Math.max(...probs)) : -1;
                return (
                  <tr key={r.value}>
                    <th scope="row">{r.value}</th>
                    <td class="num">{r.decision ? formatInt(r.decision.total) : '–'}</td>
                    {variants.map((v, i) => (
                      <ValueCell
                        key={String(v)}
                        share={r.decision ? (r.decision.ratios?.[String(v)] ?? 0) / 100 : null}
                        stats={r.model?.variants?.[String(v)]}
                        best={i === bestIdx}
                      />
                    ))}
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

export function FeatureBreakdown({ details }) {
  const decisions = details.feature_prediction_data || {};
  const contextual = details.contextual_model;
  const names = [...new Set([...Object.keys(decisions), ...(contextual?.features || []).map((f) => f.name)])];
  if (names.length === 0) return null;
  return (
    <div class="features">
      <p class="small muted">
        Share of decisions per value over the recent window; where the contextual model has learned from rewards, each variant's mean
        reward with its 95% interval. Bold: the variant most likely best for that value.
        {contextual?.dropped_values > 0 && ` ${formatInt(contextual.dropped_values)} feature values found no slot (model dimension full).`}
      </p>
      {names.map((name) => (
        <FeatureTable key={name} name={name} variants={details.variants} decisions={decisions[name]} model={modelFeature(contextual, name)} />
      ))}
    </div>
  );
}
