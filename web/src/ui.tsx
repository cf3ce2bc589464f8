import { createContext, type ComponentChildren } from 'preact';
import { useContext } from 'preact/hooks';
import { allows, type Role, type Who } from './api.js';
import { usePending } from './hooks.js';

export const SessionContext = createContext<Who>({ name: '', key_id: null, role: 'viewer', auth: true });
export const useSession = () => useContext(SessionContext);

/** Renders its children only for a key whose role allows `need`: what a role may not do is not offered. */
export function Can({ need, children }: { need: Role; children: ComponentChildren }) {
  const who = useSession();
  return allows(who.role, need) ? <>{children}</> : null;
}

export const fmt = (n: number | null | undefined, unit = '%', digits = 0) =>
  n === null || n === undefined || Number.isNaN(n) ? '–' : `${n.toFixed(digits)}${unit}`;

/** A percentage as a bar with its number; amber at 75, red at 90. */
export function Meter({ value, label }: { value: number | null | undefined; label: string }) {
  const v = value ?? 0;
  const level = v >= 90 ? 'high' : v >= 75 ? 'mid' : 'low';
  return (
    <span class="meter" title={`${label} ${fmt(value, '%', 1)}`}>
      <span class={`meter-bar ${level}`} style={{ width: `${Math.min(100, Math.max(0, v))}%` }} />
      <span class="meter-text">{fmt(value)}</span>
    </span>
  );
}

export function Status({ value }: { value: string }) {
  return <span class={`status status-${value.toLowerCase().replace(/[^a-z]/g, '')}`}>{value}</span>;
}

export function ErrorNote({ error }: { error?: string | undefined }) {
  return error ? (
    <p class="error" role="alert">
      {error}
    </p>
  ) : null;
}

export function Note({ text }: { text?: string | undefined }) {
  return text ? (
    <p class="note" role="status">
      {text}
    </p>
  ) : null;
}

export function Section({
  title,
  children,
  actions,
}: {
  title: string;
  children: ComponentChildren;
  actions?: ComponentChildren;
}) {
  return (
    <section class="card" aria-label={title}>
      <header class="card-head">
        <h2>{title}</h2>
        {actions}
      </header>
      {children}
    </section>
  );
}

export function Empty({ text }: { text: string }) {
  return <p class="empty">{text}</p>;
}

const cell = (v: unknown): string => {
  if (v === null || v === undefined || v === '') return '–';
  if (Array.isArray(v)) return v.map(cell).join(', ');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
};

/** A plain table of records: the listed columns, or every key of the first row. */
export function Records({
  rows,
  columns,
  empty,
}: {
  rows: Record<string, unknown>[] | undefined;
  columns?: string[];
  empty: string;
}) {
  if (!rows?.length) return <Empty text={empty} />;
  const cols = columns ?? Object.keys(rows[0]!);
  return (
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            {cols.map((c) => (
              <th scope="col" key={c}>
                {c.replace(/_/g, ' ')}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((r, i) => (
            <tr key={i}>
              {cols.map((c) => (
                <td key={c}>
                  {c === 'status' && typeof r[c] === 'string' ? <Status value={r[c]} /> : cell(r[c])}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Commands sent to agents that had not answered when their call returned (202), until each settles. */
export function PendingPanel() {
  const list = usePending();
  if (!list.length) return null;
  return (
    <aside class="pending" aria-label="Pending commands">
      <h2>Pending commands</h2>
      <ul>
        {list.map((t) => (
          <li key={t.id} data-status={t.status}>
            <Status value={t.status} /> {t.action} <code>{t.type ?? t.id.slice(0, 8)}</code>
            {t.error ? <span class="error-inline"> {t.error}</span> : null}
          </li>
        ))}
      </ul>
    </aside>
  );
}

/** One object as a two-column list. */
export function Facts({ data }: { data: Record<string, unknown> | undefined }) {
  if (!data) return <Empty text="Loading…" />;
  return (
    <dl class="facts">
      {Object.entries(data).map(([k, v]) => (
        <div key={k}>
          <dt>{k.replace(/_/g, ' ')}</dt>
          <dd>
            {v === null || v === undefined ? '–' : typeof v === 'object' ? JSON.stringify(v) : String(v)}
          </dd>
        </div>
      ))}
    </dl>
  );
}
