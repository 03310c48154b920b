// app.jsx — the shell: header and navigation, the hash router, and the sign-in gate (a 401 from
// any call replaces the page with the sign-in panel until a token is accepted).
import { useEffect, useRef, useState } from 'preact/hooks';
import { clearToken, getProtection, getToken, onAuthEvent } from './api.js';
import { Login } from './components/Login.jsx';
import { Admin } from './pages/Admin.jsx';
import { Create } from './pages/Create.jsx';
import { Dashboard } from './pages/Dashboard.jsx';
import { Logs } from './pages/Logs.jsx';
import { TestPage } from './pages/TestPage.jsx';
import { useRoute } from './router.js';

const NAV = [
  { href: '#/', label: 'Tests', match: ['dashboard', 'test'] },
  { href: '#/new', label: 'New test', match: ['create'] },
  { href: '#/admin', label: 'Admin', match: ['admin'] },
  { href: '#/logs', label: 'Logs', match: ['logs'] },
];

const TITLES = { dashboard: 'Tests', create: 'New test', test: 'Test', admin: 'Admin', logs: 'Live log', notfound: 'Not found' };

function Page({ route }) {
  switch (route.name) {
    case 'dashboard':
      return <Dashboard />;
    case 'create':
      return <Create />;
    case 'test':
      return <TestPage id={route.id} />;
    case 'admin':
      return <Admin />;
    case 'logs':
      return <Logs />;
    default:
      return (
        <section class="card">
          <h1>Page not found</h1>
          <p>
            Nothing lives at <code>#{route.path}</code>. <a href="#/">Back to the tests</a>.
          </p>
        </section>
      );
  }
}

export function App() {
  const route = useRoute();
  const [token, setTokenState] = useState(getToken);
  const [login, setLogin] = useState(null); // null, or {notice} while the sign-in panel is shown
  const [session, setSession] = useState(0); // bumped on sign-in/out: pages remount and reload
  // Without a token, one request finds out whether the server wants one before the pages load:
  // each refused request counts toward the server's per-address limit of failed sign-ins.
  const [probed, setProbed] = useState(Boolean(token));
  useEffect(() => {
    if (probed) return undefined;
    const abort = new AbortController();
    getProtection({ signal: abort.signal, quiet401: true }).then(
      () => setProbed(true),
      (e) => {
        if (e?.name === 'AbortError') return;
        if (e?.status === 401) setLogin({ notice: '' });
        setProbed(true); // anything else: the pages show it
      },
    );
    return () => abort.abort();
  }, [probed]);

  useEffect(
    () =>
      onAuthEvent((e) => {
        if (e.type === 'token') {
          setTokenState(e.token);
          if (e.token) {
            setLogin(null);
            setSession((s) => s + 1);
          }
        } else if (e.type === 'unauthorized') {
          if (e.hadToken) clearToken();
          setLogin({ notice: e.hadToken ? 'The saved token was refused (expired, revoked or for another server). Sign in again.' : '' });
        }
      }),
    [],
  );

  useEffect(() => {
    document.title = `${login ? 'Sign in' : TITLES[route.name] || 'Scout'} · Scout`;
  }, [route.name, login]);

  // Move focus to the main region on navigation (not on the first load, where the skip link
  // should stay the first stop) so keyboard and screen-reader users land there.
  const firstRender = useRef(true);
  useEffect(() => {
    if (firstRender.current) firstRender.current = false;
    else document.getElementById('main')?.focus({ preventScroll: true });
  }, [route.name, route.id]);

  const signOut = () => {
    clearToken();
    setProbed(false);
    setSession((s) => s + 1);
  };

  return (
    <>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById('main')?.focus())}>
        Skip to content
      </a>
      <header class="topbar">
        <div class="topbar-inner">
          <a class="brand" href="#/" aria-label="Scout: all tests">
            <img src="/favicon.svg" alt="" width="24" height="24" />
            <span>Scout</span>
          </a>
          {!login && (
            <nav aria-label="Main">
              <ul class="nav">
                {NAV.map((n) => (
                  <li key={n.href}>
                    <a href={n.href} aria-current={n.match.includes(route.name) ? 'page' : undefined}>
                      {n.label}
                    </a>
                  </li>
                ))}
              </ul>
            </nav>
          )}
          {token && (
            <div class="session">
              <span class="small">Signed in with a token</span>
              <button type="button" class="btn btn-small" onClick={signOut}>
                Sign out
              </button>
            </div>
          )}
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {login ? (
          <Login notice={login.notice} />
        ) : probed ? (
          <Page key={`${session}:${route.name}:${route.id || ''}`} route={route} />
        ) : (
          <p class="muted">Connecting…</p>
        )}
      </main>
    </>
  );
}
