import { describe, expect, it } from 'vitest';
import { REFRESH_BEFORE_EXPIRY_MS, vendedCredentials } from '../../../agent/credentials.js';
import type { QueueCredentialsResponse } from '../../../protocol/messages.js';

const HOUR = 3600_000;

/** A control plane that vends a new key per call, valid `lifetimeMs` from `now()`. */
function vendor(now: () => number, lifetimeMs = HOUR) {
  let calls = 0;
  const fetch = async (): Promise<QueueCredentialsResponse> => {
    calls++;
    return {
      accessKeyId: `ASIA${calls}`,
      secretAccessKey: `secret-${calls}`,
      sessionToken: `token-${calls}`,
      expiration: new Date(now() + lifetimeMs).toISOString(),
      region: 'us-east-1',
      queueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/fleet-node-a',
    };
  };
  return { fetch, calls: () => calls };
}

describe('vendedCredentials (the agent SQS channel credential provider)', () => {
  it('asks the control plane once and reuses the credentials until shortly before they expire', async () => {
    let clock = Date.parse('2026-01-01T00:00:00Z');
    const now = () => clock;
    const cp = vendor(now);
    const provider = vendedCredentials(cp.fetch, { now });

    const first = await provider();
    expect(first).toEqual({
      accessKeyId: 'ASIA1',
      secretAccessKey: 'secret-1',
      sessionToken: 'token-1',
      expiration: new Date(clock + HOUR),
    });
    clock += HOUR - REFRESH_BEFORE_EXPIRY_MS - 1;
    expect((await provider()).accessKeyId).toBe('ASIA1');
    expect(cp.calls()).toBe(1);

    // Inside the refresh margin: new credentials before the old ones lapse.
    clock += 1;
    const second = await provider();
    expect(second.accessKeyId).toBe('ASIA2');
    expect(second.expiration!.getTime()).toBe(clock + HOUR);
    expect(cp.calls()).toBe(2);
  });

  it('shares one request among concurrent callers', async () => {
    const cp = vendor(Date.now);
    const provider = vendedCredentials(cp.fetch);
    const all = await Promise.all([provider(), provider(), provider()]);
    expect(new Set(all.map((c) => c.accessKeyId))).toEqual(new Set(['ASIA1']));
    expect(cp.calls()).toBe(1);
  });

  it('asks again after invalidate (SQS refused the credentials) and after a failed request', async () => {
    const cp = vendor(Date.now);
    let fail = true;
    const provider = vendedCredentials(async () => {
      if (fail) {
        fail = false;
        throw new Error('control plane unreachable');
      }
      return cp.fetch();
    });
    await expect(provider()).rejects.toThrow('control plane unreachable');
    expect((await provider()).accessKeyId).toBe('ASIA1');
    provider.invalidate();
    expect((await provider()).accessKeyId).toBe('ASIA2');
    expect(cp.calls()).toBe(2);
  });
});
