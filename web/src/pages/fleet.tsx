import type { NodePolicy } from '../policy.js';
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { useAction, useApi, usePaged, useStream } from '../hooks.js';
import { Can, Empty, ErrorNote, fmt, Meter, Note, Section, Status } from '../ui.js';

export interface NodeRow {
  id: string;
  name: string;
  hostname: string;
  ip: string | null;
  status: string;
  cluster: string | null;
  cpu: number;
  memory: number;
  gpu: number;
  gpu_memory: number;
  temperature: number | null;
  disk: number;
  last_seen: string | null;
  cordoned?: boolean;
  /** The node's own policy (issue 11); null: its agent reports none. */
  policy?: NodePolicy | null;
  /** The agent's labels with the API's on top (GET /api/nodes/ lists them). */
  labels?: Record<string, string>;
}
export interface LiveEntry {
  cpu: number;
  memory: number;
  gpu: number;
  gpu_memory: number;
  temperature: number | null;
  disk: number;
  status: string;
}
interface MetricsFrame {
  type: 'metrics';
  nodes: Record<string, LiveEntry>;
  timestamp: string;
}
interface Problem {
  id: string;
  node_id: string;
  type: string;
  severity: string;
  message: string;
  detected_at: string;
  auto_fixable: boolean;
}

/** Which quick fix a problem type gets (POST /api/maintenance/quick-fix). */
const FIX: Record<string, { fix: string; label: string } | undefined> = {
  disk_space: { fix: 'docker_cleanup', label: 'Clean up' },
  container_exited: { fix: 'restart_exited', label: 'Restart exited' },
};

export function FleetPage() {
  const nodes = usePaged<NodeRow>('/api/nodes/', 'nodes', (n) => n.name, 30_000);
  const problems = useApi<{ problems: Problem[] }>('/api/maintenance/problems', 20_000);
  const { frame, connected } = useStream<MetricsFrame>('metrics');
  const [cluster, setCluster] = useState('');
  const [label, setLabel] = useState('');
  const fix = useAction();

  const clusters = [...new Set((nodes.items ?? []).map((n) => n.cluster).filter((c): c is string => !!c))];
  const [lk, lv] = label.split('=').map((s) => s.trim());
  const rows = (nodes.items ?? [])
    .filter((n) => !cluster || n.cluster === cluster)
    .filter((n) => {
      if (!lk) return true;
      const l = n.labels ?? {};
      return lv === undefined ? lk in l : l[lk] === lv;
    })
    .map((n) => ({ ...n, live: frame?.nodes[n.name] }));

  return (
    <>
      <Section
        title="Nodes"
        actions={
          <span class={`live ${connected ? 'on' : 'off'}`} data-testid="live">
            {connected
              ? `live · ${frame ? new Date(frame.timestamp).toLocaleTimeString() : 'waiting'}`
              : 'reconnecting'}
          </span>
        }
      >
        <div class="filters">
          <label>
            Cluster{' '}
            <select value={cluster} onChange={(e) => setCluster(e.currentTarget.value)}>
              <option value="">all</option>
              {clusters.map((c) => (
                <option key={c}>{c}</option>
              ))}
            </select>
          </label>
          <label>
            Label{' '}
            <input
              placeholder="key=value"
              value={label}
              onInput={(e) => setLabel(e.currentTarget.value)}
              aria-label="Filter by label (key or key=value)"
            />
          </label>
        </div>
        <ErrorNote error={nodes.error} />
        {rows.length ? (
          <div class="table-wrap">
            <table data-testid="nodes">
              <thead>
                <tr>
                  <th scope="col">Node</th>
                  <th scope="col">Status</th>
                  <th scope="col">GPU</th>
                  <th scope="col">GPU memory</th>
                  <th scope="col">Temp</th>
                  <th scope="col">CPU</th>
                  <th scope="col">Memory</th>
                  <th scope="col">Disk</th>
                  <th scope="col">Cluster / labels</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((n) => {
                  const v = n.live ?? n;
                  return (
                    <tr key={n.id} data-node={n.name}>
                      <td>
                        <a href={`#/node/${encodeURIComponent(n.id)}`}>{n.name}</a>
                        <div class="muted small">{n.ip ?? n.hostname}</div>
                      </td>
                      <td>
                        <Status value={v.status} />
                      </td>
                      <td data-metric="gpu">
                        <Meter value={v.gpu} label="GPU" />
                      </td>
                      <td data-metric="gpu_memory">
                        {n.live ? (
                          fmt(n.live.gpu_memory, ' MiB')
                        ) : (
                          <Meter value={n.gpu_memory} label="GPU memory" />
                        )}
                      </td>
                      <td data-metric="temperature">{fmt(v.temperature, ' °C')}</td>
                      <td data-metric="cpu">
                        <Meter value={v.cpu} label="CPU" />
                      </td>
                      <td data-metric="memory">
                        <Meter value={v.memory} label="Memory" />
                      </td>
                      <td data-metric="disk">
                        <Meter value={v.disk} label="Disk" />
                      </td>
                      <td class="small">
                        {n.cluster ? <span class="tag">cluster {n.cluster}</span> : null}
                        {Object.entries(n.labels ?? {}).map(([k, val]) => (
                          <span class="tag" key={k}>
                            {k}={val}
                          </span>
                        ))}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        ) : (
          <Empty text={nodes.loading ? 'Loading nodes…' : 'No node matches. Start an agent to add one.'} />
        )}
        <p class="filters" aria-live="polite">
          {nodes.items ? (
            <span class="muted small" data-testid="nodes-loaded">
              {nodes.items.length} nodes loaded{nodes.more ? ', more in the fleet' : ', the whole fleet'}
            </span>
          ) : null}
          {nodes.more ? (
            <button type="button" disabled={nodes.loading} onClick={nodes.loadMore}>
              Load more nodes
            </button>
          ) : null}
        </p>
      </Section>
      <Section title="Problems">
        <ErrorNote error={problems.error ?? fix.error} />
        <Note text={fix.note} />
        {problems.data?.problems.length ? (
          <ul class="problems">
            {problems.data.problems.map((p) => {
              const f = FIX[p.type];
              return (
                <li key={p.id}>
                  <Status value={p.severity} /> {p.message}
                  {f ? (
                    <Can need="operator">
                      <button
                        type="button"
                        disabled={!!fix.busy}
                        onClick={() =>
                          fix.run(
                            f.label,
                            () =>
                              api('POST', '/api/maintenance/quick-fix', {
                                node_id: p.node_id,
                                fix_type: f.fix,
                              }),
                            () => problems.reload(),
                          )
                        }
                      >
                        {f.label}
                      </button>
                    </Can>
                  ) : null}
                </li>
              );
            })}
          </ul>
        ) : (
          <Empty text="No problems." />
        )}
      </Section>
    </>
  );
}
