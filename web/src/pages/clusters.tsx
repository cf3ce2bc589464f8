import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { useAction, useApi } from '../hooks.js';
import { NodeSearchField, useNodeSearch } from '../node-search.js';
import { Can, Empty, ErrorNote, fmt, Note, Section, Status } from '../ui.js';

interface Cluster {
  id: string;
  name: string;
  cluster_type: string;
  node_ids: string[];
  manager_node_id: string | null;
  status: string;
  created_at: string;
}
interface ClusterStatus {
  cluster: Cluster;
  nodes: { node_id: string; status: string; cpu: number; memory: number; gpu: number; is_manager: boolean }[];
  online_count: number;
  total_count: number;
}

function CreateCluster({ done }: { done: (id?: string) => void }) {
  const [name, setName] = useState('');
  const [members, setMembers] = useState<{ id: string; name: string }[]>([]);
  const [find, setFind] = useState('');
  const search = useNodeSearch(find);
  const act = useAction();
  return (
    <Section title="Create a cluster">
      <form
        class="form"
        aria-label="Create a cluster"
        onSubmit={(e) => {
          e.preventDefault();
          if (!name.trim() || !members.length) return;
          void act.run(
            `Create cluster ${name}`,
            () =>
              api<Cluster>('POST', '/api/clusters/', {
                name: name.trim(),
                node_ids: members.map((m) => m.id),
              }),
            (c) => {
              setName('');
              done((c as Cluster | undefined)?.id);
            },
          );
        }}
      >
        <div class="field">
          <label for="cluster-name">Name</label>
          <input id="cluster-name" value={name} required onInput={(e) => setName(e.currentTarget.value)} />
        </div>
        <fieldset class="field wide">
          <legend class="label">Nodes</legend>
          <NodeSearchField id="cluster-find" value={find} onInput={setFind} more={search.more} />
          <ErrorNote error={search.error} />
          <span class="inline">
            {(search.nodes ?? []).map((n) => (
              <label key={n.id} class="inline">
                <input
                  type="checkbox"
                  checked={members.some((m) => m.id === n.id)}
                  onChange={(e) =>
                    setMembers(
                      e.currentTarget.checked
                        ? [...members, { id: n.id, name: n.name }]
                        : members.filter((m) => m.id !== n.id),
                    )
                  }
                />
                {n.name}
              </label>
            ))}
          </span>
          {members.length ? (
            <small class="muted" data-testid="cluster-chosen">
              Chosen: {members.map((m) => m.name).join(', ')}
            </small>
          ) : null}
        </fieldset>
        <button type="submit" disabled={!!act.busy || !members.length}>
          Create cluster
        </button>
      </form>
      <ErrorNote error={act.error} />
      <Note text={act.note} />
    </Section>
  );
}

