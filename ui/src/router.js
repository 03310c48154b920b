// router.js — hash routing (#/, #/new, #/tests/<id>, #/admin, #/logs): the server answers any
// path with index.html, and the hash keeps every view reachable by URL without server routes.
import { useEffect, useState } from 'preact/hooks';

/** Parses location.hash into {name, id?}. */
export function parseRoute(hash = location.hash) {
  const path = hash.replace(/^#/, '') || '/';
  const parts = path.split('/').filter(Boolean);
  if (parts.length === 0) return { name: 'dashboard' };
  if (parts[0] === 'new' && parts.length === 1) return { name: 'create' };
  if (parts[0] === 'tests' && parts.length === 2) return { name: 'test', id: decodeURIComponent(parts[1]) };
  if (parts[0] === 'admin' && parts.length === 1) return { name: 'admin' };
  if (parts[0] === 'logs' && parts.length === 1) return { name: 'logs' };
  return { name: 'notfound', path };
}

export function useRoute() {
  const [route, setRoute] = useState(() => parseRoute());
  useEffect(() => {
    const update = () => setRoute(parseRoute());
    addEventListener('hashchange', update);
    return () => removeEventListener('hashchange', update);
  }, []);
  return route;
}

export function navigate(hash) {
  location.hash = hash;
}

export const testHref = (id) => `#/tests/${encodeURIComponent(id)}`;
