/** Calls to the control plane with the tab's API key, and the tab's session. */

export type Role = 'viewer' | 'operator' | 'admin';
const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };
export const allows = (have: Role, need: Role) => RANK[have] >= RANK[need];

const KEY = 'fleet.apiKey';
/** The key lives in sessionStorage: for this tab only, gone when it closes. */
export const storedKey = () => sessionStorage.getItem(KEY) ?? '';
export const storeKey = (key: string) => sessionStorage.setItem(KEY, key);
export const forgetKey = () => sessionStorage.removeItem(KEY);

/** Where the API and the WebSocket streams are: config.json (the stack's outputs on AWS), else this origin. */
export const endpoints = { apiUrl: '', wsUrl: '' };
export async function loadEndpoints(): Promise<void> {
  try {
    const res = await fetch('config.json', { cache: 'no-store' });
    if (res.ok) Object.assign(endpoints, (await res.json()) as Partial<typeof endpoints>);
    // The stack's ApiUrl ends with a slash; paths start with one.
    endpoints.apiUrl = endpoints.apiUrl.replace(/\/+$/, '');
  } catch {
    // Same origin.
  }
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

interface Issue {
  loc?: (string | number)[];
  msg?: string;
}

/** The message of any of the API's error shapes (FastAPI `detail`, `{error: {message}}`, `{error}`). */
function errorMessage(data: unknown, status: number): string {
  if (data && typeof data === 'object') {
    const d = data as { detail?: unknown; error?: unknown; message?: unknown };
    if (typeof d.detail === 'string') return d.detail;
    if (Array.isArray(d.detail))
      return (d.detail as Issue[])
        .map((i) => `${(i.loc ?? []).slice(1).join('.') || 'body'}: ${i.msg}`)
        .join('; ');
    if (d.error && typeof d.error === 'object' && 'message' in d.error) return String(d.error.message);
    if (typeof d.error === 'string') return d.error;
    if (typeof d.message === 'string') return d.message;
  }
  if (typeof data === 'string' && data) return data.slice(0, 200);
  return `HTTP ${status}`;
}

/** A 202: agents have not answered yet; these commands settle later. */
export interface Pending {
  status: 'pending';
  pending_commands: string[];
}
export const isPending = (x: unknown): x is Pending =>
  !!x &&
  typeof x === 'object' &&
  (x as Pending).status === 'pending' &&
  Array.isArray((x as Pending).pending_commands);

export async function api<T = unknown>(
  method: string,
  path: string,
  body?: unknown,
  key = storedKey(),
): Promise<T> {
  return (await send<T>(method, path, body, key)).data;
}

async function send<T>(
  method: string,
  path: string,
  body: unknown,
  key: string,
): Promise<{ data: T; headers: Headers }> {
  const headers: Record<string, string> = {};
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(endpoints.apiUrl + path, {
      method,
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch {
    throw new ApiError(0, 'The control plane cannot be reached');
  }
  const text = await res.text();
  let data: unknown = undefined;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = text;
  }
  if (!res.ok) throw new ApiError(res.status, errorMessage(data, res.status));
  return { data: data as T, headers: res.headers };
}

/**
 * Items per page of the fleet listings: 1,000 (the API's most), or the page's `?page_size=`
 * (1-1000), so a small fleet can be walked page by page.
 */
export function pageSize(): number {
  const asked = Number(new URLSearchParams(location.search).get('page_size'));
  return Number.isInteger(asked) && asked >= 1 && asked <= 1000 ? asked : 1000;
}

/**
 * One page of a paged listing: `field` of the body (`nodes`, `workers`), or the body itself (an
 * array) when null; the next cursor is the body's `next_cursor` or the `X-Next-Cursor` header.
 */
export async function apiPage<T>(
  path: string,
  field: string | null,
  cursor: string | null,
): Promise<{ items: T[]; next: string | null }> {
  const q = new URLSearchParams({ limit: String(pageSize()) });
  if (cursor) q.set('cursor', cursor);
  const { data, headers } = await send<Record<string, unknown> | T[]>(
    'GET',
    `${path}${path.includes('?') ? '&' : '?'}${q}`,
    undefined,
    storedKey(),
  );
  const body = data as Record<string, unknown>;
  const items = (field === null ? data : body[field]) as T[];
  const next = field === null ? headers.get('x-next-cursor') : (body.next_cursor as string | null);
  return { items, next: next || null };
}

export interface Who {
  name: string;
  key_id: string | null;
  role: Role;
  auth: boolean;
}
export const whoami = (key: string) => api<Who>('GET', '/api/whoami', undefined, key);

/** `ws(s)://` URL of a stream, in the single-URL form both runtimes accept. */
export function streamUrl(channel: string, extra: Record<string, string> = {}): string {
  const base = endpoints.wsUrl || `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`;
  const q = new URLSearchParams({ channel, ...extra });
  const key = storedKey();
  if (key) q.set('token', key);
  return `${base}?${q}`;
}