function Members({ id, changed }: { id: string; changed: () => void }) {
  const status = useApi<ClusterStatus>(`/api/clusters/${encodeURIComponent(id)}/status`, 10_000);
  const act = useAction();
  const [add, setAdd] = useState('');
  const [find, setFind] = useState('');
  const search = useNodeSearch(find);
  // The cluster views name members by node name (the API takes a name where it takes an id).
  const s = status.data;
  const outside = (search.nodes ?? []).filter(
    (n) => !s?.cluster.node_ids.some((m) => m === n.id || m === n.name),
  );
  const done = () => {
    status.reload();
    changed();
  };
  return (
    <Section
      title={`Members of ${s?.cluster.name ?? id}`}
      actions={
        <Can need="operator">
          <button
            type="button"
            disabled={!!act.busy}
            onClick={() =>
              act.run(
                `Delete cluster ${s?.cluster.name ?? id}`,
                () => api('DELETE', `/api/clusters/${encodeURIComponent(id)}`),
                () => {
                  location.hash = '#/clusters';
                  changed();
                },
              )
            }
          >
            Delete cluster
          </button>
        </Can>
      }
    >
      <ErrorNote error={status.error ?? act.error} />
      <Note text={act.note} />
      {s ? (
        <>
          <p class="muted" data-testid="members-count">
            <Status value={s.cluster.status} /> · {s.online_count} of {s.total_count} online ·{' '}
            {s.cluster.cluster_type}
          </p>
          <div class="table-wrap">
            <table data-testid="members">
              <thead>
                <tr>
                  <th scope="col">Node</th>
                  <th scope="col">Role</th>
                  <th scope="col">Status</th>
                  <th scope="col">CPU</th>
                  <th scope="col">Memory</th>
                  <th scope="col">GPU</th>
                  <Can need="operator">
                    <th scope="col">Actions</th>
                  </Can>
                </tr>
              </thead>
              <tbody>
                {s.nodes.map((m) => (
                  <tr key={m.node_id} data-member={m.node_id}>
                    <td>
                      <a href={`#/node/${encodeURIComponent(m.node_id)}`}>{m.node_id}</a>
                    </td>
                    <td>{m.is_manager ? 'manager' : 'worker'}</td>
                    <td>
                      <Status value={m.status} />
                    </td>
                    <td>{fmt(m.cpu)}</td>
                    <td>{fmt(m.memory)}</td>
                    <td>{fmt(m.gpu)}</td>
                    <Can need="operator">
                      <td>
                        <button
                          type="button"
                          disabled={!!act.busy}
                          aria-label={`Remove ${m.node_id}`}
                          onClick={() =>
                            act.run(
                              `Remove ${m.node_id}`,
                              () =>
                                api(
                                  'DELETE',
                                  `/api/clusters/${encodeURIComponent(id)}/nodes/${encodeURIComponent(m.node_id)}`,
                                ),
                              done,
                            )
                          }
                        >
                          Remove
                        </button>
                      </td>
                    </Can>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <Can need="operator">
            <form
              class="inline"
              aria-label="Add a node"
              onSubmit={(e) => {
                e.preventDefault();
                const pick = outside.some((n) => n.id === add) ? add : outside[0]?.id;
                if (!pick) return;
                void act.run(
                  `Add ${outside.find((n) => n.id === pick)?.name ?? pick}`,
                  () =>
                    api('POST', `/api/clusters/${encodeURIComponent(id)}/nodes/${encodeURIComponent(pick)}`),
                  done,
                );
              }}
            >
              <NodeSearchField id="cluster-add-find" value={find} onInput={setFind} more={search.more} />
              <label for="cluster-add">Add node</label>
              <select id="cluster-add" value={add} onChange={(e) => setAdd(e.currentTarget.value)}>
                {outside.map((n) => (
                  <option key={n.id} value={n.id}>
                    {n.name}
                  </option>
                ))}
              </select>
              <button type="submit" disabled={!!act.busy || !outside.length}>
                Add
              </button>
            </form>
          </Can>
        </>
      ) : (
        <Empty text="Loading…" />
      )}
    </Section>
  );
}

export function ClustersPage({ clusterId }: { clusterId?: string | undefined }) {
  const clusters = useApi<Cluster[]>('/api/clusters/', 15_000);
  const list = clusters.data ?? [];
  return (
    <>
      <Can need="operator">
        <CreateCluster
          done={(id) => {
            clusters.reload();
            if (id) location.hash = `#/clusters/${encodeURIComponent(id)}`;
          }}
        />
      </Can>
      <Section title="Clusters">
        <ErrorNote error={clusters.error} />
        {list.length ? (
          <div class="table-wrap">
            <table data-testid="clusters">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Status</th>
                  <th scope="col">Type</th>
                  <th scope="col">Members</th>
                  <th scope="col">Manager</th>
                  <th scope="col">Created</th>
                </tr>
              </thead>
              <tbody>
                {list.map((c) => (
                  <tr key={c.id} data-cluster={c.name} aria-selected={c.id === clusterId}>
                    <td>
                      <a href={`#/clusters/${encodeURIComponent(c.id)}`}>{c.name}</a>
                    </td>
                    <td>
                      <Status value={c.status} />
                    </td>
                    <td>{c.cluster_type}</td>
                    <td>{c.node_ids.length}</td>
                    <td>{c.manager_node_id ?? '–'}</td>
                    <td>{c.created_at}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : (
          <Empty text={clusters.loading ? 'Loading…' : 'No cluster.'} />
        )}
      </Section>
      {clusterId && list.some((c) => c.id === clusterId) ? (
        <Members id={clusterId} changed={clusters.reload} />
      ) : null}
    </>
  );
}
