// format.js — number, time and colour helpers shared by the pages and charts.

const intFmt = new Intl.NumberFormat('en-US');

export const formatInt = (n) => (Number.isFinite(n) ? intFmt.format(n) : '–');

/** A number with up to `digits` significant decimals, e.g. rewards and means. */
export function formatNum(n, digits = 3) {
  if (!Number.isFinite(n)) return '–';
  if (Number.isInteger(n)) return intFmt.format(n);
  const abs = Math.abs(n);
  if (abs >= 1000) return intFmt.format(Math.round(n));
  return Number(n.toPrecision(abs >= 1 ? digits + 1 : digits)).toString();
}

/** A share in [0, 1] as a percentage. */
export function formatPct(share, digits = 0) {
  if (!Number.isFinite(share)) return '–';
  return `${(share * 100).toFixed(digits)}%`;
}

/** A probability as a percentage that never rounds a possibility away ("<1%", ">99%"). */
export function formatProb(p) {
  if (!Number.isFinite(p)) return '–';
  if (p > 0 && p < 0.005) return '<1%';
  if (p < 1 && p > 0.995) return '>99%';
  return formatPct(p);
}

export function formatTime(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function formatClock(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/** How long ago, in words ("12 s ago", "3 min ago"). */
export function ago(iso, now = Date.now()) {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((now - new Date(iso).getTime()) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

// Okabe–Ito-derived palette: distinguishable with colour-vision deficiencies, and every colour
// keeps 3:1 contrast against white for chart marks.
const PALETTE = ['#0072b2', '#d55e00', '#009e73', '#cc79a7', '#8a6d00', '#56748f', '#b8336a', '#3f7f3f', '#7a5195', '#a0522d'];

export const variantColor = (index) => PALETTE[index % PALETTE.length];

/** A duration in seconds as "24 h", "90 min" or "45 s". */
export function formatDuration(seconds) {
  if (!Number.isFinite(seconds)) return '–';
  if (seconds >= 3600 && seconds % 3600 === 0) return `${formatInt(seconds / 3600)} h`;
  if (seconds >= 60 && seconds % 60 === 0) return `${formatInt(seconds / 60)} min`;
  return `${formatInt(seconds)} s`;
}
