import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, apiPage, isPending, streamUrl } from './api.js';
import { emptyListing, mergePage, withNextPage, type Listing } from './listing.js';

export interface Loaded<T> {
  data: T | undefined;
  error: string | undefined;
  loading: boolean;
  reload: () => void;
}

/** GET `path` now, again every `everyMs` (when given) and on reload(). */
export function useApi<T>(path: string | null, everyMs?: number): Loaded<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<string>();
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  useEffect(() => {
    if (path === null) return;
    let live = true;
    setLoading(true);
    api<T>('GET', path)
      .then((d) => live && (setData(d), setError(undefined)))
      .catch((e: unknown) => live && setError(e instanceof Error ? e.message : String(e)))
      .finally(() => live && setLoading(false));
    const timer = everyMs ? setTimeout(() => setTick((t) => t + 1), everyMs) : undefined;
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [path, tick, everyMs]);
  return { data, error, loading, reload };
}

export interface Paged<T> {
  /** Every item of the pages read so far; undefined until the first page comes. */
  items: T[] | undefined;
  /** Whether the listing has pages not read yet. */
  more: boolean;
  error: string | undefined;
  loading: boolean;
  loadMore: () => void;
  reload: () => void;
}

/**
 * A paged fleet listing (GET /api/nodes/, /workers, /api/swarm/nodes; see apiPage), sorted by
 * `by` (the node's name): its first page, and one more on loadMore() (pickers search by name
 * instead: node-search.tsx). Every `everyMs`, and on reload(), it reads two pages
 * however many are loaded: the first, and one of the others in turn, each put in place of the rows
 * it now covers (listing.ts). Live figures come from the streams; the rows' other fields are at
 * most as old as one turn through the pages. A null `path` reads nothing.
 */
export function usePaged<T>(
  path: string | null,
  field: string | null,
  by: (row: T) => string,
  everyMs: number,
): Paged<T> {
  const [listing, setListing] = useState<Listing<T>>();
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(0);
  const control = useRef<{ more: () => void; refresh: () => void } | undefined>(undefined);
  const key = useRef(by);
  key.current = by;
  useEffect(() => {
    let live = true;
    let current = emptyListing<T>();
    let turn = 0;
    let chain = Promise.resolve();
    let refreshQueued = false;
    let pending = 0;
    setListing(undefined);
    if (path === null) return;
    const read = async (l: Listing<T>, k: number) =>
      mergePage(l, k, await apiPage<T>(path, field, l.starts[k]!.cursor), key.current);
    const next = async () => {
      if (!current.end) return;
      const { listing: l, page } = withNextPage(current, current.end);
      current = await read(l, page);
    };
    const refresh = async () => {
      if (!current.starts.length) return next();
      current = await read(current, 0);
      if (current.starts.length > 1) current = await read(current, 1 + (turn++ % (current.starts.length - 1)));
    };
    // One read at a time, each merged into what the previous one left.
    const run = (op: () => Promise<void>) => {
      setBusy(++pending);
      chain = chain.then(async () => {
        try {
          if (!live) return;
          await op();
          if (live) setError(undefined);
        } catch (e) {
          if (live) setError(e instanceof Error ? e.message : String(e));
        } finally {
          pending--;
          if (live) {
            // Nothing read yet (the first read failed): no rows to show.
            if (current.starts.length) setListing(current);
            setBusy(pending);
          }
        }
      });
    };
    // Refreshes asked for while one waits (a burst of events) are one.
    const refreshOnce = () => {
      if (refreshQueued) return;
      refreshQueued = true;
      run(async () => {
        refreshQueued = false;
        await refresh();
      });
    };
    control.current = { more: () => run(next), refresh: refreshOnce };
    run(next);
    const timer = setInterval(refreshOnce, everyMs);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [path, field, everyMs]);
  const loadMore = useCallback(() => control.current?.more(), []);
  const reload = useCallback(() => control.current?.refresh(), []);
  return {
    items: listing?.rows,
    more: listing ? listing.end !== null : false,
    error,
    loading: busy > 0 || (listing === undefined && error === undefined),
    loadMore,
    reload,
  };
}

/** The latest frame of a WebSocket stream (`metrics`, `doctor`), reconnecting after a drop. */
export function useStream<T>(channel: string, extra: Record<string, string> = {}, onFrame?: (f: T) => void) {
  const [frame, setFrame] = useState<T>();
  const [connected, setConnected] = useState(false);
  const handler = useRef(onFrame);
  handler.current = onFrame;
  const extraKey = JSON.stringify(extra);
  useEffect(() => {
    let ws: WebSocket | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let closed = false;
    const open = () => {
      ws = new WebSocket(streamUrl(channel, JSON.parse(extraKey) as Record<string, string>));
      ws.onopen = () => setConnected(true);
      ws.onmessage = (m) => {
        try {
          const f = JSON.parse(String(m.data)) as T;
          setFrame(f);
          handler.current?.(f);
        } catch {
          // not JSON: ignored
        }
      };
      ws.onclose = () => {
        setConnected(false);
        if (!closed) timer = setTimeout(open, 3000);
      };
    };
    open();
    return () => {
      closed = true;
      clearTimeout(timer);
      ws?.close();
    };
  }, [channel, extraKey]);
  return { frame, connected };
}

// ------------------------------------------------------------ pending commands

export interface Command {
  command_id: string;
  node_id: string;
  type: string;
  status: 'pending' | 'succeeded' | 'failed';
  error: string | null;
}
export interface Tracked {
  id: string;
  action: string;
  status: 'pending' | 'succeeded' | 'failed';
  type?: string;
  error?: string | null;
}

type Listener = (t: Tracked[]) => void;
let tracked: Tracked[] = [];
const listeners = new Set<Listener>();
const publish = () => listeners.forEach((l) => l([...tracked]));

async function follow(id: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    try {
      const c = await api<Command>('GET', `/commands/${encodeURIComponent(id)}`);
      tracked = tracked.map((t) =>
        t.id === id ? { ...t, status: c.status, type: c.type, error: c.error } : t,
      );
      publish();
      if (c.status !== 'pending') return;
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Shows the commands of a 202 answer until each settles. Returns whether the answer was one. */
export function trackPending(action: string, answer: unknown): boolean {
  if (!isPending(answer)) return false;
  for (const id of answer.pending_commands) {
    tracked = [{ id, action, status: 'pending' as const }, ...tracked].slice(0, 20);
    void follow(id);
  }
  publish();
  return true;
}

export function usePending(): Tracked[] {
  const [list, setList] = useState<Tracked[]>(tracked);
  useEffect(() => {
    listeners.add(setList);
    return () => void listeners.delete(setList);
  }, []);
  return list;
}

/** Runs an action for a button: busy while it runs, its error kept for display. */
export function useAction() {
  const [busy, setBusy] = useState<string>();
  const [error, setError] = useState<string>();
  const [note, setNote] = useState<string>();
  const run = useCallback(
    async (label: string, fn: () => Promise<unknown>, done?: (out: unknown) => void) => {
      setBusy(label);
      setError(undefined);
      setNote(undefined);
      try {
        const out = await fn();
        if (trackPending(label, out)) setNote(`${label}: waiting for the agents (see Pending commands)`);
        done?.(out);
      } catch (e) {
        setError(`${label}: ${e instanceof Error ? e.message : String(e)}`);
      } finally {
        setBusy(undefined);
      }
    },
    [],
  );
  return { busy, error, note, run };
}
