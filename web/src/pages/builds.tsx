import { useState } from 'preact/hooks';
import { api, isPending } from '../api.js';
import { useApi, type Command } from '../hooks.js';
import { NodeSearchField, useNodeSearch } from '../node-search.js';
import { Can, Empty, ErrorNote, Records, Section, Status } from '../ui.js';

interface Build {
  key: number;
  image: string;
  node?: string;
  status: 'pending' | 'succeeded' | 'failed';
  log?: string;
  error?: string;
}
interface BuildAnswer {
  image: string;
  node_id: string;
  log_tail?: string;
  command_id?: string;
}
type CommandView = Command & { output: { logTail?: string; log?: string[]; stderr?: string } | null };

let counter = 0;

/** A build's outcome: at once (200), or by following its command (202) until it settles. */
async function runBuild(body: Record<string, unknown>, update: (b: Partial<Build>) => void): Promise<void> {
  try {
    const out = await api<
      | BuildAnswer
      | {
          status: 'pending';
          pending_commands?: string[];
          command_id?: string;
          node_id?: string;
          image?: string;
        }
    >('POST', '/api/build/build', body);
    if (!isPending(out) && !('status' in out && out.status === 'pending')) {
      const done = out as BuildAnswer;
      update({ status: 'succeeded', image: done.image, node: done.node_id, log: done.log_tail ?? '' });
      return;
    }
    const pending = out as {
      command_id?: string;
      pending_commands?: string[];
      node_id?: string;
      image?: string;
    };
    const id = pending.command_id ?? pending.pending_commands?.[0];
    update({
      ...(pending.image ? { image: pending.image } : {}),
      ...(pending.node_id ? { node: pending.node_id } : {}),
    });
    for (;;) {
      const c = await api<CommandView>('GET', `/commands/${encodeURIComponent(id!)}`);
      if (c.status !== 'pending') {
        const log = c.output?.logTail ?? c.output?.log?.join('\n') ?? '';
        update({ status: c.status, log, ...(c.error ? { error: c.error } : {}) });
        return;
      }
      await new Promise((r) => setTimeout(r, 1500));
    }
  } catch (e) {
    update({ status: 'failed', error: e instanceof Error ? e.message : String(e) });
  }
}

function StartBuild({ add }: { add: (b: Build, body: Record<string, unknown>) => void }) {
  const [name, setName] = useState('');
  const [tag, setTag] = useState('latest');
  const [path, setPath] = useState('');
  const [node, setNode] = useState('');
  const [find, setFind] = useState('');
  const search = useNodeSearch(find);
  const nodes = search.nodes ?? [];
  // A node the search no longer shows is not the one a build goes to.
  const chosen = nodes.some((n) => n.id === node) ? node : '';
  return (
    <Section title="Build an image">
      <form
        class="form"
        aria-label="Build an image"
        onSubmit={(e) => {
          e.preventDefault();
          if (!name.trim() || !path.trim()) return;
          add(
            { key: ++counter, image: `${name.trim()}:${tag || 'latest'}`, status: 'pending' },
            {
              image_name: name.trim(),
              tag: tag || 'latest',
              dockerfile_path: path.trim(),
              ...(chosen ? { node_id: chosen } : {}),
            },
          );
        }}
      >
        <div class="field">
          <label for="build-name">Image name</label>
          <input id="build-name" value={name} required onInput={(e) => setName(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="build-tag">Tag</label>
          <input id="build-tag" value={tag} onInput={(e) => setTag(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="build-path">Dockerfile (under the agent’s build root)</label>
          <input id="build-path" value={path} required onInput={(e) => setPath(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="build-node">Node</label>
          <NodeSearchField id="build-node-find" value={find} onInput={setFind} more={search.more} />
          <select id="build-node" value={chosen} onChange={(e) => setNode(e.currentTarget.value)}>
            <option value="">first online node</option>
            {nodes.map((n) => (
              <option key={n.id} value={n.id}>
                {n.name}
              </option>
            ))}
          </select>
        </div>
        <button type="submit">Build</button>
      </form>
    </Section>
  );
}

export function BuildsPage() {
  const images = useApi<{ images: Record<string, unknown>[]; registry: string }>(
    '/api/build/registry/images',
    60_000,
  );
  const [builds, setBuilds] = useState<Build[]>([]);
  const add = (b: Build, body: Record<string, unknown>) => {
    setBuilds((list) => [b, ...list]);
    void runBuild(body, (patch) => {
      setBuilds((list) => list.map((x) => (x.key === b.key ? { ...x, ...patch } : x)));
      if (patch.status === 'succeeded') images.reload();
    });
  };
  return (
    <>
      <Can need="operator">
        <StartBuild add={add} />
      </Can>
      <Section title="Builds of this session">
        {builds.length ? (
          <ul class="runs" data-testid="builds">
            {builds.map((b) => (
              <li key={b.key} data-build={b.image}>
                <div>
                  <Status value={b.status} /> <code>{b.image}</code>
                  {b.node ? <span class="muted"> on {b.node}</span> : null}
                  {b.error ? <span class="error-inline"> · {b.error}</span> : null}
                </div>
                <pre
                  class="log"
                  tabIndex={0}
                  aria-label={`Output of the build of ${b.image}`}
                  data-testid="build-output"
                >
                  {b.log || (b.status === 'pending' ? 'Building…' : 'No output.')}
                </pre>
              </li>
            ))}
          </ul>
        ) : (
          <Empty text="No build started from this page yet." />
        )}
      </Section>
      <Section title={`Registry images${images.data?.registry ? ` (${images.data.registry})` : ''}`}>
        <ErrorNote error={images.error} />
        <Records
          rows={images.data?.images.slice(0, 25)}
          columns={['name', 'tags', 'full_image']}
          empty="No image in the registry."
        />
        {(images.data?.images.length ?? 0) > 25 ? (
          <p class="muted">and {images.data!.images.length - 25} more repositories</p>
        ) : null}
      </Section>
    </>
  );
}
