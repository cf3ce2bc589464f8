import { describe, expect, it } from 'vitest';
import { parseChannel } from '../../../functions/realtime/session.js';

describe('WebSocket channel parsing', () => {
  const req = (path: string, query: Record<string, string> = {}) => ({ path, query, headers: {} });
  it('maps the spec paths and the single-URL query form to the same channels', () => {
    expect(parseChannel(req('/ws/metrics'))).toEqual({ channel: 'metrics' });
    expect(parseChannel(req('/ws/doctor'))).toEqual({ channel: 'doctor' });
    expect(parseChannel(req('/ws/logs/agx%200'))).toEqual({ channel: 'logs', node: 'agx 0' });
    expect(parseChannel(req('/', { channel: 'logs', node_id: 'agx0' }))).toEqual({
      channel: 'logs',
      node: 'agx0',
    });
    expect(parseChannel(req('/', { channel: 'metrics' }))).toEqual({ channel: 'metrics' });
  });
  it('takes the container opt-in of a logs subscription, and refuses a malformed container id', () => {
    expect(parseChannel(req('/ws/logs/agx0', { container: '3f2a9c1b7d4e' }))).toEqual({
      channel: 'logs',
      node: 'agx0',
      container: '3f2a9c1b7d4e',
    });
    expect(
      parseChannel(req('/', { channel: 'logs', node_id: 'agx0', container: 'job-1-20260115-a1' })),
    ).toEqual({
      channel: 'logs',
      node: 'agx0',
      container: 'job-1-20260115-a1',
    });
    expect(parseChannel(req('/ws/logs/agx0', { container: '../x y' }))).toMatchObject({
      ok: false,
      closeCode: 4400,
    });
  });
  it('the bare /ws is the cluster event stream; refuses what names no known stream', () => {
    expect(parseChannel(req('/ws'))).toEqual({ channel: 'cluster' });
    expect(parseChannel(req('/', {}))).toEqual({ channel: 'cluster' });
    expect(parseChannel(req('/ws/logs'))).toMatchObject({ ok: false, status: 400, closeCode: 4400 });
    expect(parseChannel(req('/ws/nope'))).toMatchObject({ ok: false, status: 404, closeCode: 4404 });
    expect(parseChannel(req('/ws/metrics/extra'))).toMatchObject({ ok: false, status: 404 });
  });
});
