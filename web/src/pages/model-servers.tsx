import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { useAction } from '../hooks.js';
import { Can, Empty, ErrorNote, Note, Status } from '../ui.js';

export interface Assignment {
  worker_id: string;
  name: string;
  online: boolean;
  models: { name: string; status: string; memory_usage: string | null; load_time: string | null }[];
}
export interface Worker {
  worker_id: string;
  name: string;
  status: string;
  loaded_models: string[];
  current_tasks: number;
}
export interface CatalogModel {
  id: string;
  kind: 'image' | 'text';
  type: string;
  gpu_memory_mb: number;
}

/** The loaded pages' nodes' model servers, with load, unload and (image models) switch. */
export function ModelServers({
  workers,
  more,
  loading,
  loadMore,
  assignments,
  catalog,
  reload,
}: {
  workers: Worker[] | undefined;
  /** The fleet has pages not loaded yet. */
  more: boolean;
  loading: boolean;
  loadMore: () => void;
  assignments: Assignment[];
  catalog: CatalogModel[];
  reload: () => void;
}) {
  const act = useAction();
  const [pick, setPick] = useState<Record<string, string>>({});
  if (!workers) return <Empty text="Loading…" />;
  if (!workers.length) return <Empty text="No worker registered." />;
  // Every loaded worker; the models of those with servers come with their load state.
  const rows: Assignment[] = workers.map(
    (w) =>
      assignments.find((a) => a.worker_id === w.worker_id) ?? {
        worker_id: w.worker_id,
        name: w.name,
        online: w.status !== 'offline',
        models: w.loaded_models.map((m) => ({
          name: m,
          status: 'loaded',
          memory_usage: null,
          load_time: null,
        })),
      },
  );
  return (
    <>
      <ErrorNote error={act.error} />
      <Note text={act.note} />
      <div class="table-wrap">
        <table data-testid="model-servers">
          <thead>
            <tr>
              <th scope="col">Node</th>
              <th scope="col">Status</th>
              <th scope="col">Model servers</th>
              <Can need="operator">
                <th scope="col">Load or switch</th>
              </Can>
            </tr>
          </thead>
          <tbody>
            {rows.map((a) => {
              const chosen = pick[a.worker_id] ?? catalog[0]?.id ?? '';
              const image = catalog.find((m) => m.id === chosen)?.kind === 'image';
              return (
                <tr key={a.worker_id} data-worker={a.name}>
                  <td>
                    <a href={`#/node/${encodeURIComponent(a.worker_id)}`}>{a.name}</a>
                  </td>
                  <td>
                    <Status value={a.online ? 'online' : 'offline'} />
                  </td>
                  <td>
                    {a.models.length ? (
                      <ul class="tags">
                        {a.models.map((m) => (
                          <li key={m.name} class="tag" data-model={m.name}>
                            {m.name} <Status value={m.status} />
                            {m.memory_usage ? <span class="muted"> {m.memory_usage}</span> : null}
                            <Can need="operator">
                              <button
                                type="button"
                                aria-label={`Unload ${m.name} from ${a.name}`}
                                disabled={!!act.busy}
                                onClick={() =>
                                  act.run(
                                    `Unload ${m.name}`,
                                    () =>
                                      api('POST', '/models/unload', {
                                        model_name: m.name,
                                        worker_ids: [a.worker_id],
                                      }),
                                    reload,
                                  )
                                }
                              >
                                Unload
                              </button>
                            </Can>
                          </li>
                        ))}
                      </ul>
                    ) : (
                      <span class="muted">none loaded</span>
                    )}
                  </td>
                  <Can need="operator">
                    <td>
                      <span class="inline">
                        <label class="sr-only" for={`model-${a.worker_id}`}>
                          Model for {a.name}
                        </label>
                        <select
                          id={`model-${a.worker_id}`}
                          value={chosen}
                          onChange={(e) => setPick({ ...pick, [a.worker_id]: e.currentTarget.value })}
                        >
                          {catalog.map((m) => (
                            <option key={m.id} value={m.id}>
                              {m.id} ({m.kind}, {Math.round(m.gpu_memory_mb / 1024)} GB)
                            </option>
                          ))}
                        </select>
                        <button
                          type="button"
                          disabled={!!act.busy || !chosen || !a.online}
                          onClick={() =>
                            act.run(
                              image ? `Switch ${a.name} to ${chosen}` : `Load ${chosen} on ${a.name}`,
                              () =>
                                image
                                  ? api(
                                      'POST',
                                      `/api/vision/models/switch/${encodeURIComponent(a.worker_id)}`,
                                      {
                                        model: chosen,
                                      },
                                    )
                                  : api('POST', '/models/assign', {
                                      model_name: chosen,
                                      worker_ids: [a.worker_id],
                                      preload: true,
                                    }),
                              reload,
                            )
                          }
                        >
                          {image ? 'Switch' : 'Load'}
                        </button>
                      </span>
                    </td>
                  </Can>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      <p class="filters" aria-live="polite">
        <span class="muted small" data-testid="workers-loaded">
          {workers.length} nodes loaded{more ? ', more in the fleet' : ', the whole fleet'}
        </span>
        {more ? (
          <button type="button" disabled={loading} onClick={loadMore}>
            Load more nodes
          </button>
        ) : null}
      </p>
    </>
  );
}
