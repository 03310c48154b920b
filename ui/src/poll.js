// poll.js — usePoll: loads data now and then again every `interval` ms, never overlapping
// (the next load is scheduled only after the previous one finished: /api/models and
// /api/model_details scan recent decisions and may be slow on large tests). Loads pause while
// the tab is hidden and stop when the component unmounts (the request in flight is aborted).
// Answers that asking again cannot change (401, 403, 404) stop the polling; refresh() resumes it.
import { useEffect, useRef, useState } from 'preact/hooks';

const FINAL = new Set([401, 403, 404]);

export function usePoll(load, interval, deps = []) {
  const [state, setState] = useState({ data: undefined, error: null, loading: true });
  const loadRef = useRef(load);
  loadRef.current = load;
  const runRef = useRef(() => {});

  useEffect(() => {
    // One poller per mount (and per change of deps); its flags are private to this closure.
    let alive = true;
    let busy = false;
    let again = false;
    let stale = false;
    let timer = 0;
    let abort = null;
    setState({ data: undefined, error: null, loading: true });

    const run = async () => {
      if (!alive) return;
      if (busy) {
        again = true; // a refresh asked for while loading: run once more right after
        return;
      }
      clearTimeout(timer);
      busy = true;
      abort = new AbortController();
      let final = false;
      try {
        const data = await loadRef.current(abort.signal);
        if (alive) setState({ data, error: null, loading: false });
      } catch (error) {
        if (alive && error?.name !== 'AbortError') setState((s) => ({ data: s.data, error, loading: false }));
        final = FINAL.has(error?.status);
      }
      busy = false;
      if (!alive) return;
      if (again) {
        again = false;
        run();
      } else if (interval > 0 && !final) {
        timer = setTimeout(() => {
          if (document.hidden) stale = true;
          else run();
        }, interval);
      }
    };
    const onVisible = () => {
      if (!document.hidden && stale) {
        stale = false;
        run();
      }
    };
    runRef.current = run;
    document.addEventListener('visibilitychange', onVisible);
    run();
    return () => {
      alive = false;
      clearTimeout(timer);
      abort?.abort();
      document.removeEventListener('visibilitychange', onVisible);
    };
  }, deps); // eslint-disable-line react-hooks/exhaustive-deps

  return { ...state, refresh: () => runRef.current() };
}
