/** The start form: its fields, their checks (and the node policies a mount must pass), and the start itself. */
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { useAction, usePaged } from '../hooks.js';
import { mountRefusal } from '../policy.js';
import { ErrorNote, Note, Section } from '../ui.js';
import type { NodeRow } from './fleet.js';

// The API's own rules (functions/orchestrator/resources.ts), checked before sending.
const IMAGE = /^[A-Za-z0-9][A-Za-z0-9._\-/:@+]*$/;
const SIZE = /^\s*(\d+(?:\.\d+)?)\s*([bkmgtp])?(i?b)?\s*$/i;
const UNIT: Record<string, number> = {
  b: 1,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
  p: 1024 ** 5,
};

export interface StartForm {
  image: string;
  count: string;
  cpu: string;
  memory: string;
  gpus: string;
  ports: string;
  command: string;
  mounts: string;
  name: string;
}

export interface Mount {
  source: string;
  target: string;
  read_only: boolean;
}

/** `/host:/container[:ro]`, comma-separated; undefined when one is not of that form. */
export function parseMounts(text: string): Mount[] | undefined {
  if (!text.trim()) return [];
  const out: Mount[] = [];
  for (const m of text.split(',').map((x) => x.trim())) {
    const [source, target, mode, ...rest] = m.split(':');
    if (rest.length || !source?.startsWith('/') || !target?.startsWith('/')) return undefined;
    if (mode !== undefined && mode !== 'ro' && mode !== 'rw') return undefined;
    out.push({ source, target, read_only: mode === 'ro' });
  }
  return out;
}

/**
 * What the nodes that could take the copies (online, not cordoned) say of the mounts: the nodes
 * whose own policy allows every one, and why each of the others refuses. A node that reports no
 * policy judges for itself: counted as allowing, as the control plane does.
 */
export function mountVerdict(mounts: readonly Mount[], nodes: readonly NodeRow[]) {
  const eligible = nodes.filter((n) => n.status === 'online' && !n.cordoned);
  const allowing: string[] = [];
  const refusing: string[] = [];
  for (const n of eligible) {
    const why = mounts.map((m) => mountRefusal(m.source, n.policy)).find(Boolean);
    if (why) refusing.push(`${n.name}: ${why}`);
    else allowing.push(n.name);
  }
  return { eligible: eligible.length, allowing, refusing };
}

/** Field → message for what the API would refuse; empty when the form can be sent. */
export function validateStart(
  f: StartForm,
  nodes?: readonly NodeRow[],
): Partial<Record<keyof StartForm, string>> {
  const e: Partial<Record<keyof StartForm, string>> = {};
  const mounts = parseMounts(f.mounts);
  if (!mounts) e.mounts = 'Mounts as /host/folder:/container/folder[:ro], comma-separated';
  else if (mounts.length) {
    if (mounts.length > 32) e.mounts = 'At most 32 mounts';
    else if (nodes) {
      const v = mountVerdict(mounts, nodes);
      if (!v.allowing.length)
        e.mounts = v.eligible
          ? `No online node allows this: ${v.refusing.join('; ')}`
          : 'No online node to run it';
    }
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(f.name.trim()))
      e.name = 'A service name (letters, digits, ".", "_", "-") is needed with mounts';
    if (f.command.trim()) e.command = 'A service with mounts runs the image’s own command';
  }
  if (!f.image.trim()) e.image = 'An image is required';
  else if (f.image.length > 512 || !IMAGE.test(f.image.trim()))
    e.image = 'Not an image reference (e.g. nginx:alpine)';
  const count = Number(f.count);
  if (!Number.isInteger(count) || count < 1 || count > 100) e.count = 'A whole number from 1 to 100';
  if (f.cpu.trim()) {
    const c = Number(f.cpu);
    if (!/^\s*\d+(\.\d+)?\s*$/.test(f.cpu) || !(c > 0) || c > 1024)
      e.cpu = 'Cores, a number above 0 (e.g. 0.5)';
  }
  if (f.memory.trim()) {
    const m = SIZE.exec(f.memory);
    const bytes = m ? Number(m[1]) * UNIT[(m[2] ?? 'b').toLowerCase()]! : NaN;
    if (!m || Number.isNaN(bytes)) e.memory = 'A size such as 512m or 1g';
    else if (bytes < 6 * 1024 ** 2) e.memory = 'At least 6m';
  }
  if (f.gpus.trim()) {
    const g = Number(f.gpus);
    if (!Number.isInteger(g) || g < 0 || g > 16) e.gpus = 'A whole number from 0 to 16';
  }
  if (f.ports.trim()) {
    const ps = f.ports.split(',').map((p) => p.trim());
    if (ps.some((p) => !/^\d+$/.test(p) || Number(p) < 1 || Number(p) > 65535))
      e.ports = 'Ports from 1 to 65535, comma-separated';
    else if (ps.length > 32) e.ports = 'At most 32 ports';
  }
  return e;
}

