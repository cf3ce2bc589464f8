/**
 * The console in a real browser: `npm start` (embedded runtime, API auth on) as a child process,
 * one real agent as another (agent/main.ts on Podman), and Debian's chromium driven by
 * playwright-core. A person's path through it: sign in with a key; the node appears with live
 * numbers; start a container from the form (after the form refuses a bad limit) and see it
 * running, its command shown pending until it settles; scale it; stop a copy; create a training job and see its run and output (live while it runs); open the
 * node's charts; a viewer key is offered no write button. Every page is screenshot (to
 * CONSOLE_SCREENSHOTS_DIR, docs/screenshots when refreshing the README's) and checked by axe-core:
 * no serious or critical violation.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { AxeBuilder } from '@axe-core/playwright';
import type Docker from 'dockerode';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startLocalProcess } from '../harness/local-process.js';
import { BUSYBOX_IMAGE, ensureBusyboxImage } from '../harness/images.js';
import {
  describeWith,
  engine as dockerClient,
  inCi,
  requireEngine,
  uniqueName,
  type ServiceStatus,
} from '../harness/services.js';
import { LABELS } from '../../protocol/messages.js';
import { NOVITA_KEY_SECRET } from '../../functions/ports/novita-cloud.js';
import { FakeNovita } from '../integration/novita/fake-novita.js';
import { AgentProcess, removeNodeContainers, REPO_ROOT, untagImage } from './harness.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/lib/chromium/chromium';
const ADMIN_KEY = `console-admin-${Math.random().toString(36).slice(2)}-key`;
const RUN_UNTIL_TERM = "trap 'exit 0' TERM; while true; do sleep 1; done";

function requireBrowser(): ServiceStatus {
  const engine = requireEngine();
  if (!engine.available) return engine;
  if (existsSync(CHROMIUM)) return { available: true, reason: '' };
  if (inCi) throw new Error(`No chromium at ${CHROMIUM}: apt-get install -y chromium, or set CHROMIUM_PATH`);
  return { available: false, reason: `no chromium at ${CHROMIUM}` };
}

describeWith(
  requireBrowser(),
  'console in a real browser: npm start, one real agent, Podman, chromium',
  () => {
    const nodeName = uniqueName('console');
    const shots = resolve(
      REPO_ROOT,
      process.env.CONSOLE_SCREENSHOTS_DIR ?? join(tmpdir(), 'fleet-console-screenshots'),
    );
    let docker: Docker;
    let dataDir: string;
    let server: { child: ChildProcess; url: string };
    let agent: AgentProcess;
    let browser: Browser;
    let viewerKey: string;
    let nodeId: string;
    let novita: FakeNovita;
    const built: string[] = [];

    const call = async (method: string, path: string, body?: unknown, key = ADMIN_KEY) => {
      const res = await fetch(server.url + path, {
        method,
        headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      // A 204 (a delete) has no body.
      const text = await res.text();
      return {
        status: res.status,
        body: (text ? JSON.parse(text) : {}) as Record<string, unknown> & { [k: string]: unknown },
      };
    };

    /** Serious or critical axe-core violations of the page as it is now, as "rule: target" lines. */
    const accessibility = async (page: Page) => {
      const result = await new AxeBuilder({ page }).analyze();
      return result.violations
        .filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .flatMap((v) => v.nodes.map((n) => `${v.id} (${v.impact}): ${n.target.join(' ')}`));
    };
    const checked: string[] = [];
    /** Screenshot and accessibility check of the page shown. */
    const record = async (page: Page, name: string) => {
      await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
      expect(await accessibility(page), `accessibility of ${name}`).toEqual([]);
      checked.push(name);
    };

    const signIn = async (key: string) => {
      const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(server.url);
      await page.getByLabel('API key').fill(key);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('navigation', { name: 'Pages' }).waitFor();
      return { page, errors };
    };

    beforeAll(async () => {
      docker = dockerClient();
      await ensureBusyboxImage(docker);
      await mkdir(shots, { recursive: true });
      dataDir = await mkdtemp(join(tmpdir(), 'console-e2e-'));
      // Novita's cloud is the one double: a fake on loopback, as in the Novita suites.
      const novitaKey = `nv-console-${Math.random().toString(36).slice(2)}`;
      novita = await new FakeNovita(novitaKey).start();
      await writeFile(
        join(dataDir, 'secrets.json'),
        JSON.stringify({ 'api-key': ADMIN_KEY, [NOVITA_KEY_SECRET]: novitaKey }),
        { mode: 0o600 },
      );
      // A build context under the agent's build root, for the Builds page.
      const buildRoot = join(dataDir, 'builds');
      await mkdir(join(buildRoot, 'app'), { recursive: true });
      await writeFile(
        join(buildRoot, 'app', 'Dockerfile'),
        `FROM ${BUSYBOX_IMAGE}\nRUN echo console-build-step > /built\n`,
      );
      server = await startLocalProcess(dataDir, {
        AWS_ENDPOINT_URL: '',
        LOG_LEVEL: 'SILENT',
        API_AUTH: 'true',
        WS_PUSH_INTERVAL_SECONDS: '1',
        // Calls answer 202 at once: the console must show their commands until they settle.
        COMMAND_WAIT_MS: '0',
        NOVITA_BASE_URL: novita.url,
        NOVITA_POLL_SECONDS: '1',
        REGISTRY_URL: process.env.REGISTRY_URL,
        // The suite's registry is on loopback: outbound calls there must be allowed by name.
        OUTBOUND_ALLOWLIST: new URL(process.env.REGISTRY_URL ?? 'http://127.0.0.1').hostname,
      });
      agent = new AgentProcess({
        url: server.url,
        name: nodeName,
        stateDir: join(dataDir, 'agent'),
        heartbeatSeconds: 1,
        env: { ...process.env, FLEET_API_KEY: ADMIN_KEY, FLEET_BUILD_ROOT: buildRoot },
      });
      nodeId = await agent.start();
      const viewer = await call('POST', '/api/keys', { name: 'console viewer', role: 'viewer' });
      expect(viewer.status).toBe(201);
      viewerKey = viewer.body.key as string;
      browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    }, 120_000);

    afterAll(async () => {
      await browser?.close();
      await agent?.kill('SIGTERM');
      if (docker) {
        await removeNodeContainers(docker, [nodeName]);
        for (const ref of built) await untagImage(docker, ref);
      }
      await novita?.stop();
      if (server && server.child.exitCode === null) {
        const exited = once(server.child, 'exit');
        server.child.kill('SIGTERM');
        await exited;
      }
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    }, 60_000);

    it('refuses a wrong key, then signs in with the admin key and shows the node with live numbers', async () => {
      const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
      const page = await context.newPage();
      await page.goto(server.url);
      await record(page, 'sign-in');
      await page.getByLabel('API key').fill('not-a-key');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await expect.poll(() => page.getByRole('alert').textContent()).toContain('not valid');
      // The key is kept for the tab only.
      await page.getByLabel('API key').fill(ADMIN_KEY);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByTestId('role').waitFor();
      expect(await page.getByTestId('role').textContent()).toBe('admin');
      expect(await page.evaluate(() => [sessionStorage.length, localStorage.length])).toEqual([1, 0]);

      const row = page.locator(`tr[data-node="${nodeName}"]`);
      await row.waitFor();
      // Two different stream timestamps: the numbers are pushed, not loaded once.
      const live = page.getByTestId('live');
      await expect.poll(() => live.textContent(), { timeout: 15_000 }).toMatch(/^live · \d/);
      const first = await live.textContent();
      await expect.poll(() => live.textContent(), { timeout: 15_000 }).not.toBe(first);
      expect(await row.locator('td').nth(1).textContent()).toBe('online');
      for (const metric of ['cpu', 'memory', 'disk'])
        expect(await row.locator(`[data-metric="${metric}"]`).textContent()).toMatch(/^\d+%$/);
      expect(await row.locator('[data-metric="gpu_memory"]').textContent()).toMatch(/MiB$/);
      await record(page, 'fleet');
      await context.close();
    }, 120_000);

    it('starts a container from the form (a bad limit is refused first), scales it and stops a copy', async () => {
      const { page, errors } = await signIn(ADMIN_KEY);
      await page.getByRole('link', { name: 'Services' }).click();
      const form = page.getByRole('form', { name: 'Start containers' });
      await form.getByLabel('Image').fill(BUSYBOX_IMAGE);
      await form.getByLabel('Memory limit').fill('lots');
      await form.getByLabel('CPU limit (cores)').fill('0.25');
      await form.getByLabel('Command').fill(RUN_UNTIL_TERM);
      await form.getByRole('button', { name: 'Start' }).click();
      expect(await form.locator('#start-memory-hint').textContent()).toBe('A size such as 512m or 1g');
      expect((await call('GET', '/containers')).body.total).toBe(0);

      await form.getByLabel('Memory limit').fill('64m');
      await form.getByRole('button', { name: 'Start' }).click();
      // The start answered 202: its command is shown pending, then settled.
      const pending = page.getByRole('complementary', { name: 'Pending commands' }).locator('li');
      await pending.first().waitFor();
      expect(await pending.first().textContent()).toContain(`Start ${BUSYBOX_IMAGE}`);
      await expect
        .poll(() => pending.first().getAttribute('data-status'), { timeout: 30_000 })
        .toBe('succeeded');
      const running = page.locator('tr[data-container]', { has: page.locator('.status-running') });
      await expect.poll(() => running.count(), { timeout: 30_000 }).toBe(1);
      expect(await running.first().textContent()).toContain('cpu_limit 0.25, memory_limit 64m');

      const service = page.locator(`tr[data-service="${BUSYBOX_IMAGE}"]`);
      await service.getByLabel(/Copies of/).fill('2');
      await service.getByRole('button', { name: 'Scale' }).click();
      await expect.poll(() => running.count(), { timeout: 30_000 }).toBe(2);
      await expect
        .poll(() => service.getByTestId('replicas').textContent(), { timeout: 15_000 })
        .toBe('2 / 2');
      // A copy's output, live over the logs channel: what its process prints appears as it prints it.
      const watched = running.first();
      const instanceId = (await watched.getAttribute('data-container'))!;
      await watched.getByRole('button', { name: /^Output of/ }).click();
      const output = page.getByTestId('container-output');
      await expect.poll(() => output.getAttribute('data-state'), { timeout: 15_000 }).toBe('live');
      const [copy] = await docker.listContainers({
        filters: { label: [`${LABELS.instance}=${instanceId}`] },
      });
      const exec = await docker.getContainer(copy!.Id).exec({
        Cmd: ['sh', '-c', '{ echo hello-from-the-copy; echo second-line; } > /proc/1/fd/1'],
        AttachStdout: true,
        AttachStderr: true,
      });
      const printed = await exec.start({});
      await new Promise((done) => printed.on('end', done).resume());
      await expect
        .poll(() => output.textContent(), { timeout: 30_000 })
        .toBe('hello-from-the-copy\nsecond-line');
      await record(page, 'services');
      await watched.getByRole('button', { name: /^Output of/ }).click();

      await running.first().getByRole('button', { name: 'Stop' }).click();
      await expect.poll(() => running.count(), { timeout: 30_000 }).toBe(1);
      await expect
        .poll(() => service.getByTestId('replicas').textContent(), { timeout: 15_000 })
        .toBe('1 / 1');
      const engineRunning = await docker.listContainers({ filters: { label: [`fleet.node=${nodeName}`] } });
      expect(engineRunning).toHaveLength(1);
      expect(errors).toEqual([]);
      await page.context().close();
    }, 120_000);

    it('creates a training job with the cron helper showing next runs, and shows its run and output', async () => {
      const { page, errors } = await signIn(ADMIN_KEY);
      await page.getByRole('link', { name: 'Training' }).click();
      const form = page.getByRole('form', { name: 'Create a training job' });
      await form.getByRole('button', { name: 'Every day at 02:00' }).click();
      const next = page.getByTestId('next-runs').locator('li');
      await expect.poll(() => next.count()).toBe(5);
      for (const li of await next.allTextContents()) expect(li).toMatch(/^\d{4}-\d\d-\d\d 02:00 UTC$/);
      await form.getByLabel('Schedule (cron)').fill('61 * * * *');
      await form.getByRole('button', { name: 'Create job' }).click();
      expect(await form.locator('#job-schedule-hint').textContent()).toContain('Invalid');
      expect(await form.locator('#job-name-hint').textContent()).toBe('A name is required');

      // No schedule: it runs once, now.
      await form.getByLabel('Schedule (cron)').fill('');
      await form.getByLabel('Name').fill(`${nodeName}-train`);
      await form.getByLabel('Image').fill(BUSYBOX_IMAGE);
      await form.getByLabel('Command').fill('echo epoch 1; echo loss 0.25; echo training done');
      await form.getByRole('button', { name: 'Create job' }).click();
      const runs = page.getByTestId('runs').locator('li');
      await expect
        .poll(() => runs.first().locator('.status').textContent(), { timeout: 60_000 })
        .toBe('succeeded');
      await expect
        .poll(() => runs.first().locator('pre').textContent(), { timeout: 15_000 })
        .toBe('epoch 1\nloss 0.25\ntraining done');
      expect(await runs.first().textContent()).toContain(`on ${nodeId}`);
      await expect
        .poll(() => page.locator(`tr[data-job="${nodeName}-train"] .status`).textContent(), {
          timeout: 15_000,
        })
        .toBe('completed');
      // A run still running: its output is read from its node while it runs.
      await form.getByLabel('Name').fill(`${nodeName}-live`);
      await form.getByLabel('Max retries').fill('0');
      await form
        .getByLabel('Command')
        .fill("echo started-live; trap 'echo stopping; exit 0' TERM; while true; do sleep 1; done");
      await form.getByRole('button', { name: 'Create job' }).click();
      await page.getByRole('heading', { name: `Runs of ${nodeName}-live` }).waitFor();
      await expect
        .poll(() => page.getByTestId('live-output').textContent(), { timeout: 30_000 })
        .toMatch(/^started-live\s*$/);
      // The test ends it: SIGTERM to its container, as a stop would.
      const runId = (await runs.first().getAttribute('data-run'))!;
      const [container] = await docker.listContainers({
        filters: { label: [`${LABELS.instance}=${runId}`] },
      });
      await docker.getContainer(container!.Id).stop({ t: 10 });
      await expect
        .poll(() => runs.first().locator('.status').textContent(), { timeout: 60_000 })
        .toBe('succeeded');
      await expect
        .poll(() => runs.first().locator('pre').textContent(), { timeout: 15_000 })
        .toBe('started-live\nstopping');
      await record(page, 'training');
      expect(errors).toEqual([]);
      await page.context().close();
    }, 120_000);

    it("opens the node's page with charts of its stored history", async () => {
      const { page, errors } = await signIn(ADMIN_KEY);
      await page.locator(`tr[data-node="${nodeName}"] a`).click();
      await page.getByRole('heading', { name: new RegExp(nodeName) }).waitFor();
      const charts = page.getByTestId('charts');
      await charts.waitFor({ timeout: 30_000 });
      expect(Number(await charts.getAttribute('data-points'))).toBeGreaterThanOrEqual(1);
      expect(await page.getByRole('img', { name: /chart$/ }).count()).toBe(2);
      // The same points the API serves.
      const history = await call('GET', `/api/nodes/${nodeId}/metrics`);
      expect((history.body.points as unknown[]).length).toBeGreaterThanOrEqual(1);
      await page.getByRole('button', { name: 'Last day' }).click();
      await charts.waitFor();
      // The copy still running is listed on its node (beside the stopped one), and the log stream says what it streams.
      const containers = page.getByRole('region', { name: 'Containers' });
      await expect.poll(() => containers.locator('tbody tr .status-running').count()).toBe(1);
      await expect
        .poll(() => page.getByLabel('Node log lines').textContent())
        .toContain(`Streaming the logs of node ${nodeName}`);
      await record(page, 'node');
      expect(errors).toEqual([]);
      await page.context().close();
    }, 120_000);

    it("opens a node's page by name reading that node alone: one GET of it, no page of a fleet listing", async () => {
      const label = await call('POST', `/api/swarm/nodes/${nodeId}/labels`, {
        labels: { 'console-page': 'yes' },
      });
      expect(label.status).toBe(200);
      // The training test's first job, then ten newer ones (scheduled, not run yet): its run is
      // on this node, and its job is no longer among the 10 latest.
      const jobs = (await call('GET', '/jobs?page_size=100')).body.jobs as { job_id: string; name: string }[];
      const oldJob = jobs.find((j) => j.name === `${nodeName}-train`)!.job_id;
      const oldRun = ((await call('GET', `/jobs/${oldJob}/runs`)).body.runs as { run_id: string }[])[0]!
        .run_id;
      const newer: string[] = [];
      for (let i = 0; i < 10; i++) {
        const made = await call('POST', '/jobs', {
          name: `${nodeName}-later-${i}`,
          image: BUSYBOX_IMAGE,
          command: ['true'],
          schedule: '0 2 1 1 *',
        });
        expect(made.status).toBe(201);
        newer.push(made.body.job_id as string);
      }
      const latest = (await call('GET', '/jobs?page_size=10')).body.jobs as { job_id: string }[];
      expect(latest.map((j) => j.job_id)).not.toContain(oldJob);
      const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
      const page = await context.newPage();
      // The page's timers run on a clock the test moves forward: its 30 s refresh comes when told.
      await page.clock.install();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      const gets: URL[] = [];
      page.on('request', (r) => {
        if (r.method() === 'GET') gets.push(new URL(r.url()));
      });
      const count = (path: string) => gets.filter((u) => u.pathname === path).length;
      await page.goto(`${server.url}/#/node/${encodeURIComponent(nodeName)}`);
      await page.getByLabel('API key').fill(ADMIN_KEY);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: new RegExp(nodeName) }).waitFor();
      // Its labels come with the node.
      await page.getByRole('region', { name: 'Labels' }).getByText('console-page=yes').waitFor();
      await expect
        .poll(() => page.getByRole('region', { name: 'Containers' }).locator('tbody tr').count(), {
          timeout: 15_000,
        })
        .toBeGreaterThanOrEqual(1);
      await page.waitForLoadState('networkidle');
      expect(count(`/api/nodes/${nodeName}`)).toBe(1);
      expect(count('/api/nodes/')).toBe(0);
      expect(count('/api/swarm/nodes')).toBe(0);
      expect(count('/models/assignments')).toBe(0);
      // Its training runs, the old job's among them: one request, no read of the jobs.
      await page.getByRole('region', { name: 'Training runs' }).getByText(oldRun).waitFor();
      expect(count(`/api/nodes/${nodeId}/runs`)).toBe(1);
      expect(gets.filter((u) => u.pathname === '/jobs' || u.pathname.startsWith('/jobs/'))).toEqual([]);
      // Its containers: the node's, asked for by id.
      const containers = gets.filter((u) => u.pathname === '/containers');
      expect(containers.length).toBeGreaterThanOrEqual(1);
      expect(containers.every((u) => u.searchParams.get('node_id') === nodeId)).toBe(true);
      // The refresh reads the node again, and still no listing.
      await page.clock.fastForward(30_000);
      await expect.poll(() => count(`/api/nodes/${nodeName}`), { timeout: 15_000 }).toBe(2);
      await page.waitForLoadState('networkidle');
      expect(count('/api/nodes/') + count('/api/swarm/nodes') + count('/models/assignments')).toBe(0);
      expect(errors).toEqual([]);
      await context.close();
      for (const id of newer) expect((await call('DELETE', `/jobs/${id}`)).status).toBe(204);
      expect(
        (await call('POST', `/api/swarm/nodes/${nodeId}/labels`, { labels: { 'console-page': null } }))
          .status,
      ).toBe(200);
    }, 120_000);

    it("shows the node's own policy, and the start form refuses host mounts no online node allows", async () => {
      const { nodes } = (await call('GET', '/api/nodes/')).body as unknown as {
        nodes: {
          name: string;
          policy: {
            allow_host_paths: string[];
            allow_privileged: boolean;
            allow_engine_socket: boolean;
            allow_host_network: boolean;
            allow_host_pid: boolean;
            allow_capabilities: string[];
            allow_exec: boolean | null;
          } | null;
        }[];
      };
      const policy = nodes.find((n) => n.name === nodeName)!.policy!;
      expect(policy.allow_privileged).toBe(false);
      const { page, errors } = await signIn(ADMIN_KEY);
      await page.locator(`tr[data-node="${nodeName}"] a`).click();
      const rows = page.getByTestId('policy').locator('tbody tr');
      await expect.poll(() => rows.count(), { timeout: 15_000 }).toBe(7);
      const shown = await rows.evaluateAll((trs) =>
        trs.map((tr) => [
          tr.querySelector('th')!.textContent,
          tr.getAttribute('data-allowed'),
          tr.querySelector('td')!.textContent,
        ]),
      );
      // What the API reports, rule by rule.
      expect(shown).toEqual([
        [
          'Privileged containers',
          String(policy.allow_privileged),
          policy.allow_privileged ? 'allowed' : 'refused',
        ],
        [
          'Host folder mounts',
          String(policy.allow_host_paths.length > 0),
          policy.allow_host_paths.length ? `only under ${policy.allow_host_paths.join(', ')}` : 'none',
        ],
        [
          'Engine socket mount',
          String(policy.allow_engine_socket),
          policy.allow_engine_socket ? 'allowed (whoever holds it owns the host)' : 'refused',
        ],
        [
          'Host network',
          String(policy.allow_host_network),
          policy.allow_host_network ? 'allowed' : 'refused',
        ],
        ['Host PID namespace', String(policy.allow_host_pid), policy.allow_host_pid ? 'allowed' : 'refused'],
        [
          'Added capabilities',
          String(policy.allow_capabilities.length > 0),
          policy.allow_capabilities.join(', ') || 'none',
        ],
        ['Host commands (exec)', String(policy.allow_exec), policy.allow_exec ? 'allowed' : 'refused'],
      ]);
      await record(page, 'node-policy');

      await page.getByRole('link', { name: 'Services' }).click();
      const form = page.getByRole('form', { name: 'Start containers' });
      const before = (await call('GET', '/api/swarm/services')).body as unknown as unknown[];
      await form.getByLabel('Image').fill(BUSYBOX_IMAGE);
      await form.getByLabel('Service name').fill(`${nodeName}-mounts`);
      const hint = form.locator('#start-mounts-hint');
      const start = form.getByRole('button', { name: 'Start' });
      // A folder outside what the node allows: said at once, and nothing can be sent.
      await form.getByLabel('Host folder mounts').fill('/etc:/host-etc:ro');
      await expect
        .poll(() => hint.textContent())
        .toBe(
          `No online node allows this: ${nodeName}: /etc is outside the folders it allows (${policy.allow_host_paths.join(', ') || 'none'})`,
        );
      expect(await start.isDisabled()).toBe(true);
      await form.getByLabel('Host folder mounts').fill('/:/host');
      await expect
        .poll(() => hint.textContent())
        .toBe(`No online node allows this: ${nodeName}: mounting the host's root folder / is never allowed`);
      await form.getByLabel('Host folder mounts').fill('/var/run/docker.sock:/var/run/docker.sock');
      await expect
        .poll(() => hint.textContent())
        .toContain(`${nodeName}: mounting the engine socket (/var/run/docker.sock) is not allowed`);
      expect(await start.isDisabled()).toBe(true);
      // Under a folder the node allows: offered.
      await form.getByLabel('Host folder mounts').fill(`${policy.allow_host_paths[0]}/data:/data`);
      await expect.poll(() => start.isDisabled()).toBe(false);
      expect(await hint.textContent()).toBe(
        'optional, /host:/container[:ro]; only where a node’s policy allows it',
      );
      expect((await call('GET', '/api/swarm/services')).body).toEqual(before);
      expect(errors).toEqual([]);
      await page.context().close();
    }, 120_000);

    it('shows the inference queue by priority, tasks by state and the model servers of the node, live', async () => {
      const { page, errors } = await signIn(ADMIN_KEY);
      await page.getByRole('link', { name: 'Inference', exact: true }).click();
      await expect
        .poll(() => page.getByTestId('cluster-live').textContent(), { timeout: 15_000 })
        .toMatch(/^live/);
      const server = page.getByTestId('model-servers').locator(`tr[data-worker="${nodeName}"]`);
      await server.waitFor();
      expect(await server.textContent()).toContain('none loaded');
      expect(await server.getByRole('button', { name: /^(Load|Switch)$/ }).count()).toBe(1);
      // Two tasks for a model no node has room for: they wait in the queue, the higher priority first.
      const declared = await call('PUT', '/models/catalog/console-model-nowhere', {
        kind: 'text',
        image: BUSYBOX_IMAGE,
        port: 8000,
        protocol: 'text-generate',
        path: '/generate',
        gpuMemoryMb: 900_000,
      });
      expect(declared.status, JSON.stringify(declared.body)).toBe(200);
      const form = page.getByRole('form', { name: 'Submit a task' });
      const queuedCount = page.getByTestId('task-counts').locator('[data-state="queued"] strong');
      for (const [n, [priority, prompt]] of (
        [
          ['low', 'a low one'],
          ['high', 'a high one'],
        ] as const
      ).entries()) {
        await form.getByLabel('Model').fill('console-model-nowhere');
        await form.getByLabel('Priority').selectOption(priority);
        await form.getByLabel('Prompt').fill(prompt);
        await form.getByRole('button', { name: 'Submit' }).click();
        // Submitted, then the views refreshed: the task is counted.
        await expect.poll(() => queuedCount.textContent(), { timeout: 30_000 }).toBe(String(n + 1));
      }
      await expect
        .poll(() => page.getByTestId('queue-length').textContent(), { timeout: 15_000 })
        .toMatch(/^2 waiting/);
      const queue = await call('GET', '/api/vision/queue');
      expect((queue.body.queue as { position: number }[]).map((q) => q.position)).toEqual([1, 2]);
      const queued = page.getByRole('region', { name: 'Task queue by priority' }).locator('tbody tr');
      expect(await queued.count()).toBe(2);
      expect(await queued.locator('td:nth-child(2)').allTextContents()).toEqual(['high', 'low']);
      await record(page, 'inference');
      // The placement counters as /cluster/status gives them.
      const { placements } = (await call('GET', '/cluster/status')).body as {
        placements: { placed: number; model_switches: number; requeued: number };
      };
      await expect
        .poll(() => page.getByTestId('placement-counts').textContent(), { timeout: 20_000 })
        .toContain(
          `${placements.placed} placed · ${placements.model_switches} model switches · ${placements.requeued} requeued`,
        );
      // Cancelled through the API: the page follows without a reload.
      for (const t of (await call('GET', '/tasks')).body.tasks as { task_id: string }[])
        expect((await call('DELETE', `/tasks/${t.task_id}`)).status).toBe(200);
      await expect
        .poll(
          () => page.getByTestId('task-counts').locator('[data-state="cancelled"] strong').textContent(),
          {
            timeout: 30_000,
          },
        )
        .toBe('2');
      expect(errors).toEqual([]);
      await page.context().close();
    }, 120_000);

    it('shows Novita instances with a timeline of their state changes', async () => {
      const created = await call('POST', '/api/instances', {
        name: `${nodeName}-gpu`,
        productName: 'RTX 4090 24GB',
        templateId: 'template-123',
      });
      expect(created.status).toBe(201);
      const { page, errors } = await signIn(ADMIN_KEY);
      await page.getByRole('link', { name: 'Cloud GPUs', exact: true }).click();
      const row = page.locator(`tr[data-instance="${created.body.instanceId as string}"]`);
      await expect.poll(() => row.locator('.status').textContent(), { timeout: 30_000 }).toBe('running');
      // Cost: the API's price per GPU hour × GPUs (Novita bills per card), and what was spent so far.
      const { instances } = (await call('GET', '/api/instances')).body as unknown as {
        instances: {
          id: string;
          status: string;
          gpuNum: number;
          pricePerHour: number;
          createdAt: string;
          terminatedAt?: string;
        }[];
      };
      const mine = instances.find((i) => i.id === created.body.instanceId)!;
      expect(mine.pricePerHour).toBeGreaterThan(0);
      const fmt = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 2 });
      // One read of the figures and the instant they were computed for (the page refreshes on its own).
      const shown = await page.evaluate((id) => {
        // Runs in the page (this file's types have no DOM).
        const document = (
          globalThis as unknown as {
            document: {
              querySelector(
                s: string,
              ): { textContent: string | null; getAttribute(n: string): string | null } | null;
            };
          }
        ).document;
        const cell = (name: string) =>
          document.querySelector(`tr[data-instance="${id}"] [data-cell="${name}"]`)?.textContent;
        return {
          asof: Number(document.querySelector('[data-testid="cloud-cost"]')?.getAttribute('data-asof')),
          price: cell('price'),
          cost: cell('cost'),
          spent: cell('spent'),
          costTotal: document.querySelector('[data-testid="cost-total"]')?.textContent,
          spentTotal: document.querySelector('[data-testid="spent-total"]')?.textContent,
        };
      }, mine.id);
      const hours = (i: { createdAt: string }) => (shown.asof - Date.parse(i.createdAt)) / 3_600_000;
      const billed = instances.filter((i) => ['creating', 'starting', 'running'].includes(i.status));
      expect(billed.map((i) => i.id)).toEqual([mine.id]);
      expect(shown).toEqual({
        asof: shown.asof,
        price: fmt(mine.pricePerHour),
        cost: fmt(mine.pricePerHour * mine.gpuNum),
        spent: fmt(mine.pricePerHour * mine.gpuNum * hours(mine)),
        costTotal: fmt(billed.reduce((sum, i) => sum + i.pricePerHour * i.gpuNum, 0)),
        spentTotal: fmt(billed.reduce((sum, i) => sum + i.pricePerHour * i.gpuNum * hours(i), 0)),
      });
      await row.getByRole('button', { name: `Timeline of ${nodeName}-gpu` }).click();
      const steps = page.getByTestId('timeline').locator('li');
      await expect.poll(() => steps.count(), { timeout: 15_000 }).toBe(2);
      expect((await steps.allTextContents()).map((t) => t.replace(/^\S+ \S+ /, ''))).toEqual([
        'created Created · RTX 4090 24GB',
        'running Running',
      ]);
      await record(page, 'cloud-gpus');
      expect(errors).toEqual([]);
      await page.context().close();
    }, 120_000);

    it('creates a cluster from the form, removes its member and adds it back', async () => {
      const { page, errors } = await signIn(ADMIN_KEY);
      await page.getByRole('link', { name: 'Clusters', exact: true }).click();
      const form = page.getByRole('form', { name: 'Create a cluster' });
      await form.getByLabel('Name').fill(`${nodeName}-lab`);
      await form.getByRole('checkbox', { name: nodeName }).check();
      await form.getByRole('button', { name: 'Create cluster' }).click();
      const members = page.getByTestId('members').locator('tbody tr');
      await expect.poll(() => members.count(), { timeout: 15_000 }).toBe(1);
      expect(await members.first().textContent()).toContain('manager');
      await expect
        .poll(() => page.getByTestId('members-count').textContent(), { timeout: 15_000 })
        .toContain('1 of 1 online');
      await record(page, 'clusters');
      await members
        .first()
        .getByRole('button', { name: `Remove ${nodeName}` })
        .click();
      await expect.poll(() => members.count(), { timeout: 15_000 }).toBe(0);
      const add = page.getByRole('form', { name: 'Add a node' });
      await add.getByLabel('Add node').selectOption({ label: nodeName });
      await add.getByRole('button', { name: 'Add' }).click();
      await expect.poll(() => members.count(), { timeout: 15_000 }).toBe(1);
      const clusters = (await call('GET', '/api/clusters/')).body as unknown as {
        name: string;
        node_ids: string[];
      }[];
      // The cluster API names its members by node name.
      expect(clusters.find((c) => c.name === `${nodeName}-lab`)?.node_ids).toEqual([nodeName]);
      expect(errors).toEqual([]);
      await page.context().close();
    }, 120_000);

    it("builds an image on the node's agent and shows the build's output", async () => {
      const { page, errors } = await signIn(ADMIN_KEY);
      await page.getByRole('link', { name: 'Builds', exact: true }).click();
      const form = page.getByRole('form', { name: 'Build an image' });
      const repo = `console-e2e/${nodeName}`;
      await form.getByLabel('Image name').fill(repo);
      await form.getByLabel('Tag').fill('v1');
      await form.getByLabel(/^Dockerfile/).fill('app/Dockerfile');
      await form.getByRole('button', { name: 'Build' }).click();
      const build = page.getByTestId('builds').locator('li').first();
      await expect.poll(() => build.locator('.status').textContent(), { timeout: 120_000 }).toBe('succeeded');
      built.push(`${new URL(process.env.REGISTRY_URL!).host}/${repo}:v1`);
      expect(await build.getByTestId('build-output').textContent()).toContain('console-build-step');
      const registry = page.getByRole('region', { name: /^Registry images/ });
      await expect.poll(() => registry.textContent(), { timeout: 15_000 }).toContain(repo);
      await record(page, 'builds');
      expect(errors).toEqual([]);
      await page.context().close();
    }, 180_000);

    it('shows the other pages', async () => {
      const { page, errors } = await signIn(ADMIN_KEY);
      for (const [link, name] of [
        ['Maintenance', 'maintenance'],
        ['Vault', 'vault'],
      ] as const) {
        await page.getByRole('link', { name: link, exact: true }).click();
        await page.locator('section.card').first().waitFor();
        await page.waitForLoadState('networkidle');
        await record(page, name);
      }
      expect(errors).toEqual([]);
      await page.context().close();
    }, 120_000);

    it('offers a viewer key no write action', async () => {
      const { page } = await signIn(viewerKey);
      expect(await page.getByTestId('role').textContent()).toBe('viewer');
      const nav = await page.getByRole('navigation', { name: 'Pages' }).locator('a').allTextContents();
      expect(nav).not.toContain('Vault');
      expect(nav).toContain('Services');
      const writes =
        /^(Start|Scale|Stop|Remove|Create job|Set label|Run now|Turn on|Turn off|Submit|Clean up|Restart exited|Load|Switch|Unload|Create cluster|Delete cluster|Add|Build)$/;
      await page.locator(`tr[data-node="${nodeName}"]`).waitFor();
      expect(await page.getByRole('button', { name: writes }).count()).toBe(0);

      await page.getByRole('link', { name: 'Services' }).click();
      await page.locator('tr[data-container]').first().waitFor();
      expect(await page.getByRole('form').count()).toBe(0);
      expect(await page.getByRole('button', { name: writes }).count()).toBe(0);
      await record(page, 'services-viewer');

      for (const link of ['Training', 'Maintenance', 'Inference', 'Clusters', 'Builds', 'Cloud GPUs']) {
        await page.getByRole('link', { name: link, exact: true }).click();
        await page.locator('section.card').first().waitFor();
        await page.waitForLoadState('networkidle');
        expect(await page.getByRole('button', { name: writes }).count(), link).toBe(0);
      }
      await page.goto(`${server.url}/#/node/${nodeId}`);
      await page.getByRole('heading', { name: new RegExp(nodeName) }).waitFor();
      await page.waitForLoadState('networkidle');
      expect(await page.getByRole('button', { name: writes }).count()).toBe(0);
      // The API agrees: the viewer's key may not start anything.
      expect(
        (await call('POST', '/start/container', { resources: { image: BUSYBOX_IMAGE } }, viewerKey)).status,
      ).toBe(403);
      expect(checked.length).toBeGreaterThanOrEqual(12);
      await page.context().close();
    }, 120_000);

    it("follows the fleet listing page by page: every node shown after Load more, a refresh of two pages, the inference page's workers a page at a time, pickers that search by name, a start form judging a page", async () => {
      // Four more nodes (registered, no agent): five in all, three pages of two with ?page_size=2.
      // Last in the suite, so the other cases see only the real agent's node.
      const extra = ['a', 'b', 'c', 'd'].map((s) => `${nodeName}-page-${s}`);
      const register = async (name: string) => {
        const res = await call('POST', '/agent/register', {
          nodeName: name,
          hostname: `${name}.local`,
          addresses: ['10.0.0.9'],
          arch: 'amd64',
          os: 'linux',
          cpuCount: 2,
          memoryMb: 2048,
          diskGb: 10,
          agentVersion: 'test',
        });
        expect(res.status).toBe(200);
        return res.body.nodeId as string;
      };
      const ids: string[] = [];
      for (const name of extra) ids.push(await register(name));
      // A label on one node: the page filters by the labels its own listing carries.
      expect(
        (await call('POST', `/api/swarm/nodes/${ids[2]}/labels`, { labels: { 'fleet-page': 'c' } })).status,
      ).toBe(200);
      const everyNode = [nodeName, ...extra].sort();
      const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
      const page = await context.newPage();
      // The page's timers run on a clock the test moves forward: the 30 s refresh comes when told.
      await page.clock.install();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      const listings: URL[] = [];
      const swarmListings: URL[] = [];
      const workerListings: URL[] = [];
      page.on('request', (r) => {
        const url = new URL(r.url());
        if (url.pathname === '/api/nodes/') listings.push(url);
        if (url.pathname === '/api/swarm/nodes') swarmListings.push(url);
        if (url.pathname === '/workers') workerListings.push(url);
      });
      await page.goto(`${server.url}/?page_size=2`);
      await page.getByLabel('API key').fill(ADMIN_KEY);
      await page.getByRole('button', { name: 'Sign in' }).click();

      const rows = page.locator('table[data-testid="nodes"] tbody tr');
      const loaded = page.getByTestId('nodes-loaded');
      const more = page.getByRole('button', { name: 'Load more nodes' });
      await expect
        .poll(() => loaded.textContent(), { timeout: 15_000 })
        .toBe('2 nodes loaded, more in the fleet');
      expect(await rows.count()).toBe(2);
      await record(page, 'fleet-pages');
      await more.click();
      await expect
        .poll(() => loaded.textContent(), { timeout: 15_000 })
        .toBe('4 nodes loaded, more in the fleet');
      await more.click();
      await expect
        .poll(() => loaded.textContent(), { timeout: 15_000 })
        .toBe('5 nodes loaded, the whole fleet');
      expect(await more.count()).toBe(0);
      expect((await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-node')))).sort()).toEqual(
        everyNode,
      );
      // Each read asked for two, and the later pages carried the cursor the previous one answered.
      expect(listings.every((u) => u.searchParams.get('limit') === '2')).toBe(true);
      expect(listings.some((u) => u.searchParams.has('cursor'))).toBe(true);
      // The label filter keeps the labelled node, from the rows loaded: no other listing read.
      const filter = page.getByLabel('Filter by label (key or key=value)');
      await filter.fill('fleet-page=c');
      await expect.poll(() => rows.count()).toBe(1);
      expect(await rows.first().getAttribute('data-node')).toBe(extra[2]);
      await expect.poll(() => rows.first().textContent()).toContain('fleet-page=c');
      await filter.fill('');
      await expect.poll(() => rows.count()).toBe(5);
      expect(swarmListings).toEqual([]);

      // The refresh reads two pages of the three loaded (the first, and one other in turn): a node
      // added within the first page shows, every other row stays, none twice.
      const added = `${nodeName}-page-0`;
      await register(added);
      everyNode.push(added);
      everyNode.sort();
      const before = listings.length;
      await page.clock.fastForward(30_000);
      await expect
        .poll(() => loaded.textContent(), { timeout: 15_000 })
        .toBe('6 nodes loaded, the whole fleet');
      await page.waitForLoadState('networkidle');
      expect(listings.length - before).toBe(2);
      expect(listings.slice(before).map((u) => u.searchParams.has('cursor'))).toEqual([false, true]);
      expect(await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-node')))).toEqual(
        everyNode,
      );

      // The inference page's model servers: a page of workers, the next ones on request.
      await page.getByRole('link', { name: 'Inference', exact: true }).click();
      const workersLoaded = page.getByTestId('workers-loaded');
      const moreWorkers = page.getByRole('button', { name: 'Load more nodes' });
      await expect
        .poll(() => workersLoaded.textContent(), { timeout: 15_000 })
        .toBe('2 nodes loaded, more in the fleet');
      await moreWorkers.click();
      await expect
        .poll(() => workersLoaded.textContent(), { timeout: 15_000 })
        .toBe('4 nodes loaded, more in the fleet');
      await moreWorkers.click();
      await expect
        .poll(() => workersLoaded.textContent(), { timeout: 15_000 })
        .toBe('6 nodes loaded, the whole fleet');
      expect(await page.locator('table[data-testid="model-servers"] tbody tr').count()).toBe(6);
      expect(workerListings.length).toBeGreaterThan(0);
      expect(workerListings.every((u) => u.searchParams.get('limit') === '2')).toBe(true);

      // A picker searches by name: one small page of the nodes whose name begins with the text.
      await page.getByRole('link', { name: 'Clusters', exact: true }).click();
      const form = page.getByRole('form', { name: 'Create a cluster' });
      const picker = form.getByRole('group', { name: 'Nodes' });
      await expect.poll(() => picker.getByRole('checkbox').count(), { timeout: 15_000 }).toBe(6);
      const searched = listings.length;
      const prefix = `${nodeName}-page-`;
      await picker.getByLabel('Find nodes').fill(prefix);
      await expect.poll(() => picker.getByRole('checkbox').count(), { timeout: 15_000 }).toBe(5);
      for (const name of everyNode.filter((n) => n.startsWith(prefix)))
        expect(await picker.getByRole('checkbox', { name, exact: true }).count()).toBe(1);
      const search = listings.slice(searched).at(-1)!;
      expect(search.searchParams.get('name_prefix')).toBe(prefix);
      expect(search.searchParams.get('limit')).toBe('20');
      // A node chosen stays chosen while the search shows others.
      await picker.getByRole('checkbox', { name: extra[0]!, exact: true }).check();
      await picker.getByLabel('Find nodes').fill(extra[1]!);
      await expect.poll(() => picker.getByRole('checkbox').count(), { timeout: 15_000 }).toBe(1);
      expect(await picker.getByTestId('cluster-chosen').textContent()).toBe(`Chosen: ${extra[0]}`);

      // The start form judges mounts by the nodes it loaded (a page): with more in the fleet, a
      // refusal by all of them is said, and the control plane judges the rest.
      await page.getByRole('link', { name: 'Services' }).click();
      const start = page.getByRole('form', { name: 'Start containers' });
      await start.getByLabel('Image').fill(BUSYBOX_IMAGE);
      await start.getByLabel('Service name').fill(`${nodeName}-paged-mounts`);
      await start.getByLabel('Host folder mounts').fill('/:/host');
      await expect
        .poll(() => start.locator('#start-mounts-hint').textContent(), { timeout: 15_000 })
        .toBe('None of the 2 nodes loaded allows this; the rest of the fleet is judged when it is placed');
      expect(await start.getByRole('button', { name: 'Start' }).isDisabled()).toBe(false);
      expect(errors).toEqual([]);
      await context.close();
    }, 120_000);
  },
);
