import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api } from '../api.js';
import { Chart, type Series } from '../chart.js';
import { useAction, useApi, useStream } from '../hooks.js';
import { Can, Empty, ErrorNote, Facts, fmt, Records, Section, Status } from '../ui.js';
import { PolicySection } from '../policy.js';
import type { NodeRow } from './fleet.js';

/** A copy waiting out its restart or pull backoff (GET /containers `backoff`): why, which attempt, when next. */
interface Backoff {
  reason: string;
  attempt: number;
  next_try_at: string;
}
const backoffText = (b: Backoff | undefined) =>
  b ? `${b.reason.replace(/_/g, ' ')}, attempt ${b.attempt}, next try ${b.next_try_at}` : '';

interface History {
  step: number;
  points: ({ t: string } & Record<
    'cpu' | 'memory' | 'gpu' | 'gpu_memory' | 'gpu_memory_mib' | 'temperature' | 'disk',
    number | null
  >)[];
}
interface Worker {
  gpu_info: Record<string, unknown>;
  system_info: Record<string, unknown>;
  /** GET /workers/{worker_id}: the models resident here, one row each. */
  loaded_models: Record<string, unknown>[];
}
interface LogFrame {
  type: 'log';
  timestamp: string;
  level: string;
  message: string;
}
interface Run {
  run_id: string;
  job_id: string;
  status: string;
  node_id: string | null;
  started_at: string | null;
  exit_code: number | null;
}

/** 1-minute points are kept a day, 5-minute averages 30 days. */
const RANGES = [
  { label: 'Last hour', ms: 3_600_000, step: 60 },
  { label: 'Last day', ms: 86_400_000, step: 60 },
  { label: 'Last 7 days', ms: 7 * 86_400_000, step: 300 },
];

function Charts({ nodeId }: { nodeId: string }) {
  const [range, setRange] = useState(RANGES[0]!);
  // The window moves each minute (a new point a minute): its start is computed again, not reused.
  const [minute, setMinute] = useState(0);
  useEffect(() => {
    const timer = setInterval(() => setMinute((m) => m + 1), 60_000);
    return () => clearInterval(timer);
  }, []);
  const since = useMemo(() => new Date(Date.now() - range.ms).toISOString(), [range, minute]);
  const h = useApi<History>(
    `/api/nodes/${encodeURIComponent(nodeId)}/metrics?since=${encodeURIComponent(since)}&step=${range.step}`,
  );
  const { times, gpu, host } = useMemo(() => {
    const pts = h.data?.points ?? [];
    const col = (k: keyof History['points'][number]) => pts.map((p) => p[k] as number | null);
    const gpu: Series[] = [
      { label: 'GPU util', values: col('gpu'), color: '#2563eb', unit: '%' },
      { label: 'GPU memory', values: col('gpu_memory'), color: '#9333ea', unit: '%' },
      { label: 'Temperature', values: col('temperature'), color: '#dc2626', unit: '°C' },
    ];
    const host: Series[] = [
      { label: 'CPU', values: col('cpu'), color: '#059669', unit: '%' },
      { label: 'Memory', values: col('memory'), color: '#d97706', unit: '%' },
      { label: 'Disk', values: col('disk'), color: '#4b5563', unit: '%' },
    ];
    return { times: pts.map((p) => Date.parse(p.t) / 1000), gpu, host };
  }, [h.data]);
  return (
    <Section
      title="Metrics"
      actions={
        <div class="segmented" role="group" aria-label="Range">
          {RANGES.map((r) => (
            <button key={r.label} type="button" aria-pressed={r === range} onClick={() => setRange(r)}>
              {r.label}
            </button>
          ))}
        </div>
      }
    >
      <ErrorNote error={h.error} />
      {times.length ? (
        <div class="charts" data-testid="charts" data-points={times.length}>
          <Chart title="GPU" times={times} series={gpu} />
          <Chart title="Host" times={times} series={host} />
        </div>
      ) : (
        <Empty
          text={
            h.loading ? 'Loading history…' : 'No history yet: a point is kept each minute the node reports.'
          }
        />
      )}
      <p class="muted small">
        {h.data ? `${h.data.points.length} points, one every ${h.data.step / 60} min` : null}
      </p>
    </Section>
  );
}

function Logs({ nodeId }: { nodeId: string }) {
  const [lines, setLines] = useState<LogFrame[]>([]);
  const extra = useMemo(() => ({ node_id: nodeId }), [nodeId]);
  const { connected } = useStream<LogFrame>('logs', extra, (f) => {
    if (f.type === 'log') setLines((l) => [...l.slice(-199), f]);
  });
  return (
    <Section
      title="Live log"
      actions={<span class={`live ${connected ? 'on' : 'off'}`}>{connected ? 'live' : 'reconnecting'}</span>}
    >
      <pre class="log" aria-label="Node log lines">
        {lines.map((l) => `${l.timestamp.slice(11, 19)} ${l.level.padEnd(7)} ${l.message}`).join('\n') ||
          'Waiting for lines…'}
      </pre>
    </Section>
  );
}

