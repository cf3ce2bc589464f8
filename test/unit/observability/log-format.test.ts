import { afterEach, describe, expect, it } from 'vitest';
import { createLogger as agentLogger, currentRequestId, inNewOperation } from '../../../agent/log.js';
import { loadConfig } from '../../../functions/core/config.js';
import { withLogContext } from '../../../functions/core/log-context.js';
import { createLogger as controlPlaneLogger } from '../../../functions/core/logger.js';
import { REDACTED } from '../../../protocol/log.js';

const SECRETS = {
  authorization: 'Bearer fleet-key-0123456789',
  token: 'node-token-abc',
  apiKey: 'k-123',
  nested: { password: 'hunter2', secretAccessKey: 'AKIASECRET', keep: 'visible' },
};
const HEAD = ['timestamp', 'level', 'message', 'service'];

describe('one log format for the control plane and the agent', () => {
  // Powertools writes INFO and DEBUG to stdout, WARN and ERROR to stderr.
  const original = { out: process.stdout.write, err: process.stderr.write };
  const captured: string[] = [];
  const restore = () => {
    process.stdout.write = original.out;
    process.stderr.write = original.err;
  };
  afterEach(() => {
    restore();
    captured.length = 0;
  });
  const capture = () => {
    const write = ((chunk: string | Uint8Array) => {
      captured.push(...String(chunk).split('\n').filter(Boolean));
      return true;
    }) as typeof process.stdout.write;
    process.stdout.write = write;
    process.stderr.write = write;
  };

  const controlPlaneLines = (fn: (log: ReturnType<typeof controlPlaneLogger>) => void) => {
    const log = controlPlaneLogger({ ...loadConfig({}), LOG_LEVEL: 'DEBUG' });
    capture();
    fn(log);
    restore();
    return captured.map((l) => JSON.parse(l) as Record<string, unknown>);
  };

  it('control plane: timestamp, level, message, service first, then the request and command ids of the work', async () => {
    const lines = controlPlaneLines((log) => {
      log.info('outside');
      void withLogContext({ requestId: 'req-1' }, () => {
        log.warn('in a request', { route: '/x' });
        withLogContext({ commandId: 'cmd-9' }, () => log.error('about a command'));
      });
    });
    expect(lines).toHaveLength(3);
    for (const l of lines) expect(Object.keys(l).slice(0, 4)).toEqual(HEAD);
    expect(lines[0]).toMatchObject({ level: 'INFO', message: 'outside', service: 'gpu-fleet-control-plane' });
    // Outside any request: the process's own id, so no line is without one.
    expect(lines[0]!['requestId']).toMatch(/^process-[0-9a-f-]{36}$/);
    expect(lines[1]).toMatchObject({ level: 'WARN', requestId: 'req-1', route: '/x' });
    expect(lines[2]).toMatchObject({ level: 'ERROR', requestId: 'req-1', commandId: 'cmd-9' });
    expect(new Date(String(lines[0]!['timestamp'])).toISOString()).toBe(lines[0]!['timestamp']);
  });

  it('control plane: concurrent requests keep their own ids', async () => {
    const lines = controlPlaneLines(() => undefined);
    expect(lines).toEqual([]);
    const log = controlPlaneLogger({ ...loadConfig({}), LOG_LEVEL: 'INFO' });
    capture();
    const tick = () => new Promise((r) => setImmediate(r));
    await Promise.all(
      ['a', 'b', 'c'].map((id) =>
        withLogContext({ requestId: id }, async () => {
          await tick();
          log.info('step', { expected: id });
          await tick();
          log.info('step', { expected: id });
        }),
      ),
    );
    restore();
    const parsed = captured.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed).toHaveLength(6);
    for (const l of parsed) expect(l['requestId']).toBe(l['expected']);
  });

  it('control plane: secret-looking fields are redacted at any depth', () => {
    const [line] = controlPlaneLines((log) => log.info('with secrets', SECRETS));
    const text = JSON.stringify(line);
    for (const secret of ['fleet-key-0123456789', 'node-token-abc', 'k-123', 'hunter2', 'AKIASECRET'])
      expect(text).not.toContain(secret);
    expect(line).toMatchObject({
      authorization: REDACTED,
      token: REDACTED,
      apiKey: REDACTED,
      nested: { password: REDACTED, secretAccessKey: REDACTED, keep: 'visible' },
    });
  });

  it('agent: the same field names and levels, the command id on a command logger, secrets redacted', () => {
    const out: string[] = [];
    const now = () => new Date('2026-01-02T03:04:05.000Z');
    const log = agentLogger({ level: 'debug', write: (l) => out.push(l), now, fields: { node: 'gpu-1' } });
    log.debug('polling');
    log.child({ commandId: 'cmd-1', type: 'container.start' }).info('executing command');
    log.warn('registering', SECRETS);
    const lines = out.map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const l of lines) expect(Object.keys(l).slice(0, 4)).toEqual(HEAD);
    expect(lines[0]).toEqual({
      timestamp: '2026-01-02T03:04:05.000Z',
      level: 'DEBUG',
      message: 'polling',
      service: 'fleet-agent',
      // Outside any operation: the process's own id.
      requestId: expect.stringMatching(/^agent-[0-9a-f-]{36}$/),
      node: 'gpu-1',
    });
    expect(lines[1]).toMatchObject({ level: 'INFO', commandId: 'cmd-1', type: 'container.start' });
    expect(lines[2]).toMatchObject({
      level: 'WARN',
      authorization: REDACTED,
      nested: { password: REDACTED, keep: 'visible' },
    });
    expect(out.join('\n')).not.toMatch(/hunter2|node-token-abc|fleet-key-0123456789|AKIASECRET/);
  });

  it('agent: the level filters, and the text format prints the same line for a person', () => {
    const out: string[] = [];
    const now = () => new Date('2026-01-02T03:04:05.000Z');
    const log = agentLogger({ level: 'warn', format: 'text', write: (l) => out.push(l), now });
    log.info('dropped');
    log.error('pull failed', { image: 'busybox', token: 'secret-token' });
    expect(out).toHaveLength(1);
    const [line] = out;
    expect(
      line!.startsWith(`2026-01-02T03:04:05.000Z ERROR pull failed image=busybox token=${REDACTED} `),
    ).toBe(true);
    expect(line).toMatch(/ requestId=agent-[0-9a-f-]{36}$/);
  });

  it('agent: each operation has its own requestId on every line, awaits included; commands add theirs', async () => {
    const out: string[] = [];
    const log = agentLogger({ write: (l) => out.push(l) });
    const tick = () => new Promise((r) => setImmediate(r));
    const ids = await Promise.all(
      ['a', 'b'].map((n) =>
        inNewOperation(async () => {
          log.info('beat', { n });
          await tick();
          log.child({ commandId: `cmd-${n}` }).info('executing', { n });
          return currentRequestId();
        }),
      ),
    );
    const lines = out.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(4);
    expect(new Set(ids).size).toBe(2);
    for (const l of lines) expect(l['requestId']).toBe(ids[l['n'] === 'a' ? 0 : 1]);
    expect(lines.filter((l) => l['commandId']).map((l) => l['commandId'])).toEqual(['cmd-a', 'cmd-b']);
  });

  it('control plane: the caller’s x-request-id is logged beside the request’s own id', () => {
    const [line] = controlPlaneLines((log) =>
      withLogContext({ requestId: 'req-2', clientRequestId: 'agent-op-7' }, () => log.info('heartbeat')),
    );
    expect(line).toMatchObject({ requestId: 'req-2', clientRequestId: 'agent-op-7' });
  });
});
