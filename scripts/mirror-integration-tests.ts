/**
 * Moves integration suites under the area they test (test/integration/<area>/, as test/unit/ does)
 * with `git mv`, and rewrites the relative imports in and to the moved files. Run once:
 * `npx tsx scripts/mirror-integration-tests.ts`; the map is the record of what moved where.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const T = 'test/integration';
export const MOVES: Record<string, string> = {
  // fleet/ held four areas' suites.
  'fleet/agents.test.ts': 'agent-api/agents.test.ts',
  'fleet/drain.test.ts': 'nodes/drain.test.ts',
  'fleet/join-tokens.test.ts': 'nodes/join-tokens.test.ts',
  'fleet/metric-history.test.ts': 'nodes/metric-history.test.ts',
  'fleet/node-identity.test.ts': 'nodes/node-identity.test.ts',
  'fleet/backoff.test.ts': 'orchestrator/backoff.test.ts',
  'fleet/containers.test.ts': 'orchestrator/containers.test.ts',
  'fleet/failover.test.ts': 'orchestrator/failover.test.ts',
  'fleet/remove-retry.test.ts': 'orchestrator/remove-retry.test.ts',
  'fleet/shared-capacity.test.ts': 'orchestrator/shared-capacity.test.ts',
  'fleet/ai.test.ts': 'commander/ai.test.ts',
  'fleet/fake-bedrock.ts': 'commander/fake-bedrock.ts',
  'fleet/clusters-vault.test.ts': 'commander/clusters-vault.test.ts',
  'fleet/maintenance-ssh.test.ts': 'commander/maintenance-ssh.test.ts',
  'fleet/network.test.ts': 'commander/network.test.ts',
  'fleet/swarm.test.ts': 'commander/swarm.test.ts',
  'fleet/unique-names.test.ts': 'core/unique-names.test.ts',
  // The AWS adapters' suites, as test/unit/adapters/.
  'aws/aws-call-checker.test.ts': 'adapters/aws-call-checker.test.ts',
  'aws/eventbridge-scheduler.test.ts': 'adapters/eventbridge-scheduler.test.ts',
  'aws/node-credentials.test.ts': 'adapters/node-credentials.test.ts',
  'aws/s3-blobs.test.ts': 'adapters/s3-blobs.test.ts',
  'aws/s3-install-assets.test.ts': 'adapters/s3-install-assets.test.ts',
  'aws/sqs-queue.test.ts': 'adapters/sqs-queue.test.ts',
  'aws/ssm-secrets.test.ts': 'adapters/ssm-secrets.test.ts',
  // The installer routes are the system area's.
  'install/runtime-mirror.test.ts': 'system/runtime-mirror.test.ts',
};

const moved = new Map(Object.entries(MOVES).map(([from, to]) => [resolve(T, from), resolve(T, to)]));

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (name === 'node_modules' || name.startsWith('.')) return [];
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') || p.endsWith('.md') ? [p] : [];
  });
}

const rel = (fromFile: string, target: string) => {
  const r = relative(dirname(fromFile), target);
  return r.startsWith('.') ? r : `./${r}`;
};

// Rewrite relative imports: in moved files (their own position changes) and to moved files.
const IMPORT = /(from\s+|import\(\s*)(['"])(\.{1,2}\/[^'"]+)\2/g;
for (const file of files('test')
  .concat(files('bench'), files('scripts'))
  .map((f) => resolve(f))) {
  if (!file.endsWith('.ts')) continue;
  const newPath = moved.get(file) ?? file;
  const text = readFileSync(file, 'utf8');
  const out = text.replace(IMPORT, (all, lead: string, q: string, spec: string) => {
    const target = resolve(dirname(file), spec.replace(/\.js$/, '.ts'));
    const finalTarget = moved.get(target) ?? target;
    if (finalTarget === target && newPath === file) return all;
    return `${lead}${q}${rel(newPath, finalTarget).replace(/\.ts$/, '.js')}${q}`;
  });
  if (out !== text) writeFileSync(file, out);
}

// Paths named in prose (README, docs, comments).
const prose = [
  'README.md',
  'docs/architecture.md',
  ...files('test'),
  ...files('functions'),
  ...files('local'),
];
for (const file of prose) {
  if (!existsSync(file)) continue;
  let text = readFileSync(file, 'utf8');
  const before = text;
  for (const [from, to] of Object.entries(MOVES)) text = text.split(`${T}/${from}`).join(`${T}/${to}`);
  if (text !== before) writeFileSync(file, text);
}

for (const [from, to] of Object.entries(MOVES)) {
  if (!existsSync(join(T, from))) continue;
  mkdirSync(dirname(join(T, to)), { recursive: true });
  execFileSync('git', ['mv', join(T, from), join(T, to)]);
}
