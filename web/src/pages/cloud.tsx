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
}
interface InstanceDetail extends Instance {
  productName?: string;
  failedAt?: string;
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
  return (
    <>
      <Section title="Novita GPU instances">
        <ErrorNote error={instances.error} />
        {list.length ? (
          <div class="table-wrap">
            <table data-testid="instances">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Status</th>
                  <th scope="col">GPUs</th>
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
