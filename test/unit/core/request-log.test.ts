import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../../functions/core/logger.js';
import { AGENT_LOG_SAMPLE, logRequest } from '../../../functions/core/request-log.js';

describe('request access lines', () => {
  const lines: Record<string, unknown>[] = [];
  const original = process.stdout.write;
  afterEach(() => {
    process.stdout.write = original;
    lines.length = 0;
  });
  function capture(): void {
    process.stdout.write = ((chunk: string | Uint8Array) => {
      for (const l of String(chunk).split('\n').filter(Boolean))
        lines.push(JSON.parse(l) as Record<string, unknown>);
      return true;
    }) as typeof process.stdout.write;
  }
  const line = (path: string, status: number) => ({
    requestId: 'r',
    method: 'POST',
    path,
    status,
    durationMs: 3,
  });

  it('logs agent traffic at DEBUG with one sampled INFO line in a hundred; failures and user routes at INFO', () => {
    const logger = createLogger({ LOG_LEVEL: 'INFO', SERVICE_NAME: 'test' });
    capture();
    for (let i = 0; i < 2 * AGENT_LOG_SAMPLE; i++) logRequest(logger, line('/agent/heartbeat', 200));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({
      level: 'INFO',
      message: 'request',
      path: '/agent/heartbeat',
      sampled: 100,
    });

    lines.length = 0;
    logRequest(logger, line('/agent/heartbeat', 401));
    logRequest(logger, line('/tasks', 200));
    expect(lines.map((l) => [l.path, l.status])).toEqual([
      ['/agent/heartbeat', 401],
      ['/tasks', 200],
    ]);
  });

  it('at DEBUG every agent request has its line', () => {
    const logger = createLogger({ LOG_LEVEL: 'DEBUG', SERVICE_NAME: 'test' });
    capture();
    for (let i = 0; i < 10; i++) logRequest(logger, line('/agent/commands', 200));
    expect(lines).toHaveLength(10);
  });
});
