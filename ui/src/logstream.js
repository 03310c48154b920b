// logstream.js — useLogStream: keeps GET /logs/stream open (reconnecting after the server's
// `retry` delay), collects records into a bounded buffer (the last `max`), and supports pause:
// while paused new records wait aside and the visible list does not change. Updates are
// flushed a few times a second so a busy log cannot flood rendering.
import { useEffect, useRef, useState } from 'preact/hooks';
import { streamLogs } from './api.js';

const FLUSH_MS = 200;

function parse(raw, seq) {
  let rec;
  try {
    rec = JSON.parse(raw);
  } catch {
    rec = { msg: raw };
  }
  if (!rec || typeof rec !== 'object' || Array.isArray(rec)) rec = { msg: String(raw) };
  return { id: seq, raw, rec };
}

export function useLogStream(max = 1000) {
  const [lines, setLines] = useState([]);
  const [pending, setPending] = useState(0);
  const [paused, setPausedState] = useState(false);
  const [status, setStatus] = useState({ state: 'connecting' });
  const s = useRef({ lines: [], waiting: [], incoming: [], seen: new Set(), paused: false, seq: 0 });

  useEffect(() => {
    const st = s.current;
    let alive = true;
    let abort = null;
    let retryMs = 3000;
    let retryTimer = 0;

    const flush = () => {
      if (!st.incoming.length) return;
      const batch = st.incoming;
      st.incoming = [];
      if (st.paused) {
        st.waiting = st.waiting.concat(batch).slice(-max);
        setPending(st.waiting.length);
      } else {
        st.lines = st.lines.concat(batch).slice(-max);
        setLines(st.lines);
      }
      // Forget records that left both buffers (the set only guards against replays).
      if (st.seen.size > 4 * max) st.seen = new Set([...st.lines, ...st.waiting].map((l) => l.raw));
    };
    const flushTimer = setInterval(flush, FLUSH_MS);

    const connect = async () => {
      if (!alive) return;
      abort = new AbortController();
      setStatus({ state: 'connecting' });
      try {
        await streamLogs({
          signal: abort.signal,
          onOpen: () => setStatus({ state: 'live' }),
          onRetry: (ms) => (retryMs = ms),
          onRecord: (raw) => {
            // On reconnect the server replays its recent records: skip the ones already held.
            if (st.seen.has(raw)) return;
            st.seen.add(raw);
            st.incoming.push(parse(raw, st.seq++));
          },
        });
        if (!alive) return;
        setStatus({ state: 'reconnecting', detail: 'The server ended the stream.' });
      } catch (e) {
        if (!alive || e?.name === 'AbortError') return;
        if (e.status === 401 || e.status === 403) {
          setStatus({ state: 'refused', error: e });
          return; // a token problem: the app shows the sign-in panel or the explanation
        }
        setStatus({ state: 'reconnecting', error: e });
      }
      retryTimer = setTimeout(connect, retryMs);
    };
    connect();
    return () => {
      alive = false;
      clearInterval(flushTimer);
      clearTimeout(retryTimer);
      abort?.abort();
    };
  }, [max]);

  const setPaused = (p) => {
    const st = s.current;
    st.paused = p;
    setPausedState(p);
    if (!p && st.waiting.length) {
      st.lines = st.lines.concat(st.waiting).slice(-max);
      st.waiting = [];
      setLines(st.lines);
      setPending(0);
    }
  };
  const clear = () => {
    const st = s.current;
    st.lines = [];
    st.waiting = [];
    setLines([]);
    setPending(0);
  };

  return { lines, pending, paused, setPaused, clear, status };
}
