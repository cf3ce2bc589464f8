import { useMemo, useState } from 'preact/hooks';
import { api } from '../api.js';
import { CronError, nextFiring, validateCron } from '../../../functions/core/schedule-expressions.js';
import { useAction, useApi } from '../hooks.js';
import { ContainerOutput } from '../output.js';
import { Can, Empty, ErrorNote, Note, Section, Status } from '../ui.js';

interface Job {
  job_id: string;
  name: string;
  image: string;
  command: string[];
  schedule: string | null;
  timezone: string;
  status: string;
  retry_count: number;
  max_retries: number;
  error_message: string | null;
  created_at: string | null;
}
interface Run {
  run_id: string;
  attempt: number | null;
  status: string;
  node_id: string | null;
  started_at: string | null;
  ended_at: string | null;
  exit_code: number | null;
  error: string | null;
  waiting_reason: string | null;
  log_tail: string | null;
}

const PRESETS = [
  { label: 'Every hour', cron: '0 * * * *' },
  { label: 'Every day at 02:00', cron: '0 2 * * *' },
  { label: 'Weekdays at 09:30', cron: '30 9 * * 1-5' },
  { label: 'Every Sunday at 00:00', cron: '0 0 * * 0' },
  { label: 'Every 15 minutes', cron: '*/15 * * * *' },
];

/** The schedule's next firings in its zone, or why the API would refuse it (the same checks: functions/core/schedule-expressions.ts). */
export function nextRuns(
  schedule: string,
  timezone: string,
  n = 5,
  from = new Date(),
): { runs: Date[] } | { error: string } {
  try {
    validateCron(schedule, timezone);
  } catch (e) {
    return { error: e instanceof CronError ? e.message : (e as Error).message };
  }
  const runs: Date[] = [];
  let at = from;
  for (let i = 0; i < n; i++) {
    const next = nextFiring(schedule, timezone, at);
    if (!next) break;
    runs.push(next);
    at = next;
  }
  return { runs };
}

function CreateJob({ done }: { done: (id?: string) => void }) {
  const [name, setName] = useState('');
  const [image, setImage] = useState('');
  const [command, setCommand] = useState('');
  const [schedule, setSchedule] = useState('');
  const [timezone, setTimezone] = useState('UTC');
  const [retries, setRetries] = useState('3');
  const [tried, setTried] = useState(false);
  const act = useAction();
  const preview = useMemo(
    () => (schedule.trim() ? nextRuns(schedule.trim(), timezone.trim() || 'UTC') : undefined),
    [schedule, timezone],
  );
  const errors: Record<string, string> = {};
  if (!name.trim()) errors.name = 'A name is required';
  if (!image.trim()) errors.image = 'An image is required';
  if (!command.trim()) errors.command = 'A command is required';
  if (preview && 'error' in preview) errors.schedule = preview.error;
  const r = Number(retries);
  if (!Number.isInteger(r) || r < 0 || r > 20) errors.retries = 'A whole number from 0 to 20';
  const show = tried ? errors : {};
  const submit = (e: Event) => {
    e.preventDefault();
    setTried(true);
    if (Object.keys(errors).length) return;
    void act.run(
      `Create job ${name}`,
      () =>
        api<Job>('POST', '/jobs', {
          name: name.trim(),
          image: image.trim(),
          command: ['sh', '-c', command],
          max_retries: r,
          ...(schedule.trim() ? { schedule: schedule.trim(), timezone: timezone.trim() || 'UTC' } : {}),
        }),
      (out) => done((out as Job).job_id),
    );
  };
  const field = (id: string, label: string, value: string, set: (v: string) => void, hint: string) => (
    <div class="field">
      <label for={`job-${id}`}>{label}</label>
      <input
        id={`job-${id}`}
        value={value}
        aria-invalid={show[id] ? 'true' : undefined}
        aria-describedby={`job-${id}-hint`}
        onInput={(e) => set(e.currentTarget.value)}
      />
      <small id={`job-${id}-hint`} class={show[id] ? 'field-error' : 'muted'}>
        {show[id] ?? hint}
      </small>
    </div>
  );
  return (
    <Section title="Create a training job">
      <form class="form" onSubmit={submit} noValidate aria-label="Create a training job">
        {field('name', 'Name', name, setName, 'Unique, e.g. resnet-nightly')}
        {field('image', 'Image', image, setImage, 'e.g. pytorch/pytorch:latest')}
        {field('command', 'Command', command, setCommand, 'Run with sh -c')}
        {field('retries', 'Max retries', retries, setRetries, '0 to 20')}
        {field(
          'schedule',
          'Schedule (cron)',
          schedule,
          setSchedule,
          'Empty: run once, now. minute hour day month weekday',
        )}
        {field('timezone', 'Time zone', timezone, setTimezone, 'IANA name, e.g. Europe/Berlin')}
        <div class="field wide">
          <span class="label">Cron helper</span>
          <div class="presets">
            {PRESETS.map((p) => (
              <button type="button" class="chip" key={p.cron} onClick={() => setSchedule(p.cron)}>
                {p.label}
              </button>
            ))}
          </div>
          {preview && 'runs' in preview ? (
            <ol class="next-runs" aria-label="Next runs" data-testid="next-runs">
              {preview.runs.map((d) => (
                <li key={d.getTime()}>{d.toISOString().replace('T', ' ').slice(0, 16)} UTC</li>
              ))}
            </ol>
          ) : null}
        </div>
        <button type="submit" disabled={!!act.busy}>
          {act.busy ? 'Creating…' : 'Create job'}
        </button>
      </form>
      <ErrorNote error={act.error} />
      <Note text={act.note} />
    </Section>
  );
}

