import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  deliver as deliverInstanceWebhook,
  WEBHOOK_EVENT,
  type DeliverEvent,
} from '../../../functions/novita/webhooks.js';
import { deliver as deliverJobWebhook, type Notification } from '../../../functions/training/notify.js';
import { createBody, startNovitaRig, webhookReceiver, type NovitaRig } from './harness.js';

/** A receiver that answers every request with a 307 to `location`, counting what it got. */
async function redirector(
  location: string,
): Promise<{ url: string; hits: () => number; close: () => Promise<void> }> {
  let hits = 0;
  const server: Server = createServer((req, res) => {
    hits++;
    req.resume();
    req.on('end', () => res.writeHead(307, { location }).end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    hits: () => hits,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

const instanceEvent = (url: string): DeliverEvent => ({
  type: WEBHOOK_EVENT,
  url,
  deliveryId: 'inst-1.instance.ready',
  // The last attempt: a failure queues nothing more.
  attempt: 99,
  payload: { event: 'instance.ready', instanceId: 'inst-1' },
});

const notification: Notification = {
  event: 'job.status_changed',
  job_id: 'job-1',
  name: 'job',
  status: 'running',
  previous_status: 'pending',
  retry_count: 0,
  max_retries: 0,
  error_message: null,
  sequence: 1,
  timestamp: '2026-01-01T00:00:00Z',
};
const jobEvent = (url: string) => ({
  type: 'webhook.deliver' as const,
  url,
  format: 'json' as const,
  delivery_id: 'job-1.1.x',
  attempt: 99,
  payload: notification,
});

/**
 * Webhook URLs (Novita's webhookUrl, training receivers): refused at input and at delivery when
 * they lead to loopback, private, link-local, metadata or multicast addresses, unless
 * OUTBOUND_ALLOWLIST names them; redirects never followed. Receivers on loopback.
 */
describe('outbound webhooks without an allowlist', () => {
  let rig: NovitaRig;
  beforeAll(async () => {
    rig = await startNovitaRig({ OUTBOUND_ALLOWLIST: '' });
  });
  afterAll(async () => rig?.stop());

  it.each([
    ['http://127.0.0.1:9/hook', 'loopback address'],
    ['http://localhost:9/hook', 'loopback address'],
    ['http://[::1]:9/hook', 'loopback address'],
    ['http://[::ffff:127.0.0.1]:9/hook', 'loopback address'],
    ['http://169.254.169.254/latest/meta-data/', 'cloud metadata address'],
    ['http://[fd00:ec2::254]/latest/meta-data/', 'cloud metadata address'],
    ['http://10.0.0.5/hook', 'private address'],
    ['http://192.168.1.182:8080/hook', 'private address'],
    ['http://169.254.10.10/hook', 'link-local address'],
    ['http://224.0.0.1/hook', 'multicast address'],
  ])('POST /api/instances refuses webhookUrl %s (400, Novita shape), creating nothing', async (url, kind) => {
    const creates = rig.fake.creates().length;
    const res = await rig.api('POST', '/api/instances', createBody({ webhookUrl: url }));
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({
      code: 'VALIDATION_ERROR',
      details: { field: 'webhookUrl', reason: expect.stringContaining(kind) },
    });
    expect(res.body.error.message).toMatch(/^webhookUrl refused: /);
    expect(rig.fake.creates().length).toBe(creates);
    expect((await rig.api('GET', '/api/instances')).body.total).toBe(0);
  });

  it('delivery refuses a loopback receiver too, by name or address, and sends it nothing', async () => {
    const hook = await webhookReceiver();
    try {
      const port = new URL(hook.url).port;
      for (const url of [hook.url, `http://localhost:${port}/hook`]) {
        expect(await deliverInstanceWebhook(rig.rt.ctx, instanceEvent(url))).toBe(false);
        expect(await deliverJobWebhook(rig.rt.ctx, jobEvent(url))).toBe(false);
      }
      expect(hook.received).toHaveLength(0);
    } finally {
      await hook.close();
    }
  });
});

describe('outbound webhooks with OUTBOUND_ALLOWLIST=127.0.0.1', () => {
  let rig: NovitaRig;
  beforeAll(async () => {
    rig = await startNovitaRig({ OUTBOUND_ALLOWLIST: '127.0.0.1' });
  });
  afterAll(async () => rig?.stop());

  it('accepts and delivers to a loopback receiver the allowlist names; metadata and other ranges stay refused', async () => {
    const hook = await webhookReceiver();
    try {
      const ok = await rig.api('POST', '/api/instances', createBody({ webhookUrl: hook.url }));
      expect(ok.status).toBe(201);
      for (const url of [
        'http://169.254.169.254/latest/meta-data/',
        'http://10.0.0.5/hook',
        'http://[::1]:9/',
      ]) {
        const res = await rig.api('POST', '/api/instances', createBody({ webhookUrl: url }));
        expect(res.status).toBe(400);
        expect(res.body.error.details.field).toBe('webhookUrl');
      }
      expect(await deliverInstanceWebhook(rig.rt.ctx, instanceEvent(hook.url))).toBe(true);
      expect(await deliverJobWebhook(rig.rt.ctx, jobEvent(hook.url))).toBe(true);
      const kinds = hook.received.map((r) => r.headers['x-novita-event'] ?? r.headers['x-fleet-event']);
      expect(kinds).toEqual(expect.arrayContaining(['instance.ready', 'job.status_changed']));
    } finally {
      await hook.close();
    }
  });

  it('does not follow redirects, even to an allowed receiver', async () => {
    const target = await webhookReceiver();
    const hop = await redirector(target.url);
    try {
      expect(await deliverInstanceWebhook(rig.rt.ctx, instanceEvent(hop.url))).toBe(false);
      expect(await deliverJobWebhook(rig.rt.ctx, jobEvent(hop.url))).toBe(false);
      expect(hop.hits()).toBe(2);
      expect(target.received).toHaveLength(0);
    } finally {
      await hop.close();
      await target.close();
    }
  });
});
