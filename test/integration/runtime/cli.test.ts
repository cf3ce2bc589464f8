import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';

describe('npm start (local/main.ts)', () => {
  it('prints its URL and docs URL, serves, and exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'local/main.ts', '--memory', '--port', '0'], {
      cwd: new URL('../../..', import.meta.url).pathname,
      env: { ...process.env, AWS_ENDPOINT_URL: '', LOG_LEVEL: 'SILENT' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const deadline = Date.now() + 30_000;
    while (!/API docs: (\S+)\/docs/.test(out) && Date.now() < deadline && child.exitCode === null) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
    expect(url, out).toBeDefined();
    expect(out).toContain(`API docs: ${url}/docs`);
    expect(out).toContain('mode:     embedded');
    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(200);
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(0);
    expect(out).toContain('SIGTERM: shutting down');
  }, 60_000);

  it('stops at start with a clear message when REGISTRY_URL is refused, naming OUTBOUND_ALLOWLIST', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'local/main.ts', '--memory', '--port', '0'], {
      cwd: new URL('../../..', import.meta.url).pathname,
      env: {
        ...process.env,
        AWS_ENDPOINT_URL: '',
        LOG_LEVEL: 'SILENT',
        REGISTRY_URL: 'http://127.0.0.1:5999',
        OUTBOUND_ALLOWLIST: '',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(1);
    expect(out.trim()).toBe(
      'Invalid configuration:\nREGISTRY_URL: http://127.0.0.1:5999 is refused: 127.0.0.1 is a loopback address (OUTBOUND_ALLOWLIST may name it)',
    );
  }, 60_000);
});
