/**
 * Chaos: `npm start` SIGKILLed in the middle of container starts and restarted on the same folder
 * and port, with a REAL agent on Podman that stays up throughout; embedded (dynalite files and
 * secrets.json in its data folder, the HTTP command channel) and on moto (DynamoDB and SQS command
 * queues under this suite's own names; the agent polls SQS itself). Each round: a start is sent, the process is killed at a seeded
 * random moment of it (or once its container exists on the engine), then restarted. Afterwards
 * every command has exactly one outcome, the image runs exactly its desired count with one
 * container per copy, and the API key and the vault's passwords are still there.
 *
 * Seeded: CHAOS_SEED repeats a run's kill moments (the seed is printed).
 */
import type { ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fleetKeys } from '../../functions/core/keys.js';
import type { CommandItem } from '../../functions/nodes/commands.js';
import { queryAll } from '../../functions/ports/store.js';
import { startRuntime } from '../../local/runtime.js';
import { LABELS } from '../../protocol/messages.js';
import { BUSYBOX_IMAGE, ensureBusyboxImage } from '../harness/images.js';
import { agentEnv } from '../harness/fleet.js';
import { freePort } from '../harness/free-port.js';
import { killLocalProcess, startLocalProcess } from '../harness/local-process.js';
import {
  bothServices,
  describeWith,
  emulatorDeployment,
  engine as dockerClient,
  requireEngine,
  requireMoto,
  uniqueName,
} from '../harness/services.js';
import {
  AgentProcess,
  buildAgentBundle,
  engineContainers,
  eventually,
  removeNodeContainers,
  RUN_UNTIL_TERM,
  sleep,
  tagImage,
  untagImage,
} from './harness.js';
import { seededRandom } from './chaos-random.js';

const SEED = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
const ROUNDS = Number(process.env.CHAOS_CP_ROUNDS ?? 3);
const API_KEY = `chaos-key-${'0123456789abcdef'.repeat(2)}`;
/** A folder to keep the control plane's and the agent's logs in (info level); none keeps them silent. */
const LOG_DIR = process.env.CHAOS_LOG_DIR;

const engineStatus = requireEngine();
const motoStatus = requireMoto();
const modes = [
  { name: 'npm start, Podman', moto: false, status: engineStatus },
  {
    name: 'npm start on moto, SQS command queues, Podman',
    moto: true,
    status: bothServices(engineStatus, motoStatus),
  },
];

