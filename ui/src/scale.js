// scale.js — axis helpers for the hand-written charts: a "nice" domain and its ticks.

function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10) * mag;
}

/** Extends [lo, hi] to round numbers and returns {lo, hi, ticks} with about `count` ticks. */
export function niceScale(lo, hi, count = 4) {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return { lo: 0, hi: 1, ticks: [0, 0.25, 0.5, 0.75, 1] };
  if (hi - lo < 1e-12) {
    const pad = Math.abs(hi) > 0 ? Math.abs(hi) * 0.5 : 1;
    lo -= lo === 0 ? 0 : pad;
    hi += pad;
  }
  const step = niceStep(hi - lo, count);
  const nlo = Math.floor(lo / step + 1e-9) * step;
  const nhi = Math.ceil(hi / step - 1e-9) * step;
  const ticks = [];
  for (let t = nlo; t <= nhi + step / 2; t += step) ticks.push(Number(t.toPrecision(12)));
  return { lo: nlo, hi: nhi, ticks };
}

/** Position of v in [lo, hi] as a percentage, clamped to [0, 100]. */
export const pct = (v, lo, hi) => Math.min(100, Math.max(0, ((v - lo) / (hi - lo || 1)) * 100));