function Labels({
  nodeId,
  labels,
  reload,
}: {
  nodeId: string;
  labels: Record<string, string>;
  reload: () => void;
}) {
  const [key, setKey] = useState('');
  const [value, setValue] = useState('');
  const act = useAction();
  const set = (labels: Record<string, string | null>) =>
    act.run(
      'Set labels',
      () => api('POST', `/api/swarm/nodes/${encodeURIComponent(nodeId)}/labels`, { labels }),
      reload,
    );
  return (
    <Section title="Labels">
      <ErrorNote error={act.error} />
      {Object.keys(labels).length ? (
        <ul class="tags">
          {Object.entries(labels).map(([k, v]) => (
            <li key={k} class="tag">
              {k}={v}
              <Can need="operator">
                <button
                  type="button"
                  class="link"
                  aria-label={`Remove label ${k}`}
                  onClick={() => set({ [k]: null })}
                >
                  ×
                </button>
              </Can>
            </li>
          ))}
        </ul>
      ) : (
        <Empty text="No labels." />
      )}
      <Can need="operator">
        <form
          class="inline"
          onSubmit={(e) => {
            e.preventDefault();
            if (key.trim()) set({ [key.trim()]: value });
          }}
        >
          <label>
            Key <input value={key} onInput={(e) => setKey(e.currentTarget.value)} />
          </label>
          <label>
            Value <input value={value} onInput={(e) => setValue(e.currentTarget.value)} />
          </label>
          <button type="submit" disabled={!!act.busy}>
            Set label
          </button>
        </form>
      </Can>
    </Section>
  );
}

/** GET /api/nodes/{node_id}/runs: a page of the node's runs of any job, latest start first. */
interface RunPage {
  runs: Run[];
  next_cursor: string | null;
}
const RUNS_PAGE = 20;

/** The node's training runs: one request a page, its first read again on a timer, older ones on demand. */
function TrainingRuns({ nodeId }: { nodeId: string }) {
  const path = `/api/nodes/${encodeURIComponent(nodeId)}/runs?limit=${RUNS_PAGE}`;
  const first = useApi<RunPage>(path, 30_000);
  const [older, setOlder] = useState<RunPage>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  // Older pages follow the first page's last run: when a new run moves it, they start again from there.
  const boundary = first.data?.runs.at(-1)?.run_id;
  const current = useRef(boundary);
  current.current = boundary;
  useEffect(() => setOlder(undefined), [path, boundary]);
  const next = older ? older.next_cursor : (first.data?.next_cursor ?? null);
  const more = () => {
    if (!next) return;
    const asked = boundary;
    setBusy(true);
    api<RunPage>('GET', `${path}&cursor=${encodeURIComponent(next)}`)
      .then((p) => {
        // A page asked for before the first page moved follows rows no longer shown: dropped.
        if (current.current !== asked) return;
        setOlder((o) => ({ runs: [...(o?.runs ?? []), ...p.runs], next_cursor: p.next_cursor }));
        setError(undefined);
      })
      .catch((e: unknown) => setError(e instanceof Error ? e.message : String(e)))
      .finally(() => setBusy(false));
  };
  const rows = first.data ? [...first.data.runs, ...(older?.runs ?? [])] : undefined;
  return (
    <Section title="Training runs">
      <ErrorNote error={first.error ?? error} />
      <Records
        rows={rows as unknown as Record<string, unknown>[] | undefined}
        columns={['run_id', 'job_id', 'status', 'started_at', 'exit_code']}
        empty={first.data ? 'No run on this node.' : 'Loading…'}
      />
      {next ? (
        <button type="button" disabled={busy} onClick={more}>
          Load more runs
        </button>
      ) : null}
    </Section>
  );
}

/** GET /api/nodes/{node_id}: the listing's fields and the node's labels. */
type NodeDetail = NodeRow & { labels: Record<string, string> };

/** Reads its node's own records only (issue 16): never a page of the fleet listings. */
export function NodePage({ nodeId }: { nodeId: string }) {
  const found = useApi<NodeDetail>(`/api/nodes/${encodeURIComponent(nodeId)}`, 30_000);
  const id = found.data?.id;
  // `node_id` takes the id: the page may have been opened by name.
  const containers = useApi<{ containers: { backoff?: Backoff }[] }>(
    id ? `/containers?node_id=${encodeURIComponent(id)}` : null,
    15_000,
  );
  const worker = useApi<Worker>(`/workers/${encodeURIComponent(nodeId)}`, 30_000);
  const jetpack = useApi<Record<string, string | null>>(`/api/nodes/${encodeURIComponent(nodeId)}/jetpack`);
  const node = found.data;
  if (!node)
    return found.loading ? <p>Loading…</p> : <ErrorNote error={found.error ?? `Node ${nodeId} not found`} />;
  return (
    <>
      <h1>
        {node.name} <Status value={node.status} />
      </h1>
      <p class="muted">
        {node.hostname} · {node.ip ?? 'no address'} · last seen {node.last_seen ?? 'never'} · GPU{' '}
        {fmt(node.gpu)} · CPU {fmt(node.cpu)} · memory {fmt(node.memory)} · disk {fmt(node.disk)}
      </p>
      <Charts nodeId={node.id} />
      <div class="grid2">
        <Section title="Containers">
          <Records
            rows={
              (containers.data?.containers ?? []).map((c) => ({
                ...c,
                backoff: backoffText(c.backoff),
              })) as unknown as Record<string, unknown>[]
            }
            columns={['name', 'image', 'status', 'backoff', 'ports', 'created_at']}
            empty="No containers on this node."
          />
        </Section>
        <Section title="Model servers">
          <Records
            rows={worker.data?.loaded_models}
            columns={['name', 'memory_usage', 'load_time', 'last_used']}
            empty="No model loaded here."
          />
        </Section>
        <TrainingRuns nodeId={node.id} />
        <Section title="Hardware and driver">
          <Facts
            data={
              worker.data
                ? { ...worker.data.gpu_info, ...worker.data.system_info, ...(jetpack.data ?? {}) }
                : undefined
            }
          />
        </Section>
        <PolicySection policy={node.policy} />
        <Labels nodeId={node.id} labels={node.labels} reload={found.reload} />
        <Logs nodeId={node.id} />
      </div>
    </>
  );
}