describe.each(modes)('chaos: the control plane SIGKILLed mid-command ($name)', (mode) => {
  const runId = uniqueName(mode.moto ? 'chaoscps' : 'chaoscp');
  const IMAGE = `localhost/${runId}:cp`;
  const nodeName = `${runId}-a`;
  /** Where the control plane keeps its state: its data folder, and on moto this suite's own table and queues. */
  const modeEnv = (): Record<string, string> =>
    mode.moto
      ? { ...emulatorDeployment(runId), API_AUTH: 'false' }
      : { AWS_ENDPOINT_URL: '', API_AUTH: 'true' };
  describeWith(mode.status, 'a real agent stays up throughout', () => {
    let docker: Docker;
    let dataDir: string;
    let port: number;
    let child: ChildProcess | undefined;
    let url = '';
    let agent: AgentProcess;

    /** Every answer of 500 or more any call got: none may come from any request. */
    const serverErrors: string[] = [];
    const start = async () => {
      ({ child, url } = await startLocalProcess(
        dataDir,
        {
          ...modeEnv(),
          LOG_LEVEL: LOG_DIR ? 'INFO' : 'SILENT',
          COMMAND_WAIT_MS: '20000',
          NODE_OFFLINE_AFTER_SECONDS: '60',
          RESTART_BACKOFF_SECONDS: '1',
        },
        port,
      ));
      if (LOG_DIR) {
        const log = createWriteStream(join(LOG_DIR, `${runId}-control-plane.log`), { flags: 'a' });
        child.stdout!.pipe(log, { end: false });
        child.stderr!.pipe(log, { end: false });
      }
    };
    const killControlPlane = () => killLocalProcess(child!);
    const api = async (method: string, path: string, body?: unknown, key = API_KEY) => {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(60_000),
      });
      const text = await res.text();
      if (res.status >= 500) serverErrors.push(`${method} ${path} → ${res.status} ${text.slice(0, 500)}`);
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read loosely typed JSON bodies
      const parsed: any = text ? JSON.parse(text) : undefined;
      return {
        status: res.status,
        body: parsed,
        text: `${method} ${path} → ${res.status} ${text.slice(0, 500)}`,
      };
    };

    beforeAll(async () => {
      console.log(`chaos-control-plane seed ${SEED} (CHAOS_SEED=${SEED} repeats its kill moments)`);
      docker = dockerClient();
      await ensureBusyboxImage(docker);
      await tagImage(docker, BUSYBOX_IMAGE, IMAGE);
      dataDir = await mkdtemp(join(tmpdir(), `${runId}-`));
      await writeFile(join(dataDir, 'secrets.json'), JSON.stringify({ 'api-key': API_KEY }), { mode: 0o600 });
      port = await freePort();
      await start();
      const bundle = join(dataDir, 'agent.mjs');
      await buildAgentBundle(bundle);
      agent = new AgentProcess({
        url,
        name: nodeName,
        stateDir: join(dataDir, 'agent'),
        heartbeatSeconds: 1,
        entry: [bundle],
        env: agentEnv({ FLEET_API_KEY: API_KEY }),
        ...(LOG_DIR
          ? (() => {
              const log = createWriteStream(join(LOG_DIR, `${runId}-agent.log`), { flags: 'a' });
              return { onLine: (line: string) => void log.write(`${line}\n`) };
            })()
          : {}),
      });
      await agent.start();
    }, 120_000);

    afterAll(async () => {
      await agent?.kill('SIGKILL');
      if (docker) await removeNodeContainers(docker, [nodeName]);
      if (child) await killControlPlane();
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
      if (docker) await untagImage(docker, IMAGE);
    }, 60_000);

    it(`${ROUNDS} kills mid-start: every command settles once, one container per copy, the key and vault survive`, async () => {
      const random = seededRandom(SEED);
      const vault = await api('POST', '/api/vault/', {
        name: `${runId}-cred`,
        username: 'root',
        password: 'pw-chaos',
      });
      expect(vault.status, vault.text).toBe(201);
      // Keys matter where they are checked: embedded, with API_AUTH on.
      let operatorKey = '';
      if (!mode.moto) {
        const issued = await api('POST', '/api/keys', { name: `${runId}-op`, role: 'operator' });
        expect(issued.status, issued.text).toBe(201);
        operatorKey = issued.body.key as string;
      }

      for (let round = 0; round < ROUNDS; round++) {
        // Rounds die at a random moment of the call, once the engine has the container, or with the
        // command recorded and queued while the agent is away (only the table keeps it then).
        const kind = (['random', 'on-engine', 'queued'] as const)[round % 3]!;
        const onEngine = kind === 'on-engine';
        const before = (await engineContainers(docker, [nodeName], { [LABELS.image]: IMAGE })).length;
        if (kind === 'queued') await agent.kill('SIGKILL');
        const request = api('POST', `/containers/${IMAGE}/start`, { count: 1, command: RUN_UNTIL_TERM });
        request.catch(() => undefined);
        if (kind === 'queued')
          await eventually(
            'the start recorded',
            async () => {
              const res = await api('GET', `/containers/${IMAGE}/instances`);
              expect(
                (res.body.instances as { status: string }[]).filter((i) => i.status === 'created'),
              ).toHaveLength(1);
            },
            30_000,
            100,
          );
        else if (onEngine)
          await eventually(
            'the new container on the engine',
            async () =>
              expect(
                (await engineContainers(docker, [nodeName], { [LABELS.image]: IMAGE })).length,
              ).toBeGreaterThan(before),
            30_000,
            50,
          );
        else await sleep(random.int(1500));
        await killControlPlane();
        const answered = await request.then(
          (r) => r.status,
          () => 'cut',
        );
        console.log(`chaos-control-plane: round ${round} killed (${kind}); the call: ${answered}`);
        await start();
        if (!agent.alive) await agent.start();

        // The agent reconnects by itself; the start settles (or was never recorded) and the records match the engine.
        await eventually(
          `round ${round}: settled`,
          async () => {
            const images = await api('GET', '/images');
            expect(images.status, images.text).toBe(200);
            const desired =
              (images.body.images as { image: string; desired_count: number }[]).find(
                (i) => i.image === IMAGE,
              )?.desired_count ?? 0;
            expect(desired, 'desired: each start counted once at most').toBeLessThanOrEqual(round + 1);
            const instances = await api('GET', `/containers/${IMAGE}/instances`);
            const live = (instances.body.instances as { id: string; status: string }[]).filter(
              (i) => i.status !== 'removed',
            );
            expect(
              live.map((i) => i.status),
              instances.text,
            ).toEqual(live.map(() => 'running'));
            expect(live).toHaveLength(desired);
            const containers = await engineContainers(docker, [nodeName], { [LABELS.image]: IMAGE });
            expect(containers.map((c) => c.state).sort()).toEqual(live.map(() => 'running'));
            expect(containers.map((c) => c.labels[LABELS.instance]).sort()).toEqual(
              live.map((i) => i.id).sort(),
            );
          },
          90_000,
          500,
        );
      }
      expect(serverErrors, 'no call answered 500 or more').toEqual([]);
      const finalImages = await api('GET', '/images');
      console.log(`chaos-control-plane: ${ROUNDS} kills; ${JSON.stringify(finalImages.body.images)}`);

      // What the process keeps on disk came through every kill.
      expect((await api('GET', '/api/vault/')).body).toEqual([
        expect.objectContaining({ name: `${runId}-cred` }),
      ]);
      if (!mode.moto) {
        const secrets = JSON.parse(await readFile(join(dataDir, 'secrets.json'), 'utf8')) as Record<
          string,
          string
        >;
        expect(secrets['api-key']).toBe(API_KEY);
        expect(Object.values(secrets)).toContain('pw-chaos');
        expect((await api('GET', '/containers', undefined, operatorKey)).status).toBe(200);
        expect((await api('GET', '/containers', undefined, 'not-the-key-0123456789abcdef0123')).status).toBe(
          401,
        );
      }

      // Once more, in this process on the same folder and port, to read the command records themselves.
      await killControlPlane();
      child = undefined;
      const rt = await startRuntime({
        port,
        dataDir,
        env: {
          ...process.env,
          ...modeEnv(),
          LOG_LEVEL: 'SILENT',
          COMMAND_WAIT_MS: '20000',
        },
      });
      try {
        const commands = await eventually(
          'every command settled',
          async () => {
            const all = await queryAll<CommandItem>(rt.ctx.store, fleetKeys.nodeCommandsPk(agent.nodeId), {
              index: 'gsi1',
            });
            expect(all.filter((c) => c.status === 'pending').map((c) => `${c.type} ${c.commandId}`)).toEqual(
              [],
            );
            return all;
          },
          60_000,
          500,
        );
        const starts = commands.filter((c) => c.type === 'container.start');
        console.log(
          `chaos-control-plane: commands ${JSON.stringify(commands.map((c) => `${c.type} ${c.status}${c.error ? ` (${c.error})` : ''}`))}`,
        );
        // One start command per copy that ever ran: a start re-sent after a kill is the same command.
        const instanceIds = new Set(starts.map((c) => c.instanceId));
        expect(instanceIds.size).toBe(starts.length);
      } finally {
        await rt.stop();
      }
    }, 600_000);
  });
});