function JobRuns({ job }: { job: Job }) {
  const runs = useApi<{ runs: Run[] }>(`/jobs/${encodeURIComponent(job.job_id)}/runs`, 3_000);
  return (
    <Section title={`Runs of ${job.name}`}>
      <p class="muted">
        <code>{job.image}</code> · <code>{job.command.join(' ')}</code> ·{' '}
        {job.schedule ? `${job.schedule} (${job.timezone})` : 'once'}
      </p>
      <ErrorNote error={runs.error ?? job.error_message ?? undefined} />
      {runs.data?.runs.length ? (
        <ul class="runs" data-testid="runs">
          {runs.data.runs.map((r) => (
            <li key={r.run_id} data-run={r.run_id}>
              <div>
                <Status value={r.status} /> attempt {r.attempt ?? '–'} on {r.node_id ?? '–'} · started{' '}
                {r.started_at ?? '–'} · ended {r.ended_at ?? '–'} · exit {r.exit_code ?? '–'}
                {r.waiting_reason ? <span class="muted"> · {r.waiting_reason}</span> : null}
                {r.error ? <span class="error-inline"> · {r.error}</span> : null}
              </div>
              {r.status === 'running' && r.node_id ? (
                <ContainerOutput nodeId={r.node_id} instanceId={r.run_id} />
              ) : null}
              {r.log_tail ? (
                <pre class="log" aria-label={`Output of ${r.run_id}`}>
                  {r.log_tail}
                </pre>
              ) : null}
            </li>
          ))}
        </ul>
      ) : (
        <Empty text={runs.loading ? 'Loading…' : 'No run yet.'} />
      )}
    </Section>
  );
}

export function TrainingPage({ jobId }: { jobId?: string | undefined }) {
  const jobs = useApi<{ jobs: Job[]; total: number }>('/jobs?page_size=100', 5_000);
  const open = jobs.data?.jobs.find((j) => j.job_id === jobId);
  return (
    <>
      <Can need="operator">
        <CreateJob
          done={(id) => {
            jobs.reload();
            if (id) location.hash = `#/training/${encodeURIComponent(id)}`;
          }}
        />
      </Can>
      <Section title="Jobs">
        <ErrorNote error={jobs.error} />
        {jobs.data?.jobs.length ? (
          <div class="table-wrap">
            <table data-testid="jobs">
              <thead>
                <tr>
                  <th scope="col">Job</th>
                  <th scope="col">Status</th>
                  <th scope="col">Schedule</th>
                  <th scope="col">Next run</th>
                  <th scope="col">Retries</th>
                  <th scope="col">Created</th>
                </tr>
              </thead>
              <tbody>
                {jobs.data.jobs.map((j) => {
                  const next = j.schedule ? nextRuns(j.schedule, j.timezone, 1) : undefined;
                  return (
                    <tr key={j.job_id} data-job={j.name} aria-selected={j.job_id === jobId}>
                      <td>
                        <a href={`#/training/${encodeURIComponent(j.job_id)}`}>{j.name}</a>
                      </td>
                      <td>
                        <Status value={j.status} />
                      </td>
                      <td>{j.schedule ? `${j.schedule} (${j.timezone})` : 'once'}</td>
                      <td>
                        {next && 'runs' in next && next.runs[0]
                          ? next.runs[0].toISOString().replace('T', ' ').slice(0, 16)
                          : '–'}
                      </td>
                      <td>
                        {j.retry_count} / {j.max_retries}
                      </td>
                      <td>{j.created_at ?? '–'}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        ) : (
          <Empty text={jobs.loading ? 'Loading…' : 'No training job yet.'} />
        )}
      </Section>
      {open ? <JobRuns job={open} /> : null}
    </>
  );
}
