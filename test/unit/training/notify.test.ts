import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  deliveryBody,
  redeliverySeconds,
  sign,
  slackText,
  type Notification,
} from '../../../functions/training/notify.js';
import { loadTrainingSettings, parseWebhookTargets } from '../../../functions/training/settings.js';

const n: Notification = {
  event: 'job.status_changed',
  job_id: 'train-a1b2c3d4',
  name: 'resnet50-training',
  status: 'failed',
  previous_status: 'running',
  retry_count: 3,
  max_retries: 3,
  error_message: 'Container exited with code 1. Last log lines:\nOOM',
  sequence: 7,
  timestamp: '2025-10-22T02:10:00',
};

describe('webhook signatures', () => {
  it('is HMAC-SHA256 over "<timestamp>.<body>", hex, prefixed sha256=', () => {
    const body = deliveryBody('json', n);
    const expected = createHmac('sha256', 'k3y').update(`1761099000.${body}`).digest('hex');
    expect(sign('k3y', 1761099000, body)).toBe(`sha256=${expected}`);
    // Any change to the body, the time or the key changes it.
    expect(sign('k3y', 1761099001, body)).not.toBe(sign('k3y', 1761099000, body));
    expect(sign('other', 1761099000, body)).not.toBe(sign('k3y', 1761099000, body));
    expect(sign('k3y', 1761099000, body + ' ')).not.toBe(sign('k3y', 1761099000, body));
  });
});

describe('notification formats', () => {
  it('sends the JSON notification as is, and Slack a {text}', () => {
    expect(JSON.parse(deliveryBody('json', n))).toEqual(n);
    const slack = JSON.parse(deliveryBody('slack', n)) as Record<string, unknown>;
    expect(Object.keys(slack)).toEqual(['text']);
    expect(slack.text).toBe(slackText(n));
    expect(slack.text).toContain('*resnet50-training* (`train-a1b2c3d4`) failed (was running), retries 3/3');
    expect(slack.text).toContain('OOM');
  });

  it('backs redeliveries off up to the SQS maximum delay', () => {
    expect([1, 2, 3, 4, 5, 6].map(redeliverySeconds)).toEqual([5, 20, 80, 320, 900, 900]);
  });
});

describe('training settings', () => {
  it('reads receivers from TRAINING_WEBHOOK_URLS, Slack by prefix or host', () => {
    expect(
      parseWebhookTargets(
        'https://example.com/hook, slack+http://127.0.0.1:9/x,https://hooks.slack.com/services/T/B/C',
      ),
    ).toEqual([
      { url: 'https://example.com/hook', format: 'json' },
      { url: 'http://127.0.0.1:9/x', format: 'slack' },
      { url: 'https://hooks.slack.com/services/T/B/C', format: 'slack' },
    ]);
    expect(() => loadTrainingSettings({ TRAINING_WEBHOOK_URLS: 'ftp://x' })).toThrow(/TRAINING_WEBHOOK_URLS/);
  });

  it('has defaults', () => {
    expect(loadTrainingSettings({})).toMatchObject({
      webhooks: [],
      checkpointRoot: '/var/lib/fleet/checkpoints',
      retry: { baseSeconds: 30, maxSeconds: 21600 },
    });
  });
});
