import { useState } from 'preact/hooks';
import { useApi } from '../hooks.js';
import { Empty, ErrorNote, Facts, Section, Status } from '../ui.js';

interface Instance {
  id: string;
  name: string;
  status: string;
  gpuNum: number;
  region: string;
  createdAt: string;
  readyAt?: string;
  /** The product's price per GPU hour, in Novita's units. */
  pricePerHour?: number;
  spot?: boolean;
  failedAt?: string;
  terminatedAt?: string;
}
interface InstanceDetail extends Instance {
  productName?: string;
  error?: { code: string; message: string };
  originalInstanceId?: string;
  migratedTo?: string;
  portMappings?: { port: number; endpoint: string; type: string }[];
}
interface Execution {
  jobId: string;
  status: string;
  triggeredBy: string;
  dryRun: boolean;
  queuedAt: string;
  completedAt: string | null;
  summary?: { eligibleInstances: number; migratedInstances: number; errorCount: number };
  errors?: { instanceId: string; code: string; message: string }[];
  migrations?: { instanceId: string; newInstanceId: string }[];
}
interface MigrationStatus {
  enabled: boolean;
  lastExecution: { jobId: string; completedAt: string | null; status: string } | null;
  nextExecution: string | null;
  statistics: { totalExecutions: number; totalMigrations: number; failedExecutions: number };
  configuration: { intervalMinutes: number; maxConcurrent: number; dryRunMode: boolean };
}
interface Step {
  at: string;
  what: string;
  state: string;
  detail?: string;
}

const BILLED = new Set(['creating', 'starting', 'running']);
const HOUR_MS = 3_600_000;

/** Novita bills price × GPUs × time: this instance's cost per hour, when its price is known. */
export const costPerHour = (i: Instance) =>
  i.pricePerHour === undefined ? undefined : i.pricePerHour * i.gpuNum;

/**
 * Spent so far, at `now`: billed from creation (Novita starts at pulling) until it was given back or
 * failed, or until now while it runs. Unknown for one stopped with no record of when.
 */
export function spent(i: Instance, now: number): number | undefined {
  const cost = costPerHour(i);
  if (cost === undefined) return undefined;
  const end = i.terminatedAt ?? (BILLED.has(i.status) ? undefined : i.failedAt);
  const until = end ? Date.parse(end) : BILLED.has(i.status) ? now : undefined;
  if (until === undefined) return undefined;
  return (cost * Math.max(0, until - Date.parse(i.createdAt))) / HOUR_MS;
}

/** Prices as Novita's products list gives them (its own units, not converted). */
export const money = (n: number | undefined) =>
  n === undefined ? '–' : n.toLocaleString('en-US', { maximumFractionDigits: 2 });

/** The instance's state changes and migrations, oldest first. */
export function timeline(i: InstanceDetail, executions: Execution[]): Step[] {
  const steps: Step[] = [];
  if (i.originalInstanceId)
    steps.push({ at: i.createdAt, what: `Migrated here from ${i.originalInstanceId}`, state: 'created' });
  steps.push({ at: i.createdAt, what: 'Created', state: 'created', detail: i.productName });
  if (i.readyAt) steps.push({ at: i.readyAt, what: 'Running', state: 'running' });
  if (i.failedAt)
    steps.push({
      at: i.failedAt,
      what: 'Failed',
      state: 'failed',
      ...(i.error ? { detail: `${i.error.code}: ${i.error.message}` } : {}),
    });
  for (const e of executions) {
    const moved = e.migrations?.find((m) => m.instanceId === i.id);
    if (moved)
      steps.push({
        at: e.completedAt ?? e.queuedAt,
        what: `Migrated to ${moved.newInstanceId}`,
        state: 'exited',
        detail: `migration ${e.jobId} (${e.triggeredBy})`,
      });
    const failed = e.errors?.find((x) => x.instanceId === i.id);
    if (failed)
      steps.push({
        at: e.completedAt ?? e.queuedAt,
        what: 'Migration failed',
        state: 'failed',
        detail: `${failed.code}: ${failed.message}`,
      });
  }
  if (i.migratedTo && !steps.some((s) => s.what === `Migrated to ${i.migratedTo}`))
    steps.push({ at: i.readyAt ?? i.createdAt, what: `Migrated to ${i.migratedTo}`, state: 'exited' });
  return steps.sort((a, b) => a.at.localeCompare(b.at));
}

function InstanceTimeline({ id, executions }: { id: string; executions: Execution[] }) {
  const detail = useApi<InstanceDetail>(`/api/instances/${encodeURIComponent(id)}`, 15_000);
  const i = detail.data;
  return (
    <Section title={`Timeline of ${i?.name ?? id}`}>
      <ErrorNote error={detail.error} />
      {i ? (
        <>
          <p class="muted">
            <Status value={i.status} /> · {i.gpuNum} GPU · {i.region}
            {i.productName ? ` · ${i.productName}` : ''}
          </p>
          <ol class="timeline" data-testid="timeline">
            {timeline(i, executions).map((s, n) => (
              <li key={n}>
                <time dateTime={s.at}>{s.at.replace('T', ' ').slice(0, 19)}</time> <Status value={s.state} />{' '}
                {s.what}
                {s.detail ? <span class="muted"> · {s.detail}</span> : null}
              </li>
            ))}
          </ol>
          {i.portMappings?.length ? (
            <p class="small">
              Ports: {i.portMappings.map((p) => `${p.port}/${p.type} → ${p.endpoint}`).join(', ')}
            </p>
          ) : null}
        </>
      ) : (
        <Empty text="Loading…" />
      )}
    </Section>
  );
}

