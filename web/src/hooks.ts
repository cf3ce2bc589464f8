import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, apiPage, isPending, streamUrl } from './api.js';

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
 * A paged fleet listing (GET /api/nodes/, /workers, /api/swarm/nodes; see apiPage): its first
 * page, one more on loadMore(), or every page when `all` (pickers and lookups need the whole
 * fleet). Every `everyMs` the pages shown are read again from the first.
 */
export function usePaged<T>(path: string, field: string | null, everyMs: number, all = false): Paged<T> {
  const [items, setItems] = useState<T[]>();
  const [more, setMore] = useState(false);
  const [error, setError] = useState<string>();
  const [loading, setLoading] = useState(true);
  const [pages, setPages] = useState(1);
  const [tick, setTick] = useState(0);
  const loadMore = useCallback(() => setPages((p) => p + 1), []);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  useEffect(() => {
    let live = true;
    setLoading(true);
    const read = async () => {
      const got: T[] = [];
      let cursor: string | null = null;
      for (let n = 0; all || n < pages; n++) {
        const page: { items: T[]; next: string | null } = await apiPage<T>(path, field, cursor);
        got.push(...page.items);
        cursor = page.next;
        if (!cursor || !live) break;
      }
      if (!live) return;
      setItems(got);
      setMore(cursor !== null);
      setError(undefined);
    };
    read()
      .catch((e: unknown) => live && setError(e instanceof Error ? e.message : String(e)))
      .finally(() => live && setLoading(false));
    const timer = setTimeout(() => setTick((t) => t + 1), everyMs);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [path, field, everyMs, all, pages, tick]);
  return { items, more, error, loading, loadMore, reload };
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