function startBody(f: StartForm) {
  return {
    count: Number(f.count),
    resources: {
      image: f.image.trim(),
      ...(f.cpu.trim() ? { cpu_limit: f.cpu.trim() } : {}),
      ...(f.memory.trim() ? { memory_limit: f.memory.trim() } : {}),
      ...(f.gpus.trim() ? { gpus: Number(f.gpus) } : {}),
    },
    ...(f.ports.trim() ? { ports: f.ports.split(',').map((p) => Number(p.trim())) } : {}),
    ...(f.command.trim() ? { command: ['sh', '-c', f.command.trim()] } : {}),
  };
}

/** With mounts: a named service (POST /api/swarm/services), the only start that takes host folders. */
function serviceBody(f: StartForm, mounts: Mount[]) {
  return {
    name: f.name.trim(),
    image: f.image.trim(),
    replicas: Number(f.count),
    ports: f.ports.trim() ? f.ports.split(',').map((p) => ({ target_port: Number(p.trim()) })) : [],
    mounts,
    resources: {
      ...(f.cpu.trim() ? { cpu_limit: f.cpu.trim() } : {}),
      ...(f.memory.trim() ? { memory_limit: f.memory.trim() } : {}),
      ...(f.gpus.trim() ? { gpu: Number(f.gpus) } : {}),
    },
  };
}

const FIELDS: { name: keyof StartForm; label: string; hint: string }[] = [
  { name: 'image', label: 'Image', hint: 'e.g. nginx:alpine' },
  { name: 'count', label: 'Count', hint: '1 to 100 copies' },
  { name: 'cpu', label: 'CPU limit (cores)', hint: 'e.g. 0.5; empty: no limit' },
  { name: 'memory', label: 'Memory limit', hint: 'e.g. 512m or 1g' },
  { name: 'gpus', label: 'GPUs', hint: '0 to 16' },
  { name: 'ports', label: 'Ports', hint: 'container ports, e.g. 80, 443' },
  { name: 'command', label: 'Command', hint: 'optional, run with sh -c' },
  {
    name: 'mounts',
    label: 'Host folder mounts',
    hint: 'optional, /host:/container[:ro]; only where a node’s policy allows it',
  },
  { name: 'name', label: 'Service name', hint: 'needed with mounts' },
];

export function StartContainer({ done }: { done: () => void }) {
  const [f, setF] = useState<StartForm>({
    image: '',
    count: '1',
    cpu: '',
    memory: '',
    gpus: '',
    ports: '',
    command: '',
    mounts: '',
    name: '',
  });
  const [tried, setTried] = useState(false);
  const act = useAction();
  const mounts = parseMounts(f.mounts) ?? [];
  // The nodes' policies judge mounts only: read while some are asked for, a page at a time.
  const nodes = usePaged<NodeRow>(mounts.length ? '/api/nodes/' : null, 'nodes', (n) => n.name, 30_000);
  // A refusal by every node blocks the form only when every node is loaded; else the control
  // plane judges the rest of the fleet.
  const errors = validateStart(f, nodes.more ? undefined : nodes.items);
  // Policy verdicts show at once, not only after a first try: nothing any node would refuse is sent.
  const show = tried ? errors : errors.mounts && mounts.length ? { mounts: errors.mounts } : {};
  const verdict = mounts.length && nodes.items ? mountVerdict(mounts, nodes.items) : undefined;
  const hints: Partial<Record<keyof StartForm, string>> =
    verdict && verdict.allowing.length && verdict.refusing.length
      ? {
          mounts: `Only ${verdict.allowing.join(', ')} allow this; refused by ${verdict.refusing.join('; ')}`,
        }
      : verdict && nodes.more && !verdict.allowing.length
        ? {
            mounts: `None of the ${nodes.items?.length ?? 0} nodes loaded allows this; the rest of the fleet is judged when it is placed`,
          }
        : {};
  const submit = (e: Event) => {
    e.preventDefault();
    setTried(true);
    if (Object.keys(errors).length || (mounts.length && !nodes.items)) return;
    void act.run(
      `Start ${f.image.trim()}`,
      () =>
        mounts.length
          ? api('POST', '/api/swarm/services', serviceBody(f, mounts))
          : api('POST', '/start/container', startBody(f)),
      done,
    );
  };
  return (
    <Section title="Start containers">
      <form class="form" onSubmit={submit} noValidate aria-label="Start containers">
        {FIELDS.map(({ name, label, hint }) => (
          <div class="field" key={name}>
            <label for={`start-${name}`}>{label}</label>
            <input
              id={`start-${name}`}
              name={name}
              value={f[name]}
              aria-invalid={show[name] ? 'true' : undefined}
              aria-describedby={`start-${name}-hint`}
              onInput={(e) => setF({ ...f, [name]: e.currentTarget.value })}
            />
            <small id={`start-${name}-hint`} class={show[name] ? 'field-error' : 'muted'}>
              {show[name] ?? hints[name] ?? hint}
            </small>
          </div>
        ))}
        <button
          type="submit"
          disabled={!!act.busy || !!(show.mounts && mounts.length) || (mounts.length > 0 && !nodes.items)}
        >
          {act.busy ? 'Starting…' : 'Start'}
        </button>
      </form>
      <ErrorNote error={act.error} />
      <Note text={act.note} />
    </Section>
  );
}
