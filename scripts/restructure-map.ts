/**
 * What scripts/restructure.ts applied: the move map, the retired folders, and the text and
 * document edits that came with it. A later move adds its own entries here.
 */

/** old → new, repo-relative; a folder moves every file under it. */
export const MOVES: [string, string][] = [
  // functions/nodes: node membership, credentials, join tokens, the command bus and settle.
  ['functions/fleet/nodes.ts', 'functions/nodes/nodes.ts'],
  ['functions/fleet/node-records.ts', 'functions/nodes/node-records.ts'],
  ['functions/fleet/node-routes.ts', 'functions/nodes/routes.ts'],
  ['functions/fleet/auth.ts', 'functions/nodes/auth.ts'],
  ['functions/fleet/join-tokens.ts', 'functions/nodes/join-tokens.ts'],
  ['functions/fleet/commands.ts', 'functions/nodes/commands.ts'],
  ['functions/orchestrator/settle.ts', 'functions/nodes/settle.ts'],
  ['functions/fleet/queue-policy.ts', 'functions/nodes/queue-policy.ts'],
  ['functions/fleet/events.ts', 'functions/nodes/events.ts'],
  ['functions/fleet/drain.ts', 'functions/nodes/drain.ts'],
  ['functions/fleet/metric-history.ts', 'functions/nodes/metric-history.ts'],
  ['functions/fleet/metric-history-routes.ts', 'functions/nodes/metric-history-routes.ts'],
  ['functions/fleet/node-policy.ts', 'functions/nodes/node-policy.ts'],
  // functions/agent-api: what agents call, and what the control plane does with what they report.
  ['functions/fleet/agent-routes.ts', 'functions/agent-api/routes.ts'],
  ['functions/fleet/heartbeat-signals.ts', 'functions/agent-api/heartbeat-signals.ts'],
  ['functions/fleet/queue-credentials.ts', 'functions/agent-api/queue-credentials.ts'],
  ['functions/command-appliers.ts', 'functions/agent-api/command-appliers.ts'],
  // functions/commander: the Fleet Commander product areas.
  ['functions/fleet/swarm.ts', 'functions/commander/swarm.ts'],
  ['functions/fleet/clusters.ts', 'functions/commander/clusters.ts'],
  ['functions/fleet/cluster-membership.ts', 'functions/commander/cluster-membership.ts'],
  ['functions/fleet/vault.ts', 'functions/commander/vault.ts'],
  ['functions/fleet/ssh.ts', 'functions/commander/ssh.ts'],
  ['functions/fleet/network.ts', 'functions/commander/network.ts'],
  ['functions/fleet/network-routes.ts', 'functions/commander/network-routes.ts'],
  ['functions/fleet/ai.ts', 'functions/commander/ai.ts'],
  ['functions/fleet/ai-routes.ts', 'functions/commander/ai-routes.ts'],
  ['functions/fleet/install-queue.ts', 'functions/commander/install-queue.ts'],
  ['functions/fleet/install-routes.ts', 'functions/commander/install-routes.ts'],
  ['functions/fleet/access-routes.ts', 'functions/commander/access-routes.ts'],
  ['functions/fleet/maintenance.ts', 'functions/commander/maintenance/maintenance.ts'],
  ['functions/fleet/maintenance-problems.ts', 'functions/commander/maintenance/problems.ts'],
  ['functions/fleet/maintenance-fixes.ts', 'functions/commander/maintenance/fixes.ts'],
  ['functions/fleet/maintenance-disk-audit.ts', 'functions/commander/maintenance/disk-audit.ts'],
  ['functions/fleet/maintenance-schedule.ts', 'functions/commander/maintenance/schedule.ts'],
  ['functions/fleet/maintenance-routes.ts', 'functions/commander/maintenance/routes.ts'],
  ['functions/build', 'functions/commander/build'],
  // Unit tests mirror the tree.
  ['test/unit/fleet/ai.test.ts', 'test/unit/commander/ai.test.ts'],
  ['test/unit/fleet/maintenance-problems.test.ts', 'test/unit/commander/maintenance/problems.test.ts'],
  ['test/unit/fleet/maintenance-schedule.test.ts', 'test/unit/commander/maintenance/schedule.test.ts'],
  ['test/unit/fleet/metric-history.test.ts', 'test/unit/nodes/metric-history.test.ts'],
  ['test/unit/fleet/node-records.test.ts', 'test/unit/nodes/node-records.test.ts'],
  ['test/unit/fleet/queue-policy.test.ts', 'test/unit/nodes/queue-policy.test.ts'],
  ['test/unit/fleet/node-policy.test.ts', 'test/unit/nodes/node-policy.test.ts'],
  ['test/unit/build', 'test/unit/commander/build'],
];

