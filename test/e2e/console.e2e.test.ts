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
import { AgentProcess, removeNodeContainers, REPO_ROOT } from './harness.js';

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

    const call = async (method: string, path: string, body?: unknown, key = ADMIN_KEY) => {
      const res = await fetch(server.url + path, {
        method,
        headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      return {
        status: res.status,
        body: (await res.json()) as Record<string, unknown> & { [k: string]: unknown },
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
      await writeFile(join(dataDir, 'secrets.json'), JSON.stringify({ 'api-key': ADMIN_KEY }), {
        mode: 0o600,
      });
      server = await startLocalProcess(dataDir, {
        AWS_ENDPOINT_URL: '',
        LOG_LEVEL: 'SILENT',
        API_AUTH: 'true',
        WS_PUSH_INTERVAL_SECONDS: '1',
        // Calls answer 202 at once: the console must show their commands until they settle.
        COMMAND_WAIT_MS: '0',
      });
      agent = new AgentProcess({
        url: server.url,
        name: nodeName,
        stateDir: join(dataDir, 'agent'),
        heartbeatSeconds: 1,
        env: { ...process.env, FLEET_API_KEY: ADMIN_KEY },
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
      if (docker) await removeNodeContainers(docker, [nodeName]);
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
      await record(page, 'services');

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

    it('shows the other pages', async () => {
      const { page, errors } = await signIn(ADMIN_KEY);
      for (const [link, name] of [
        ['Inference', 'inference'],
        ['Cloud GPUs', 'cloud-gpus'],
        ['Maintenance', 'maintenance'],
        ['Vault', 'vault'],
        ['Clusters', 'clusters'],
        ['Builds', 'builds'],
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
        /^(Start|Scale|Stop|Remove|Create job|Set label|Run now|Turn on|Turn off|Submit|Clean up|Restart exited)$/;
      await page.locator(`tr[data-node="${nodeName}"]`).waitFor();
      expect(await page.getByRole('button', { name: writes }).count()).toBe(0);

      await page.getByRole('link', { name: 'Services' }).click();
      await page.locator('tr[data-container]').first().waitFor();
      expect(await page.getByRole('form').count()).toBe(0);
      expect(await page.getByRole('button', { name: writes }).count()).toBe(0);
      await record(page, 'services-viewer');

      for (const link of ['Training', 'Maintenance', 'Inference']) {
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
  },
);
