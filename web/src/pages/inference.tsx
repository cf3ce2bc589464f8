import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from '../api.js';
import { useAction, useApi, usePaged, useStream } from '../hooks.js';
import { Can, Empty, ErrorNote, Note, Records, Section, Status } from '../ui.js';
import { ModelServers, type Assignment, type CatalogModel, type Worker } from './model-servers.js';

type Row = Record<string, unknown>;
interface ClusterStatus {
  status: string;
  total_workers: number;
  active_workers: number;
  queued_tasks: number;
  running_tasks: number;
  gpu_utilization: number;
  total_memory: string | null;
  available_memory: string | null;
  placements?: { placed: number; model_switches: number; requeued: number; lost: number; failed: number };
}
interface QueueView {
  queue: {
    position: number;
    job_id: string;
    model: string;
    priority: unknown;
    task_type: string;
    created_at: string;
  }[];
  length: number;
  processing: { job_id: string; model: string; node_id: string; progress: number; task_type: string }[];
}
interface TaskRow {
  task_id: string;
  status: string;
  task_type: string;
  model_name: string;
  assigned_worker: string | null;
  duration: string | null;
  created_at: string;
}
const TASK_STATES = ['queued', 'assigned', 'running', 'completed', 'failed', 'cancelled'] as const;

function SubmitTask({ models, done }: { models: CatalogModel[]; done: () => void }) {
  const [model, setModel] = useState('');
  const [type, setType] = useState('inference');
  const [priority, setPriority] = useState('normal');
  const [prompt, setPrompt] = useState('');
  const act = useAction();
  return (
    <Section title="Submit a task">
      <form
        class="form"
        aria-label="Submit a task"
        onSubmit={(e) => {
          e.preventDefault();
          if (!model.trim()) return;
          void act.run(
            `Submit ${type}`,
            () =>
              api('POST', '/tasks', {
                task_type: type,
                model_name: model.trim(),
                priority,
                parameters: prompt ? { prompt } : {},
              }),
            done,
          );
        }}
      >
        <div class="field">
          <label for="task-model">Model</label>
          <input
            id="task-model"
            list="task-models"
            value={model}
            required
            onInput={(e) => setModel(e.currentTarget.value)}
          />
          <datalist id="task-models">
            {models.map((m) => (
              <option key={m.id} value={m.id} />
            ))}
          </datalist>
        </div>
        <div class="field">
          <label for="task-type">Task type</label>
          <input id="task-type" value={type} onInput={(e) => setType(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="task-priority">Priority</label>
          <select id="task-priority" value={priority} onChange={(e) => setPriority(e.currentTarget.value)}>
            {['low', 'normal', 'high', 'critical'].map((p) => (
              <option key={p}>{p}</option>
            ))}
          </select>
        </div>
        <div class="field wide">
          <label for="task-prompt">Prompt</label>
          <input id="task-prompt" value={prompt} onInput={(e) => setPrompt(e.currentTarget.value)} />
        </div>
        <button type="submit" disabled={!!act.busy}>
          Submit
        </button>
      </form>
      <ErrorNote error={act.error} />
      <Note text={act.note} />
    </Section>
  );
}

export function InferencePage() {
  const status = useApi<ClusterStatus>('/cluster/status', 15_000);
  const queue = useApi<QueueView>('/api/vision/queue', 15_000);
  const tasks = useApi<{ tasks: TaskRow[]; total: number }>('/tasks?limit=100', 15_000);
  const models = useApi<{ assignments: Assignment[] }>('/models/assignments', 15_000);
  // A page at a time (Load more): every page every 15 s would read the whole fleet's records.
  const workers = usePaged<Worker>('/workers', 'workers', (w) => w.name, 15_000);
  const catalog = useApi<{ models: CatalogModel[] }>('/models/catalog', 120_000);
  const gallery = useApi<Row>('/api/vision/gallery', 60_000);
  const images = (Object.values(gallery.data ?? {}).find(Array.isArray) ?? []) as Row[];
  const reload = () => {
    status.reload();
    queue.reload();
    tasks.reload();
    models.reload();
    workers.reload();
  };
  // The cluster event stream (task finished, worker status, model loaded) refreshes the views: a
  // burst of events (tasks finishing together) once a second, not once an event.
  const [events, setEvents] = useState(0);
  const burst = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useEffect(() => () => clearTimeout(burst.current), []);
  const stream = useStream<{ event?: string }>('cluster', {}, (f) => {
    if (f.event && f.event !== 'connected') {
      setEvents((n) => n + 1);
      burst.current ??= setTimeout(() => {
        burst.current = undefined;
        reload();
      }, 1000);
    }
  });
  const counts = Object.fromEntries(
    TASK_STATES.map((s) => [s, (tasks.data?.tasks ?? []).filter((t) => t.status === s).length]),
  );
  const s = status.data;
  return (
    <>
      <Section
        title="Queue and workers"
        actions={
          <span class={`live ${stream.connected ? 'on' : 'off'}`} data-testid="cluster-live">
            {stream.connected ? `live · ${events} events` : 'reconnecting'}
          </span>
        }
      >
        <ErrorNote error={status.error} />
        {s ? (
          <dl class="facts" data-testid="cluster-status">
            <div>
              <dt>status</dt>
              <dd>
                <Status value={s.status} />
              </dd>
            </div>
            <div>
              <dt>workers</dt>
              <dd>
                {s.active_workers} active of {s.total_workers}
              </dd>
            </div>
            <div>
              <dt>tasks</dt>
              <dd>
                {s.queued_tasks} queued · {s.running_tasks} running
              </dd>
            </div>
            <div>
              <dt>GPU utilisation</dt>
              <dd>{s.gpu_utilization}%</dd>
            </div>
            <div>
              <dt>GPU memory</dt>
              <dd>
                {s.available_memory ?? '–'} free of {s.total_memory ?? '–'}
              </dd>
            </div>
            {s.placements ? (
              <div data-testid="placement-counts">
                <dt>placements</dt>
                <dd>
                  {s.placements.placed} placed · {s.placements.model_switches} model switches ·{' '}
                  {s.placements.requeued} requeued · {s.placements.lost + s.placements.failed} not placed
                </dd>
              </div>
            ) : null}
          </dl>
        ) : (
          <Empty text="Loading…" />
        )}
      </Section>
      <Section title="Model servers per node">
        <ErrorNote error={models.error ?? workers.error ?? catalog.error} />
        <ModelServers
          workers={workers.items}
          more={workers.more}
          loading={workers.loading}
          loadMore={workers.loadMore}
          assignments={models.data?.assignments ?? []}
          catalog={catalog.data?.models ?? []}
          reload={reload}
        />
      </Section>
      <Can need="operator">
        <SubmitTask models={catalog.data?.models ?? []} done={reload} />
      </Can>
      <Section title="Task queue by priority">
        <ErrorNote error={queue.error} />
        <p class="muted" data-testid="queue-length">
          {queue.data
            ? `${queue.data.length} waiting · ${queue.data.processing.length} processing`
            : 'Loading…'}
        </p>
        {queue.data?.processing.length ? (
          <ul class="runs" aria-label="Processing">
            {queue.data.processing.map((p) => (
              <li key={p.job_id}>
                <Status value="running" /> <code>{p.job_id}</code> {p.task_type} · {p.model} on {p.node_id}{' '}
                <progress max={100} value={p.progress} aria-label={`Progress of ${p.job_id}`} /> {p.progress}%
              </li>
            ))}
          </ul>
        ) : null}
        <Records
          rows={queue.data?.queue as Row[] | undefined}
          columns={['position', 'priority', 'job_id', 'task_type', 'model', 'created_at']}
          empty="Nothing waiting."
        />
      </Section>
      <Section title="Tasks by state">
        <ErrorNote error={tasks.error} />
        <ul class="tags" data-testid="task-counts">
          {TASK_STATES.map((st) => (
            <li key={st} class="tag" data-state={st}>
              {st} <strong>{counts[st]}</strong>
            </li>
          ))}
        </ul>
        <Records
          rows={tasks.data?.tasks as Row[] | undefined}
          columns={[
            'task_id',
            'status',
            'task_type',
            'model_name',
            'assigned_worker',
            'duration',
            'created_at',
          ]}
          empty="No task."
        />
      </Section>
      <Section title="Vision gallery">
        <ErrorNote error={gallery.error} />
        <Records rows={images} empty="No generated image yet." />
      </Section>
    </>
  );
}
