/**
 * Onboarding over SSH end to end: the local runtime (embedded), a REAL agent that installs, and a
 * REAL sshd (openssh-server) on a loopback address of this run's own as the target host, with a
 * throwaway login whose profile points DOCKER_HOST at the engine (through a socket it may use,
 * as a member of the docker group would). The installing agent and the installed one are the bundle
 * (npm run build:agent: ssh2 is a file of its own beside it, which host.install loads) with this
 * Node runtime; the installed one is copied over SFTP and registers with the runtime.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFile, chmod, chown, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { getJob } from '../../functions/commander/install-queue.js';
import { startRuntime, type Runtime } from '../../local/runtime.js';
import { agentEnv } from '../harness/fleet.js';
import { requireEngine, uniqueName, describeWith } from '../harness/services.js';
import { loopbackPair, requireSshd, Sshd, TestUser } from '../harness/sshd.js';
import { AgentProcess, call, EngineProxy, eventually, REPO_ROOT } from './harness.js';

const engine = requireEngine();
const sshd = requireSshd();
const status = engine.available ? sshd : engine;
const run = promisify(execFile);

describeWith(status, 'Onboarding over SSH: a real agent installs the agent on a real sshd host', () => {
  const runId = uniqueName('onb');
  const { address, silent } = loopbackPair();
  const rightPassword = `right-${randomBytes(9).toString('base64url')}`;
  const user = new TestUser(`fl${randomBytes(4).toString('hex')}`, rightPassword);
  const server = new Sshd(address);
  const credName = `${runId}-login`;
  let root: string;
  let rt: Runtime;
  let installer: AgentProcess;
  let proxy: EngineProxy;
  let credId: string;
  const api = (method: string, path: string, body?: unknown) => call(rt.url, method, path, body);

  const job = async (jobId: string) => (await api('GET', `/api/install-queue/queue/${jobId}`)).body;
  const jobEnds = (jobId: string, timeoutMs = 150_000) =>
    eventually(
      `install job ${jobId} to end`,
      async () => {
        const j = await job(jobId);
        expect(['joined', 'failed'], JSON.stringify(j)).toContain(j.state);
        return j;
      },
      timeoutMs,
      500,
    );

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), `${runId}-`));
    await chmod(root, 0o755);
    await run(process.execPath, ['--import', 'tsx', 'agent/build.ts', join(root, 'agent.mjs')], {
      cwd: REPO_ROOT,
    });

    await server.start();
    await user.create();
    // The login reaches the engine through a socket of its own (the docker group's part).
    proxy = new EngineProxy(join(root, 'engine.sock'), process.env.DOCKER_HOST!.replace(/^unix:\/\//, ''));
    await proxy.listen();
    const { stdout } = await run('id', ['-u', user.name]);
    await chown(proxy.path, Number(stdout.trim()), 0);
    await appendFile(join(user.home, '.profile'), `\nexport DOCKER_HOST=${proxy.dockerHost}\n`);

    rt = await startRuntime({
      port: 0,
      env: {
        ...process.env,
        LOG_LEVEL: process.env.E2E_LOG_LEVEL ?? 'SILENT',
        COMMAND_WAIT_MS: '25000',
        INSTALL_JOIN_TIMEOUT_SECONDS: '90',
        INSTALL_CONCURRENCY_PER_NODE: '1',
        AWS_ENDPOINT_URL: undefined,
      },
    });
    // The installer runs as installed: the bundle, whose host.install loads ssh2 from the file beside it.
    installer = new AgentProcess({
      url: rt.url,
      name: `${runId}-installer`,
      stateDir: join(root, 'installer-state'),
      entry: [join(root, 'agent.mjs')],
      heartbeatSeconds: 1,
      env: agentEnv({ FLEET_AGENT_BUNDLE: join(root, 'agent.mjs') }),
    });
    await installer.start();
    const saved = await api('POST', '/api/vault/', {
      name: credName,
      username: user.name,
      password: 'wrong-password',
    });
    expect(saved.status, saved.text).toBe(201);
    credId = saved.body.id;
  }, 180_000);

  afterAll(async () => {
    // The installed agent runs as the login: stop it by its pid file before the login goes.
    const pid = Number(
      (await readFile(join(user.home, '.fleet-agent', 'agent.pid'), 'utf8').catch(() => '')).trim(),
    );
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    await installer?.kill('SIGTERM').catch(() => undefined);
    await rt?.stop();
    await proxy?.close();
    await server.remove();
    await user.remove();
    if (root) await rm(root, { recursive: true, force: true });
  }, 60_000);

  it('refuses bad input in the documented shape and changes nothing', async () => {
    const missing = await api('POST', '/api/install-queue/queue', { credential_id: credId });
    expect(missing.status).toBe(400);
    expect(typeof missing.body.detail === 'string' || Array.isArray(missing.body.detail)).toBe(true);
    const unknown = await api('POST', '/api/install-queue/queue', {
      host: address,
      credential_id: 'no-such-cred',
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({ detail: 'Credential no-such-cred not found' });
    expect((await api('GET', '/api/install-queue/queue/no-such-job')).status).toBe(404);
    expect((await api('GET', '/api/install-queue/queue')).body).toMatchObject({ jobs: [], total: 0 });
  });

  it('a wrong password ends failed at connect; with the right one a retry installs the agent, which registers', async () => {
    const name = `${runId}-host`;
    const queued = await api('POST', '/api/install-queue/queue', {
      host: address,
      credential_id: credId,
      cluster: 'vision',
      name,
    });
    expect(queued.status, queued.text).toBe(201);
    expect(queued.body).toMatchObject({
      host: address,
      port: 22,
      cluster: 'vision',
      installer_node_id: installer.nodeId,
      attempts: 1,
    });
    expect(['queued', 'connecting', 'installing', 'failed']).toContain(queued.body.state);
    const jobId = queued.body.job_id as string;

    const failed = await jobEnds(jobId);
    expect(failed).toMatchObject({ state: 'failed', step: 'connect' });
    expect(failed.error).toMatch(/authentication failed for user .+: wrong username or password/);
    expect(failed.steps).toEqual([expect.objectContaining({ name: 'connect', status: 'failed' })]);
    // Only failed jobs are retried.
    expect((await api('POST', '/api/install-queue/queue/retry-failed')).status).toBe(200);
    const afterBulk = await jobEnds(jobId);
    expect(afterBulk).toMatchObject({ state: 'failed', attempts: 2 });

    expect(
      (await api('POST', '/api/vault/', { name: credName, username: user.name, password: rightPassword }))
        .status,
    ).toBe(200);
    const retried = await api('POST', `/api/install-queue/queue/${jobId}/retry`);
    expect(retried.status, retried.text).toBe(200);
    expect(retried.body.attempts).toBe(3);

    const joined = await jobEnds(jobId);
    expect(joined, JSON.stringify(joined)).toMatchObject({
      state: 'joined',
      error: null,
      step: null,
      joined_node_name: name,
    });
    expect(joined.steps.map((s: { name: string; status: string }) => [s.name, s.status])).toEqual([
      ['connect', 'ok'],
      ['check', 'ok'],
      ['upload', 'ok'],
      ['start', 'ok'],
      ['register', 'ok'],
    ]);
    expect(joined.facts).toMatchObject({
      arch: 'x86_64',
      sudo: 'absent',
      engine: `docker at ${proxy.dockerHost}`,
    });
    // No password anywhere in what the API shows.
    const all = (await api('GET', '/api/install-queue/queue')).text;
    expect(all).not.toContain(rightPassword);
    expect(all).not.toContain('FLEETJT-1-');

    const node = await eventually('the new node online', async () => {
      const nodes = (await api('GET', '/api/nodes/')).body.nodes as {
        id: string;
        name?: string;
        status: string;
        cluster: string | null;
      }[];
      const n = nodes.find((x) => x.id === joined.joined_node_id);
      expect(n?.status).toBe('online');
      return n!;
    });
    expect(node.cluster).toBe('vision');
    // The used join token does not stay on the host.
    const env = await readFile(join(user.home, '.fleet-agent', 'agent.env'), 'utf8');
    expect(env).toContain(`FLEET_NODE_NAME='${name}'`);
    expect(env).not.toContain('FLEET_JOIN_TOKEN');
    // A second install of the same host waits for nothing: it is not in progress.
    const jobs = (await api('GET', '/api/install-queue/queue')).body;
    expect(jobs.counts).toMatchObject({ joined: 1, failed: 0, queued: 0 });
  }, 300_000);

  it('an unreachable host ends failed at connect with the reason', async () => {
    const queued = await api('POST', '/api/network/join', { ip: silent, credential_id: credName });
    expect(queued.status, queued.text).toBe(201);
    const failed = await jobEnds(queued.body.job_id);
    expect(failed).toMatchObject({ state: 'failed', step: 'connect', host: silent });
    expect(failed.error).toMatch(/connection refused by 127\.\d+\.\d+\.11:22/);
  }, 60_000);

  it('swarm join-remote: a wrong inline password is a 401; the right one answers the document’s shape once the node is online', async () => {
    const refused = await api('POST', '/api/swarm/join-remote', {
      node_ip: address,
      username: user.name,
      password: 'nope',
      cluster: 'vision',
    });
    expect(refused.status, refused.text).toBe(401);
    expect(refused.body.detail).toMatch(/^Node 127\.\S+ did not join: connect: authentication failed/);

    const res = await api('POST', '/api/swarm/join-remote', {
      node_ip: address,
      username: user.name,
      password: rightPassword,
      cluster: 'vision',
    });
    expect([200, 202], res.text).toContain(res.status);
    const jobId = res.body.job_id as string;
    const done = await jobEnds(jobId);
    expect(done.state, JSON.stringify(done)).toBe('joined');
    if (res.status === 202) expect(res.body).toMatchObject({ status: 'installing', job_id: jobId });
    if (res.status === 200) {
      expect(res.body).toEqual({
        status: 'success',
        message: `Node ${address} joined swarm successfully`,
        node_id: done.joined_node_id,
        cluster: 'vision',
        job_id: jobId,
      });
    }
    // The inline login lived as long as the job ran, no longer.
    expect((await rt.ctx.secrets.list()).filter((n) => n.startsWith('install/'))).toEqual([]);
    // ...so the refused job cannot be retried: its login is gone.
    const again = await api('POST', `/api/install-queue/queue/${refused.body.job_id}/retry`);
    expect(again.status, again.text).toBe(409);
    expect(again.body.detail).toMatch(/inline credential, deleted when it failed/);
  }, 300_000);

  it('a changed host key is refused until the stored one is forgotten', async () => {
    await server.stop();
    await server.newHostKey();
    await server.start();
    const queued = await api('POST', '/api/install-queue/queue', {
      host: address,
      credential_id: credId,
      name: `${runId}-host`,
    });
    expect(queued.status, queued.text).toBe(201);
    const failed = await jobEnds(queued.body.job_id);
    expect(failed).toMatchObject({ state: 'failed', step: 'connect' });
    expect(failed.error).toMatch(
      /^host key changed: 127\.\S+:22 presented SHA256:\S+, but SHA256:\S+ is stored for it; refused/,
    );

    expect((await api('DELETE', `/api/install-queue/host-keys/${address}`)).body).toEqual({
      status: 'deleted',
      host: address,
      port: 22,
    });
    const retried = await api('POST', `/api/install-queue/queue/${queued.body.job_id}/retry`);
    expect(retried.status, retried.text).toBe(200);
    expect((await jobEnds(queued.body.job_id)).state).toBe('joined');
  }, 300_000);

  it('one install at a time per node (INSTALL_CONCURRENCY_PER_NODE=1): the next waits queued until the first ends', async () => {
    // A host that accepts TCP and never speaks SSH holds the first install in `connecting`.
    const holder = loopbackPair().address;
    const sockets: Socket[] = [];
    let accepted!: () => void;
    const connected = new Promise<void>((resolve) => (accepted = resolve));
    const tarpit = createServer((s) => {
      sockets.push(s);
      accepted();
    });
    await new Promise<void>((resolve) => tarpit.listen(22, holder, resolve));
    try {
      const first = await api('POST', '/api/install-queue/queue', {
        host: holder,
        credential_id: credId,
        node_id: installer.name,
      });
      expect(first.body.state).toBe('connecting');
      await connected;
      // The login goes only to the node running that install: not to another node, not without a token.
      const commandId = (await getJob(rt.ctx, first.body.job_id))!.commandId!;
      const tokenOf = async (stateDir: string) =>
        (JSON.parse(await readFile(join(stateDir, 'registration.json'), 'utf8')) as { token: string }).token;
      const ask = (token?: string) =>
        fetch(`${rt.url}/agent/install/${commandId}/credential`, {
          method: 'POST',
          headers: token ? { authorization: `Bearer ${token}` } : {},
        });
      const other = await ask(await tokenOf(join(user.home, '.fleet-agent', `${runId}-host`)));
      expect(other.status).toBe(404);
      expect(await other.text()).not.toContain(rightPassword);
      expect((await ask()).status).toBe(401);
      const own = await ask(await tokenOf(join(root, 'installer-state')));
      expect(own.status).toBe(200);
      expect(own.headers.get('cache-control')).toBe('no-store');
      expect(await own.json()).toEqual({
        username: user.name,
        password: rightPassword,
        joinToken: expect.stringMatching(/^FLEETJT-1-/),
      });
      const second = await api('POST', '/api/install-queue/queue', {
        host: silent,
        credential_id: credId,
        node_id: installer.name,
      });
      expect(second.status, second.text).toBe(201);
      expect(second.body).toMatchObject({ state: 'queued', attempts: 0 });
      expect((await job(first.body.job_id)).state).toBe('connecting');
      expect((await api('GET', '/api/install-queue/queue')).body.counts).toMatchObject({
        connecting: 1,
        queued: 1,
      });

      for (const s of sockets) s.destroy();
      const firstEnd = await jobEnds(first.body.job_id);
      expect(firstEnd).toMatchObject({ state: 'failed', step: 'connect' });
      const secondEnd = await jobEnds(second.body.job_id);
      expect(secondEnd).toMatchObject({ state: 'failed', step: 'connect', attempts: 1 });
      expect(secondEnd.error).toMatch(/connection refused/);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => tarpit.close(resolve));
    }
  }, 120_000);

  it('two installs asked at the same moment on one node: one runs, the other waits its slot', async () => {
    const pits = [loopbackPair().address, loopbackPair().address].map((address) => {
      const sockets: Socket[] = [];
      let released = false;
      const server = createServer((socket) => (released ? socket.destroy() : sockets.push(socket)));
      return {
        address,
        server,
        release: () => {
          released = true;
          for (const socket of sockets) socket.destroy();
        },
      };
    });
    await Promise.all(
      pits.map((p) => new Promise<void>((resolve) => p.server.listen(22, p.address, resolve))),
    );
    try {
      const answers = await Promise.all(
        pits.map((p) =>
          api('POST', '/api/install-queue/queue', {
            host: p.address,
            credential_id: credId,
            node_id: installer.name,
          }),
        ),
      );
      expect(answers.map((a) => a.status)).toEqual([201, 201]);
      const ids = answers.map((a) => a.body.job_id as string);
      const states = await Promise.all(ids.map(async (id) => (await job(id)).state as string));
      expect(states.sort()).toEqual(['connecting', 'queued']);
      for (const p of pits) p.release();
      const ends = await Promise.all(ids.map((id) => jobEnds(id)));
      // The installing agent lived through both (ssh2 reports a lost connection twice).
      expect(installer.alive).toBe(true);
      expect(ends.map((e) => [e.state, e.step, e.attempts])).toEqual([
        ['failed', 'connect', 1],
        ['failed', 'connect', 1],
      ]);
    } finally {
      for (const p of pits) {
        p.release();
        await new Promise((resolve) => p.server.close(resolve));
      }
    }
  }, 120_000);

  it('auto-join-all skips what is not a Jetson or GPU server; DELETE clears the finished jobs', async () => {
    const scan = await api(
      'GET',
      `/api/network/scan?subnet=${address}/31&ports=22&refresh=true&node_id=${installer.name}`,
    );
    // A slow scan answers 202: auto-join-all reads the stored one once it completed.
    expect([200, 202], scan.text).toContain(scan.status);
    await eventually(
      'the scan stored',
      async () => expect((await api('GET', '/api/network/scan-status')).body.status).toBe('completed'),
      60_000,
      500,
    );
    const auto = await api('POST', '/api/network/auto-join-all', { credential_id: credId });
    expect(auto.status, auto.text).toBe(200);
    expect(auto.body.queued).toEqual([]);
    expect(auto.body.skipped).toContainEqual({
      ip: address,
      reason: 'does not look like a Jetson or a GPU server',
    });
    expect((await api('POST', '/api/network/auto-join-all', {})).status).toBe(400);

    const before = (await api('GET', '/api/install-queue/queue')).body;
    const cleared = await api('DELETE', '/api/install-queue/queue');
    expect(cleared.body).toMatchObject({ status: 'cleared', cleared: before.total, remaining: 0 });
  }, 120_000);
});
