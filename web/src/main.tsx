import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import {
  ApiError,
  forgetKey,
  loadEndpoints,
  storedKey,
  storeKey,
  whoami,
  type Role,
  type Who,
} from './api.js';
import { FleetPage } from './pages/fleet.js';
import { NodePage } from './pages/node.js';
import { ServicesPage } from './pages/services.js';
import { TrainingPage } from './pages/training.js';
import { MaintenancePage, VaultPage } from './pages/more.js';
import { InferencePage } from './pages/inference.js';
import { CloudPage } from './pages/cloud.js';
import { ClustersPage } from './pages/clusters.js';
import { BuildsPage } from './pages/builds.js';
import { PendingPanel, SessionContext } from './ui.js';
import './style.css';

interface Page {
  path: string;
  title: string;
  need: Role;
}
const PAGES: Page[] = [
  { path: 'fleet', title: 'Fleet', need: 'viewer' },
  { path: 'services', title: 'Services', need: 'viewer' },
  { path: 'training', title: 'Training', need: 'viewer' },
  { path: 'inference', title: 'Inference', need: 'viewer' },
  { path: 'cloud', title: 'Cloud GPUs', need: 'viewer' },
  { path: 'maintenance', title: 'Maintenance', need: 'viewer' },
  { path: 'vault', title: 'Vault', need: 'admin' },
  { path: 'clusters', title: 'Clusters', need: 'viewer' },
  { path: 'builds', title: 'Builds', need: 'viewer' },
];
const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

/** `#/node/<id>` → ['node', '<id>']. */
function useRoute(): string[] {
  const read = () =>
    location.hash
      .replace(/^#\/?/, '')
      .split('/')
      .filter(Boolean)
      .map((s) => decodeURIComponent(s));
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const on = () => setRoute(read());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}

function SignIn({ onIn, error: initial }: { onIn: (w: Who) => void; error?: string | undefined }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState(initial);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const who = await whoami(key.trim());
      storeKey(key.trim());
      onIn(who);
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 401 ? 'That key is not valid' : (err as Error).message,
      );
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="signin">
      <form onSubmit={submit} class="card">
        <h1>GPU fleet console</h1>
        <p>Sign in with an API key. It is kept for this tab only.</p>
        <label for="api-key">API key</label>
        <input
          id="api-key"
          type="password"
          autocomplete="off"
          value={key}
          onInput={(e) => setKey(e.currentTarget.value)}
          required
        />
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        {error ? (
          <p class="error" role="alert">
            {error}
          </p>
        ) : null}
      </form>
    </main>
  );
}

function App() {
  const [who, setWho] = useState<Who>();
  const [checking, setChecking] = useState(true);
  const [error, setError] = useState<string>();
  const route = useRoute();
  useEffect(() => {
    void loadEndpoints()
      .then(() => whoami(storedKey()))
      .then(setWho)
      .catch((e: unknown) => {
        if (!(e instanceof ApiError && e.status === 401)) setError((e as Error).message);
        if (storedKey()) forgetKey();
      })
      .finally(() => setChecking(false));
  }, []);
  if (checking) return <p class="loading">Loading…</p>;
  if (!who) return <SignIn onIn={setWho} error={error} />;

  const [page = 'fleet', arg] = route;
  const allowed = PAGES.filter((p) => RANK[who.role] >= RANK[p.need]);
  const current = page === 'node' ? 'fleet' : page;
  let body;
  if (page === 'node' && arg) body = <NodePage nodeId={arg} />;
  else if (page === 'services') body = <ServicesPage />;
  else if (page === 'training') body = <TrainingPage jobId={arg} />;
  else if (page === 'inference') body = <InferencePage />;
  else if (page === 'cloud') body = <CloudPage />;
  else if (page === 'maintenance') body = <MaintenancePage />;
  else if (page === 'vault' && who.role === 'admin') body = <VaultPage />;
  else if (page === 'clusters') body = <ClustersPage clusterId={arg} />;
  else if (page === 'builds') body = <BuildsPage />;
  else body = <FleetPage />;

  return (
    <SessionContext.Provider value={who}>
      <header class="top">
        <span class="brand">GPU fleet</span>
        <nav aria-label="Pages">
          {allowed.map((p) => (
            <a key={p.path} href={`#/${p.path}`} aria-current={current === p.path ? 'page' : undefined}>
              {p.title}
            </a>
          ))}
        </nav>
        <span class="who">
          {who.name} · <span data-testid="role">{who.role}</span>
          {who.auth ? (
            <button
              type="button"
              class="link"
              onClick={() => {
                forgetKey();
                setWho(undefined);
              }}
            >
              Sign out
            </button>
          ) : (
            <span class="muted"> (API auth off)</span>
          )}
        </span>
      </header>
      <main class="page">{body}</main>
      <PendingPanel />
    </SessionContext.Provider>
  );
}

render(<App />, document.getElementById('app')!);
