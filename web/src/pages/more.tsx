import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { useAction, useApi } from '../hooks.js';
import { Can, ErrorNote, Facts, Note, Records, Section } from '../ui.js';

type Row = Record<string, unknown>;

function SubmitTask({ done }: { done: () => void }) {
  const [model, setModel] = useState('');
  const [type, setType] = useState('inference');
  const [prompt, setPrompt] = useState('');
  const act = useAction();
  return (
    <Section title="Submit a task">
      <form
        class="form"
        onSubmit={(e) => {
          e.preventDefault();
          if (!model.trim()) return;
          void act.run(
            `Submit ${type}`,
            () =>
              api('POST', '/tasks', {
                task_type: type,
                model_name: model.trim(),
                parameters: prompt ? { prompt } : {},
              }),
            done,
          );
        }}
      >
        <div class="field">
          <label for="task-model">Model</label>
          <input id="task-model" value={model} required onInput={(e) => setModel(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="task-type">Task type</label>
          <input id="task-type" value={type} onInput={(e) => setType(e.currentTarget.value)} />
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
  const status = useApi<Row>('/cluster/status', 10_000);
  const tasks = useApi<{ tasks: Row[] }>('/tasks?limit=50', 5_000);
  const models = useApi<{ assignments: Row[] }>('/models/assignments', 15_000);
  const gallery = useApi<Row>('/api/vision/gallery', 30_000);
  const images = (Object.values(gallery.data ?? {}).find(Array.isArray) ?? []) as Row[];
  return (
    <>
      <Section title="Queue and workers">
        <ErrorNote error={status.error} />
        <Facts data={status.data} />
      </Section>
      <Can need="operator">
        <SubmitTask done={tasks.reload} />
      </Can>
      <Section title="Tasks">
        <ErrorNote error={tasks.error} />
        <Records
          rows={tasks.data?.tasks}
          columns={['task_id', 'task_type', 'model_name', 'status', 'worker_id', 'created_at']}
          empty="No task."
        />
      </Section>
      <Section title="Models and where they are loaded">
        <ErrorNote error={models.error} />
        <Records rows={models.data?.assignments} empty="No model assigned." />
      </Section>
      <Section title="Vision gallery">
        <ErrorNote error={gallery.error} />
        <Records rows={images} empty="No generated image yet." />
      </Section>
    </>
  );
}

export function CloudPage() {
  const instances = useApi<{ instances: Row[] }>('/api/instances', 15_000);
  const migration = useApi<Row>('/api/migration/status', 30_000);
  const history = useApi<Row>('/api/migration/history', 60_000);
  const rows = (Object.values(history.data ?? {}).find(Array.isArray) ?? []) as Row[];
  return (
    <>
      <Section title="Novita GPU instances">
        <ErrorNote error={instances.error} />
        <Records rows={instances.data?.instances} empty="No instance." />
      </Section>
      <Section title="Spot migration">
        <ErrorNote error={migration.error} />
        <Facts data={migration.data} />
      </Section>
      <Section title="Migrations">
        <Records rows={rows} empty="No migration yet." />
      </Section>
    </>
  );
}

export function MaintenancePage() {
  const status = useApi<Row>('/api/maintenance/status', 15_000);
  const problems = useApi<{ problems: Row[] }>('/api/maintenance/problems', 15_000);
  const act = useAction();
  const reload = () => {
    status.reload();
    problems.reload();
  };
  return (
    <>
      <Section
        title="Daily maintenance"
        actions={
          <span class="actions">
            <Can need="operator">
              <button
                type="button"
                disabled={!!act.busy}
                onClick={() =>
                  act.run('Run maintenance now', () => api('POST', '/api/maintenance/run-now'), reload)
                }
              >
                Run now
              </button>
            </Can>
            <Can need="admin">
              {status.data?.enabled ? (
                <button
                  type="button"
                  disabled={!!act.busy}
                  onClick={() =>
                    act.run('Turn maintenance off', () => api('POST', '/api/maintenance/stop'), reload)
                  }
                >
                  Turn off
                </button>
              ) : (
                <button
                  type="button"
                  disabled={!!act.busy}
                  onClick={() =>
                    act.run('Turn maintenance on', () => api('POST', '/api/maintenance/start'), reload)
                  }
                >
                  Turn on
                </button>
              )}
            </Can>
          </span>
        }
      >
        <ErrorNote error={status.error ?? act.error} />
        <Note text={act.note} />
        <Facts data={status.data} />
      </Section>
      <Section title="Problems">
        <Records
          rows={problems.data?.problems}
          columns={['severity', 'type', 'node_id', 'message', 'detected_at', 'auto_fixable']}
          empty="No problems."
        />
      </Section>
    </>
  );
}

export function VaultPage() {
  const creds = useApi<Row[]>('/api/vault/', 30_000);
  return (
    <Section title="Vault (names only)">
      <ErrorNote error={creds.error} />
      <Records rows={creds.data} empty="No credential stored." />
    </Section>
  );
}

export function ClustersPage() {
  const clusters = useApi<Row[] | { clusters: Row[] }>('/api/clusters/', 30_000);
  const rows = Array.isArray(clusters.data) ? clusters.data : clusters.data?.clusters;
  return (
    <Section title="Clusters">
      <ErrorNote error={clusters.error} />
      <Records rows={rows} empty="No cluster." />
    </Section>
  );
}

export function BuildsPage() {
  const images = useApi<{ images: Row[] }>('/api/build/registry/images', 60_000);
  return (
    <Section title="Registry images">
      <ErrorNote error={images.error} />
      <Records
        rows={images.data?.images}
        columns={['name', 'tags', 'full_image']}
        empty="No image in the registry."
      />
    </Section>
  );
}
