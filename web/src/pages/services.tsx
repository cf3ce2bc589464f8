import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { useAction, useApi } from '../hooks.js';
import { ContainerOutput } from '../output.js';
import { Can, Empty, ErrorNote, Note, Section, Status } from '../ui.js';
import { StartContainer } from './start-form.js';

interface Service {
  id: string;
  name: string;
  image: string;
  replicas: number;
  running: number;
  mode: string;
}
interface Container {
  id: string;
  name: string;
  image: string;
  status: string;
  ports: Record<string, string>;
  node_id: string;
  resources: Record<string, string | number>;
}

function Scale({ s, done }: { s: Service; done: () => void }) {
  const [n, setN] = useState(String(s.replicas));
  const act = useAction();
  const id = encodeURIComponent(s.id);
  return (
    <>
      <form
        class="inline"
        onSubmit={(e) => {
          e.preventDefault();
          void act.run(
            `Scale ${s.name} to ${n}`,
            () => api('POST', `/api/swarm/services/${id}/scale`, { replicas: Number(n) }),
            done,
          );
        }}
      >
        <label>
          <span class="sr-only">Copies of {s.name}</span>
          <input
            type="number"
            min={0}
            max={100}
            value={n}
            class="narrow"
            onInput={(e) => setN(e.currentTarget.value)}
          />
        </label>
        <button type="submit" disabled={!!act.busy}>
          {act.busy ? 'Scaling…' : 'Scale'}
        </button>
        <button
          type="button"
          class="danger"
          disabled={!!act.busy}
          onClick={() =>
            confirm(`Remove ${s.name} and its copies?`) &&
            void act.run(`Remove ${s.name}`, () => api('DELETE', `/api/swarm/services/${id}`), done)
          }
        >
          Remove
        </button>
      </form>
      <ErrorNote error={act.error} />
      <Note text={act.note} />
    </>
  );
}

function ContainerActions({ c, done }: { c: Container; done: () => void }) {
  const act = useAction();
  return (
    <>
      <button
        type="button"
        disabled={!!act.busy || c.status !== 'running'}
        onClick={() =>
          act.run(
            `Stop ${c.name}`,
            () => api('POST', `/containers/${encodeURIComponent(c.image)}/stop`, { instanceId: c.id }),
            done,
          )
        }
      >
        {act.busy?.startsWith('Stop') ? 'Stopping…' : 'Stop'}
      </button>
      <button
        type="button"
        class="danger"
        disabled={!!act.busy}
        onClick={() =>
          act.run(
            `Remove ${c.name}`,
            () => api('DELETE', `/containers/${encodeURIComponent(c.id)}?force=true`),
            done,
          )
        }
      >
        Remove
      </button>
      <ErrorNote error={act.error} />
      <Note text={act.note} />
    </>
  );
}

export function ServicesPage() {
  const services = useApi<Service[]>('/api/swarm/services', 10_000);
  const containers = useApi<{ containers: Container[] }>('/containers', 5_000);
  const reload = () => {
    services.reload();
    containers.reload();
  };
  const [watching, setWatching] = useState<string>();
  const watched = containers.data?.containers.find((c) => c.id === watching);
  return (
    <>
      <Can need="operator">
        <StartContainer done={reload} />
      </Can>
      <Section title="Services">
        <ErrorNote error={services.error} />
        {services.data?.length ? (
          <div class="table-wrap">
            <table data-testid="services">
              <thead>
                <tr>
                  <th scope="col">Service</th>
                  <th scope="col">Image</th>
                  <th scope="col">Running / wanted</th>
                  <Can need="operator">
                    <th scope="col">Actions</th>
                  </Can>
                </tr>
              </thead>
              <tbody>
                {services.data.map((s) => (
                  <tr key={s.id} data-service={s.image}>
                    <td>{s.name}</td>
                    <td>
                      <code>{s.image}</code>
                    </td>
                    <td data-testid="replicas">
                      {s.running} / {s.replicas}
                    </td>
                    <Can need="operator">
                      <td>
                        <Scale s={s} done={reload} />
                      </td>
                    </Can>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : (
          <Empty text={services.loading ? 'Loading…' : 'No service yet.'} />
        )}
      </Section>
      <Section title="Containers">
        <ErrorNote error={containers.error} />
        {containers.data?.containers.length ? (
          <div class="table-wrap">
            <table data-testid="containers">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Image</th>
                  <th scope="col">Status</th>
                  <th scope="col">Node</th>
                  <th scope="col">Ports</th>
                  <th scope="col">Limits</th>
                  <th scope="col">Output</th>
                  <Can need="operator">
                    <th scope="col">Actions</th>
                  </Can>
                </tr>
              </thead>
              <tbody>
                {containers.data.containers.map((c) => (
                  <tr key={c.id} data-container={c.id}>
                    <td>{c.name}</td>
                    <td>
                      <code>{c.image}</code>
                    </td>
                    <td>
                      <Status value={c.status} />
                    </td>
                    <td>
                      <a href={`#/node/${encodeURIComponent(c.node_id)}`}>{c.node_id}</a>
                    </td>
                    <td>
                      {Object.entries(c.ports)
                        .map(([k, v]) => `${k}→${v}`)
                        .join(', ') || '–'}
                    </td>
                    <td class="small">
                      {Object.entries(c.resources)
                        .map(([k, v]) => `${k} ${v}`)
                        .join(', ') || '–'}
                    </td>
                    <td>
                      <button
                        type="button"
                        aria-pressed={watching === c.id}
                        aria-label={`Output of ${c.name}`}
                        onClick={() => setWatching(watching === c.id ? undefined : c.id)}
                      >
                        {watching === c.id ? 'Hide' : 'Show'}
                      </button>
                    </td>
                    <Can need="operator">
                      <td>
                        <ContainerActions c={c} done={reload} />
                      </td>
                    </Can>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : (
          <Empty text={containers.loading ? 'Loading…' : 'No container yet.'} />
        )}
      </Section>
      {watched ? (
        <Section title={`Output of ${watched.name}`}>
          <p class="muted">
            Live from node <code>{watched.node_id}</code>: the last lines, then each new one.
          </p>
          <ContainerOutput nodeId={watched.node_id} instanceId={watched.id} testId="container-output" />
        </Section>
      ) : null}
    </>
  );
}
