import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../functions/core/config.js';

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      TABLE_NAME: 'fleet',
      QUEUE_PREFIX: 'fleet-',
      API_AUTH: false,
      CORS_ORIGINS: ['http://localhost:3000', 'http://127.0.0.1:3000'],
      NODE_OFFLINE_AFTER_SECONDS: 90,
      NODE_HEARTBEAT_SECONDS: 30,
      NODE_METRICS_INTERVAL_SECONDS: 60,
      NODE_METRICS_THRESHOLD_PERCENT: 10,
      COMMAND_WAIT_MS: 20_000,
      MAX_BODY_BYTES: 1_048_576,
    });
    expect(c.AWS_ENDPOINT_URL).toBeUndefined();
  });

  it('treats empty variables as unset and parses lists, booleans and numbers', () => {
    const c = loadConfig({ AWS_ENDPOINT_URL: '', CORS_ORIGINS: 'https://a.example, https://b.example', API_AUTH: 'true', COMMAND_WAIT_MS: '500' });
    expect(c.AWS_ENDPOINT_URL).toBeUndefined();
    expect(c.CORS_ORIGINS).toEqual(['https://a.example', 'https://b.example']);
    expect(c.API_AUTH).toBe(true);
    expect(c.COMMAND_WAIT_MS).toBe(500);
  });

  it('names every invalid setting', () => {
    const error = (() => {
      try {
        loadConfig({ AWS_ENDPOINT_URL: 'not a url', COMMAND_WAIT_MS: '30000', LOG_LEVEL: 'LOUD' });
      } catch (e) {
        return (e as Error).message;
      }
      return '';
    })();
    for (const name of ['AWS_ENDPOINT_URL', 'COMMAND_WAIT_MS', 'LOG_LEVEL']) expect(error).toContain(`${name}:`);
  });
});
