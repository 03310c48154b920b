// Logs.jsx — the live log (GET /logs/stream, read with fetch so the token is sent): level filter,
// text search, pause/resume, and a bounded buffer of the last 1000 records.
import { Fragment } from 'preact';
import { useLayoutEffect, useRef, useState } from 'preact/hooks';
import { ErrorBox } from '../components/ErrorBox.jsx';
import { formatInt } from '../format.js';
import { useLogStream } from '../logstream.js';

const MAX_LINES = 1000;
const LEVELS = ['debug', 'info', 'warn', 'error'];
const rank = (level) => {
  const i = LEVELS.indexOf(String(level).toLowerCase());
  return i < 0 ? 1 : i;
};
const HIDDEN_FIELDS = new Set(['time', 'level', 'msg']);

function clock(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso ?? '');
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

function fieldText(v) {
  if (typeof v === 'number' && !Number.isInteger(v)) return String(Number(v.toFixed(3)));
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function LogLine({ rec }) {
  const level = String(rec.level || 'info').toLowerCase();
  const extras = Object.entries(rec).filter(([k]) => !HIDDEN_FIELDS.has(k));
  return (
    <li class={`log-line level-${level}`} data-level={level}>
      <time class="log-time" dateTime={rec.time} title={rec.time}>
        {clock(rec.time)}
      </time>
      <span class={`log-level lvl-${level}`}>{level}</span>
      <span class="log-msg">{String(rec.msg ?? '')}</span>
      {extras.map(([k, v]) => (
        <Fragment key={k}>
          {' '}
          <span class="log-field">
            <span class="log-key">{k}=</span>
            {fieldText(v)}
          </span>
        </Fragment>
      ))}
    </li>
  );
}

const STATUS_TEXT = { connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…', refused: 'Refused' };

export function Logs() {
  const { lines, pending, paused, setPaused, clear, status } = useLogStream(MAX_LINES);
  const [level, setLevel] = useState('debug');
  const [query, setQuery] = useState('');
  const box = useRef(null);
  const atBottom = useRef(true);

  const q = query.trim().toLowerCase();
  const min = rank(level);
  const shown = lines.filter((l) => rank(l.rec.level) >= min && (!q || l.raw.toLowerCase().includes(q)));

  // Follow the newest line while the view is scrolled to the bottom.
  useLayoutEffect(() => {
    const el = box.current;
    if (el && atBottom.current) el.scrollTop = el.scrollHeight;
  }, [shown.length, lines]);
  const onScroll = () => {
    const el = box.current;
    atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
  };

  return (
    <>
      <div class="page-head">
        <h1>Live log</h1>
        <span class={`conn conn-${status.state}`} role="status" data-testid="log-status">
          <span class="dot" aria-hidden="true" /> {STATUS_TEXT[status.state]}
        </span>
      </div>
      {status.state === 'refused' && <ErrorBox error={status.error} />}
      {status.state === 'reconnecting' && status.error && <ErrorBox error={status.error} title="The log stream dropped; retrying." />}
      <form class="card log-controls" onSubmit={(e) => e.preventDefault()} role="search" aria-label="Filter the log">
        <div class="field">
          <label for="log-level">Minimum level</label>
          <select id="log-level" value={level} onChange={(e) => setLevel(e.currentTarget.value)}>
            {LEVELS.map((l) => (
              <option key={l} value={l}>
                {l}
              </option>
            ))}
          </select>
        </div>
        <div class="field grow">
          <label for="log-search">Search</label>
          <input id="log-search" type="search" value={query} onInput={(e) => setQuery(e.currentTarget.value)} placeholder="route, status, model id…" />
        </div>
        <div class="log-buttons">
          <button type="button" class="btn" onClick={() => setPaused(!paused)} aria-pressed={paused} data-testid="log-pause">
            {paused ? 'Resume' : 'Pause'}
          </button>
          <button type="button" class="btn" onClick={clear}>
            Clear
          </button>
        </div>
      </form>
      <p class="small muted" data-testid="log-count">
        Showing {formatInt(shown.length)} of {formatInt(lines.length)} lines (the last {formatInt(MAX_LINES)} are kept).
        {paused && <strong class="paused-note"> Paused: {formatInt(pending)} new lines waiting.</strong>}
      </p>
      <ol class="log" ref={box} onScroll={onScroll} tabIndex={0} aria-label="Log records, oldest first" data-testid="log-lines">
        {shown.map((l) => (
          <LogLine key={l.id} rec={l.rec} />
        ))}
        {shown.length === 0 && <li class="log-empty muted">{lines.length ? 'No line matches the filter.' : 'Waiting for log records…'}</li>}
      </ol>
      <p class="small muted">
        The server logs refusals, errors and events (tests created or deleted, rollouts, tokens) at info; every request only when started
        with <code>SCOUT_LOG_LEVEL=debug</code>.
      </p>
    </>
  );
}
