import { readFileSync } from 'node:fs';
import { homedir, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as z from 'zod';
import { registerRequest } from '../protocol/messages.js';
import { isLogFormat, isLogLevel, type LogFormat, type LogLevel } from './log.js';
import { DEFAULT_POLICY, type NodePolicy } from './policy.js';

export interface AgentConfig {
  url: string;
  nodeName: string;
  labels: Record<string, string>;
  cluster?: string;
  stateDir: string;
  /** Overrides the interval the control plane asks for. */
  heartbeatSeconds?: number;
  apiKey?: string;
  /** Join token (GET /api/swarm/join-token): the registration credential when there is no API key. */
  joinToken?: string;
  logLevel: LogLevel;
  /** json (one object a line, the control plane's fields) or text (the same, for a person). */
  logFormat?: LogFormat;
  /** Folder under which image.build may take its build contexts (POST /api/build/build). Unset: no builds. */
  buildRoot?: string;
  /** Lets the control plane run shell commands on this host (host.exec, POST /api/ssh/exec-node). Off unless asked for. */
  allowExec?: boolean;
  /** The agent bundle host.install copies to new hosts (FLEET_AGENT_BUNDLE); default: this agent's own bundle. */
  installBundle?: string;
  /** What containers may do on this node (mounts, privileges); only the node's owner sets it. */
  policy?: NodePolicy;
  /** `container` (Docker/Podman) or `process` (commands as process groups, for hosts without an engine). */
  driver?: 'container' | 'process';
  /** This node's folder for training checkpoints (FLEET_CHECKPOINT_ROOT); unset: the control plane's path. */
  checkpointRoot?: string;
}

export const USAGE = `Usage: fleet-agent [options]

Registers this machine with the fleet control plane, runs the containers it is told to run and
reports their state and the node's metrics.

Options (flag > environment > config file > default):
  --url <url>            control plane            FLEET_URL          (http://127.0.0.1:8000)
  --name <name>          node name                FLEET_NODE_NAME    (hostname)
  --labels k=v,k=v       node labels              FLEET_LABELS
  --cluster <name>       cluster                  FLEET_CLUSTER
  --state-dir <path>     registration + journal   FLEET_STATE_DIR    (~/.fleet-agent/<name>)
  --heartbeat <seconds>  heartbeat interval       FLEET_HEARTBEAT    (the control plane's)
  --join-token <token>   registration credential  FLEET_JOIN_TOKEN   (from GET /api/swarm/join-token)
  --config <file>        JSON file with the same keys (url, name, labels, cluster, stateDir,
                         heartbeat, apiKey, joinToken, logLevel, logFormat, allowExec)   FLEET_AGENT_CONFIG
  --log-level <level>    debug|info|warn|error    FLEET_LOG_LEVEL    (info)
  --log-format <format>  json|text                FLEET_LOG_FORMAT   (json)
  --build-root <dir>     let the control plane build images from folders under <dir>
                         (POST /api/build/build)  FLEET_BUILD_ROOT   (off)
  --allow-exec           let the control plane run shell commands on this host
                         (POST /api/ssh/exec-node)  FLEET_ALLOW_EXEC=true   (off)
  --driver <driver>      container|process: process runs each start's command as a
                         process group (hosts without an engine)  FLEET_DRIVER  (container)
  Node policy (the control plane cannot change it; all off by default):
  --allow-host-paths p,p host folders containers may bind-mount  FLEET_ALLOW_HOST_PATHS
                         (default /var/lib/fleet/checkpoints; / is never allowed)
  --allow-engine-socket  let containers mount the engine socket   FLEET_ALLOW_ENGINE_SOCKET=true
  --allow-privileged     let containers run privileged            FLEET_ALLOW_PRIVILEGED=true
  --allow-host-network   let containers use the host network      FLEET_ALLOW_HOST_NETWORK=true
  --allow-host-pid       let containers use the host PID space    FLEET_ALLOW_HOST_PID=true
  --allow-capabilities c,c  capabilities containers may add (ALL: any)  FLEET_ALLOW_CAPABILITIES
  -h, --help             this text
  -v, --version          agent version

Environment only:
  FLEET_API_KEY          sent as the bearer credential on registration
  FLEET_AGENT_BUNDLE     the agent bundle copied to hosts onboarded over SSH
                         (default: this agent's own bundle, else dist/agent.mjs)
  FLEET_CHECKPOINT_ROOT  this node's folder for training checkpoints, <root>/<job_id> per job
                         (default: the control plane's TRAINING_CHECKPOINT_ROOT); must be
                         under --allow-host-paths
  DOCKER_HOST            container engine (unix:///path or tcp://host:port); default
                         /var/run/docker.sock, as the docker CLI does`;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const fileSchema = z
  .object({
    url: z.string().optional(),
    name: z.string().optional(),
    labels: z.union([z.string(), z.record(z.string(), z.string())]).optional(),
    cluster: z.string().optional(),
    stateDir: z.string().optional(),
    heartbeat: z.union([z.number(), z.string()]).optional(),
    apiKey: z.string().optional(),
    joinToken: z.string().optional(),
    logLevel: z.string().optional(),
    logFormat: z.string().optional(),
    buildRoot: z.string().optional(),
    allowExec: z.boolean().optional(),
    driver: z.enum(['container', 'process']).optional(),
    policy: z
      .object({
        allowHostPaths: z.array(z.string()).optional(),
        allowEngineSocket: z.boolean().optional(),
        allowPrivileged: z.boolean().optional(),
        allowHostNetwork: z.boolean().optional(),
        allowHostPid: z.boolean().optional(),
        allowCapabilities: z.array(z.string()).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

/** `k=v,k2=v2` → record. Values may contain '='; an entry without one is an error. */
export function parseLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new ConfigError(`label "${part}" is not key=value`);
    out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}

function positiveNumber(value: string | number, what: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new ConfigError(`${what} must be a positive number, got "${value}"`);
  return n;
}

/** An explicit yes or no: a typo must not switch remote execution on (or off) silently. */
function explicitFlag(value: string, what: string): boolean {
  const v = value.trim().toLowerCase();
  if (['true', '1', 'yes'].includes(v)) return true;
  if (['false', '0', 'no'].includes(v)) return false;
  throw new ConfigError(`${what} must be true or false, got "${value}"`);
}

const list = (text: string) =>
  text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);

/** flag > env > config file > off, for each rule of the node policy. */
function loadPolicy(
  values: Record<string, string | boolean | undefined>,
  env: NodeJS.ProcessEnv,
  file: Partial<NodePolicy>,
): NodePolicy {
  const flag = (name: string, variable: string, fromFile: boolean | undefined): boolean => {
    if (values[name] === true) return true;
    const v = env[variable];
    if (v !== undefined && v !== '') return explicitFlag(v, variable);
    return fromFile === true;
  };
  const listOf = (name: string, variable: string, fromFile: string[] | undefined, fallback: string[]) => {
    const v = values[name];
    if (typeof v === 'string' && v !== '') return list(v);
    const e = env[variable];
    if (e !== undefined && e !== '') return list(e);
    return fromFile ?? fallback;
  };
  const allowHostPaths = listOf(
    'allow-host-paths',
    'FLEET_ALLOW_HOST_PATHS',
    file.allowHostPaths,
    DEFAULT_POLICY.allowHostPaths,
  ).map((p) => {
    if (!p.startsWith('/')) throw new ConfigError(`allowed host path "${p}" is not absolute`);
    return resolve(p);
  });
  return {
    allowHostPaths,
    allowEngineSocket: flag('allow-engine-socket', 'FLEET_ALLOW_ENGINE_SOCKET', file.allowEngineSocket),
    allowPrivileged: flag('allow-privileged', 'FLEET_ALLOW_PRIVILEGED', file.allowPrivileged),
    allowHostNetwork: flag('allow-host-network', 'FLEET_ALLOW_HOST_NETWORK', file.allowHostNetwork),
    allowHostPid: flag('allow-host-pid', 'FLEET_ALLOW_HOST_PID', file.allowHostPid),
    allowCapabilities: listOf('allow-capabilities', 'FLEET_ALLOW_CAPABILITIES', file.allowCapabilities, []),
  };
}

export type ParsedCli = { kind: 'help' } | { kind: 'version' } | { kind: 'run'; config: AgentConfig };

export interface LoadConfigDeps {
  readFile?: (path: string) => string;
  hostname?: () => string;
  homedir?: () => string;
}

export function loadConfig(argv: string[], env: NodeJS.ProcessEnv, deps: LoadConfigDeps = {}): ParsedCli {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        url: { type: 'string' },
        name: { type: 'string' },
        labels: { type: 'string' },
        cluster: { type: 'string' },
        'state-dir': { type: 'string' },
        heartbeat: { type: 'string' },
        'join-token': { type: 'string' },
        config: { type: 'string' },
        'log-level': { type: 'string' },
        'log-format': { type: 'string' },
        'build-root': { type: 'string' },
        'allow-exec': { type: 'boolean' },
        driver: { type: 'string' },
        'allow-host-paths': { type: 'string' },
        'allow-engine-socket': { type: 'boolean' },
        'allow-privileged': { type: 'boolean' },
        'allow-host-network': { type: 'boolean' },
        'allow-host-pid': { type: 'boolean' },
        'allow-capabilities': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    }));
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  if (values['help']) return { kind: 'help' };
  if (values['version']) return { kind: 'version' };

  const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
  const configPath = str(values['config']) ?? str(env['FLEET_AGENT_CONFIG']);
  let file: z.infer<typeof fileSchema> = {};
  if (configPath) {
    const read = deps.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
    let raw: unknown;
    try {
      raw = JSON.parse(read(configPath));
    } catch (error) {
      throw new ConfigError(`config file ${configPath}: ${(error as Error).message}`);
    }
    const parsed = fileSchema.safeParse(raw);
    if (!parsed.success)
      throw new ConfigError(
        `config file ${configPath}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
      );
    file = parsed.data;
  }

  const nodeName =
    str(values['name']) ?? str(env['FLEET_NODE_NAME']) ?? file.name ?? (deps.hostname ?? hostname)();
  const nameCheck = registerRequest.shape.nodeName.safeParse(nodeName);
  if (!nameCheck.success) {
    throw new ConfigError(
      `node name "${nodeName}" is not valid (1-128 of letters, digits, . _ -, starting with a letter or digit); set --name`,
    );
  }

  const labelsText = str(values['labels']) ?? str(env['FLEET_LABELS']);
  const labels =
    labelsText !== undefined
      ? parseLabels(labelsText)
      : typeof file.labels === 'string'
        ? parseLabels(file.labels)
        : (file.labels ?? {});

  const heartbeat = str(values['heartbeat']) ?? str(env['FLEET_HEARTBEAT']) ?? file.heartbeat;
  const logLevel = str(values['log-level']) ?? str(env['FLEET_LOG_LEVEL']) ?? file.logLevel ?? 'info';
  if (!isLogLevel(logLevel))
    throw new ConfigError(`log level "${logLevel}" is not one of debug, info, warn, error`);
  const logFormat = str(values['log-format']) ?? str(env['FLEET_LOG_FORMAT']) ?? file.logFormat ?? 'json';
  if (!isLogFormat(logFormat)) throw new ConfigError(`log format "${logFormat}" is not one of json, text`);

  const url = str(values['url']) ?? str(env['FLEET_URL']) ?? file.url ?? 'http://127.0.0.1:8000';
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
  } catch {
    throw new ConfigError(`control plane URL "${url}" is not an http(s) URL`);
  }

  const stateDir =
    str(values['state-dir']) ??
    str(env['FLEET_STATE_DIR']) ??
    file.stateDir ??
    join((deps.homedir ?? homedir)(), '.fleet-agent', nodeName);
  const config: AgentConfig = {
    url,
    nodeName,
    labels,
    stateDir: resolve(stateDir),
    logLevel,
    logFormat,
    policy: loadPolicy(values, env, file.policy ?? {}),
  };
  const cluster = str(values['cluster']) ?? str(env['FLEET_CLUSTER']) ?? file.cluster;
  if (cluster) config.cluster = cluster;
  if (heartbeat !== undefined) config.heartbeatSeconds = positiveNumber(heartbeat, 'heartbeat');
  const apiKey = str(env['FLEET_API_KEY']) ?? file.apiKey;
  if (apiKey) config.apiKey = apiKey;
  const joinToken = str(values['join-token']) ?? str(env['FLEET_JOIN_TOKEN']) ?? file.joinToken;
  if (joinToken) config.joinToken = joinToken;
  const buildRoot = str(values['build-root']) ?? str(env['FLEET_BUILD_ROOT']) ?? file.buildRoot;
  if (buildRoot) config.buildRoot = resolve(buildRoot);
  const execEnv = str(env['FLEET_ALLOW_EXEC']);
  const allowExec =
    values['allow-exec'] === true ||
    (execEnv !== undefined ? explicitFlag(execEnv, 'FLEET_ALLOW_EXEC') : file.allowExec === true);
  if (allowExec) config.allowExec = true;
  const driver = str(values['driver']) ?? str(env['FLEET_DRIVER']) ?? file.driver;
  if (driver !== undefined) {
    if (driver !== 'container' && driver !== 'process')
      throw new ConfigError(`driver "${driver}" is not one of container, process`);
    config.driver = driver;
  }
  const installBundle = str(env['FLEET_AGENT_BUNDLE']);
  if (installBundle) config.installBundle = resolve(installBundle);
  const checkpointRoot = str(env['FLEET_CHECKPOINT_ROOT']);
  if (checkpointRoot) config.checkpointRoot = resolve(checkpointRoot);
  return { kind: 'run', config };
}