/** Folders the map empties: a file left in one (added since the map was written) stops the run. */
export const RETIRED = ['functions/fleet', 'functions/build', 'test/unit/fleet', 'test/unit/build'];

/** Text that names moved code in a way no path rule catches (globs, prose); replaced when found. */
export const TEXT_EDITS: { file: string; from: string; to: string }[] = [
  {
    file: 'docs/architecture.md',
    from: '- `functions/fleet/maintenance*.ts`: the switch, status and runs; `-problems` (detection and\n  first-seen records); `-fixes`; `-disk-audit`; `-schedule`; `-routes`.',
    to: '- `functions/commander/maintenance/`: `maintenance.ts` (the switch, status and runs), `problems.ts`\n  (detection and first-seen records), `fixes.ts`, `disk-audit.ts`, `schedule.ts`, `routes.ts`.',
  },
  {
    file: 'docs/architecture.md',
    from: '`settle.ts` (a\n  request waits for its commands, 202 past `COMMAND_WAIT_MS`), `observation.ts` (what agents\n  report: command results, heartbeat container states, exits), `model.ts` (the records and their\n  conditional writes).',
    to: "`observation.ts` (what\n  agents report: command results, heartbeat container states, exits), `model.ts` (the records and\n  their conditional writes). Waiting on commands (`settle`, 202 past `COMMAND_WAIT_MS`) is the\n  command bus's: `functions/nodes/settle.ts`.",
  },
  {
    file: 'protocol/commands.ts',
    from: '(functions/fleet/command-results.ts)',
    to: '(functions/agent-api/command-appliers.ts)',
  },
];

/** Sections of docs/architecture.md the script owns: replaced whole, or inserted before `before`. */
export const DOC_SECTIONS: { file: string; heading: string; before: string; body: string }[] = [
  {
    file: 'docs/architecture.md',
    heading: '## Areas',
    before: '## Layers, checked',
    body: `Code is grouped by what it is about, not by the Lambda function that serves it: a route group
(\`functions/groups/<group>.ts\`) takes its routes from any area.

| area | holds |
| --- | --- |
| \`protocol/\` | everything the agent and the control plane exchange: registration, heartbeats, commands and their outputs, results, events, install and build shapes, as zod schemas; imports zod only |
| \`agent/\` | the node agent, shipped alone to every node; imports \`protocol/\` only |
| \`functions/core/\` | the HTTP pipeline, routing, errors, config, keys, events, the \`AppContext\` |
| \`functions/ports/\`, \`functions/adapters/\` | the interfaces domain code uses, and their AWS, emulator and embedded implementations (only adapters know the AWS SDK) |
| \`functions/nodes/\` | node membership (records, registration, labels, cordon, drain, retire), node credentials and join tokens, the command bus (\`commands.ts\`) and \`settle\` (a request waiting on its commands), node events, metric history, the Nodes API |
| \`functions/agent-api/\` | what agents call (\`/agent/*\`: register, heartbeats, command polls and results, events, queue credentials) and what is done with what they report (\`agent-api/command-appliers.ts\`, the heartbeat's signals) |
| \`functions/orchestrator/\` | services and their copies: the placement plan, desired state, the reconciler, container use cases |
| \`functions/task-planner/\` | the pure planner of inference tasks (which task runs on which node); \`cluster/placement.ts\` applies its plans |
| \`functions/cluster/\`, \`vision/\`, \`training/\`, \`novita/\` | the Cluster Manager's tasks and models, vision jobs, training jobs and runs, Novita instances |
| \`functions/commander/\` | the Fleet Commander product: swarm services, clusters, vault, maintenance (\`maintenance/\`), SSH, network scans, the AI assistant, onboarding over SSH (install queue), image builds (\`build/\`), API keys and audit |
| \`functions/observability/\`, \`realtime/\`, \`metering/\`, \`system/\` | metrics, WebSocket streams, cost meters, health, docs and install routes |

Names kept apart: a **schedule** is always an EventBridge Scheduler schedule (\`functions/schedules.ts\`,
an area's \`schedules.ts\`, the \`Scheduler\` port); choosing where a task runs is **planning** and
**placement** (\`task-planner/\`, \`cluster/placement.ts\`). \`fleet\` names a route group (one Lambda
function: the Nodes API and the Fleet Commander routes), not a folder.

Where a module goes: about one node's identity, records or commands, \`nodes/\`; a route agents call,
\`agent-api/\`; a shape the agent also reads or writes, \`protocol/\`; a Fleet Commander feature,
\`commander/\` (in a folder of its own from three files, as \`maintenance/\` and \`build/\`). Its unit
test sits at the same path under \`test/unit/\`. Moving files: add them to the map of
\`scripts/restructure.ts\`, which moves them and rewrites every import and path that names them.
`,
  },
];