export function CloudPage() {
  const instances = useApi<{ instances: Instance[]; total: number }>('/api/instances', 15_000);
  const migration = useApi<MigrationStatus>('/api/migration/status', 30_000);
  const history = useApi<{ executions: Execution[] }>('/api/migration/history', 60_000);
  const [open, setOpen] = useState<string>();
  const executions = history.data?.executions ?? [];
  const list = instances.data?.instances ?? [];
  // One instant for every figure of this render, written on the table so a reader can check them.
  const now = Date.now();
  const running = list.filter((i) => BILLED.has(i.status));
  const runningCost = running.reduce((sum, i) => sum + (costPerHour(i) ?? 0), 0);
  const known = list.map((i) => spent(i, now)).filter((n): n is number => n !== undefined);
  return (
    <>
      <Section title="Novita GPU instances">
        <ErrorNote error={instances.error} />
        {list.length ? (
          <p data-testid="cloud-cost" data-asof={now}>
            {running.length} billed now, costing{' '}
            <strong data-testid="cost-total">{money(runningCost)}</strong> per hour; spent so far{' '}
            <strong data-testid="spent-total">{money(known.reduce((a, b) => a + b, 0))}</strong>
            <span class="muted small">
              {' '}
              (Novita’s price units: its products list’s price per GPU hour × GPUs × hours billed
              {known.length < list.length
                ? `; ${list.length - known.length} without a known end left out`
                : ''}
              )
            </span>
          </p>
        ) : null}
        {list.length ? (
          <div class="table-wrap">
            <table data-testid="instances">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Status</th>
                  <th scope="col">GPUs</th>
                  <th scope="col">Price / GPU·h</th>
                  <th scope="col">Cost / h</th>
                  <th scope="col">Spent</th>
                  <th scope="col">Region</th>
                  <th scope="col">Created</th>
                  <th scope="col">Ready</th>
                  <th scope="col">Timeline</th>
                </tr>
              </thead>
              <tbody>
                {list.map((i) => (
                  <tr key={i.id} data-instance={i.id} aria-selected={open === i.id}>
                    <td>{i.name}</td>
                    <td>
                      <Status value={i.status} />
                    </td>
                    <td>{i.gpuNum}</td>
                    <td data-cell="price">
                      {money(i.pricePerHour)}
                      {i.spot ? <span class="muted small"> spot</span> : null}
                    </td>
                    <td data-cell="cost">{money(costPerHour(i))}</td>
                    <td data-cell="spent">{money(spent(i, now))}</td>
                    <td>{i.region}</td>
                    <td>{i.createdAt}</td>
                    <td>{i.readyAt ?? '–'}</td>
                    <td>
                      <button
                        type="button"
                        aria-pressed={open === i.id}
                        aria-label={`Timeline of ${i.name}`}
                        onClick={() => setOpen(open === i.id ? undefined : i.id)}
                      >
                        {open === i.id ? 'Hide' : 'Show'}
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : (
          <Empty text={instances.loading ? 'Loading…' : 'No instance.'} />
        )}
      </Section>
      {open ? <InstanceTimeline id={open} executions={executions} /> : null}
      <Section title="Spot migration">
        <ErrorNote error={migration.error} />
        {migration.data ? (
          <Facts
            data={{
              enabled: migration.data.enabled,
              every: `${migration.data.configuration.intervalMinutes} min${migration.data.configuration.dryRunMode ? ' (dry run)' : ''}`,
              at_most_at_once: migration.data.configuration.maxConcurrent,
              last_run: migration.data.lastExecution
                ? `${migration.data.lastExecution.completedAt ?? 'running'} (${migration.data.lastExecution.status})`
                : 'never',
              next_run: migration.data.nextExecution,
              runs: `${migration.data.statistics.totalExecutions} (${migration.data.statistics.failedExecutions} failed)`,
              migrations: migration.data.statistics.totalMigrations,
            }}
          />
        ) : (
          <Empty text="Loading…" />
        )}
      </Section>
      <Section title="Migrations">
        <ErrorNote error={history.error} />
        {executions.length ? (
          <div class="table-wrap">
            <table data-testid="migrations">
              <thead>
                <tr>
                  <th scope="col">Queued</th>
                  <th scope="col">Status</th>
                  <th scope="col">Trigger</th>
                  <th scope="col">Eligible</th>
                  <th scope="col">Migrated</th>
                  <th scope="col">Errors</th>
                </tr>
              </thead>
              <tbody>
                {executions.map((e) => (
                  <tr key={e.jobId}>
                    <td>{e.queuedAt}</td>
                    <td>
                      <Status value={e.status} />
                    </td>
                    <td>
                      {e.triggeredBy}
                      {e.dryRun ? ' (dry run)' : ''}
                    </td>
                    <td>{e.summary?.eligibleInstances ?? '–'}</td>
                    <td>
                      {e.migrations?.map((m) => `${m.instanceId} → ${m.newInstanceId}`).join(', ') ||
                        (e.summary?.migratedInstances ?? '–')}
                    </td>
                    <td>{e.summary?.errorCount ?? '–'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : (
          <Empty text={history.loading ? 'Loading…' : 'No migration yet.'} />
        )}
      </Section>
    </>
  );
}
