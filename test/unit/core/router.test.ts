import { describe, expect, it } from 'vitest';
import { route, type AnyRoute } from '../../../functions/core/route.js';
import { Router, styleForPath } from '../../../functions/core/router.js';

const r = (method: AnyRoute['method'], path: string, greedy?: string[]): AnyRoute =>
  route({
    method,
    path,
    summary: path,
    tags: [],
    errorStyle: 'fastapi',
    scope: 'public',
    greedy,
    handler: async () => path,
  });

describe('Router', () => {
  const router = new Router([
    r('GET', '/containers'),
    r('GET', '/containers/{imageId}/instances', ['imageId']),
    r('GET', '/containers/instances/{instanceId}/health'),
    r('DELETE', '/containers/{idOrName}', ['idOrName']),
    r('POST', '/containers/{imageId}/start', ['imageId']),
    r('GET', '/jobs/{job_id}'),
    r('PUT', '/jobs/{job_id}'),
  ]);

  it('prefers literal segments over parameters', () => {
    const m = router.match('GET', '/containers/instances/abc/health');
    expect(m).toMatchObject({ kind: 'found', params: { instanceId: 'abc' } });
    expect(m.kind === 'found' && m.route.path).toBe('/containers/instances/{instanceId}/health');
  });

  it('lets greedy parameters hold raw slashes and colons', () => {
    const m = router.match('GET', '/containers/192.168.1.214:5000/sdxl-trt:r35.3.1/instances');
    expect(m).toMatchObject({ kind: 'found', params: { imageId: '192.168.1.214:5000/sdxl-trt:r35.3.1' } });
  });

  it('decodes percent-encoded parameters', () => {
    const m = router.match('POST', '/containers/192.168.1.214%3A5000%2Fsdxl-trt%3Ar35.3.1/start');
    expect(m).toMatchObject({ kind: 'found', params: { imageId: '192.168.1.214:5000/sdxl-trt:r35.3.1' } });
  });

  it('matches a path with or without its trailing slash, whichever the template has', () => {
    const slashed = new Router([r('GET', '/api/nodes/'), r('GET', '/workers'), r('GET', '/')]);
    for (const path of ['/api/nodes/', '/api/nodes'])
      expect(slashed.match('GET', path)).toMatchObject({ kind: 'found', route: { path: '/api/nodes/' } });
    for (const path of ['/workers', '/workers/'])
      expect(slashed.match('GET', path)).toMatchObject({ kind: 'found', route: { path: '/workers' } });
    expect(slashed.match('GET', '/')).toMatchObject({ kind: 'found', route: { path: '/' } });
    expect(slashed.match('GET', '/api/nodes//')).toEqual({ kind: 'none' });
  });

  it('keeps non-greedy parameters to one segment', () => {
    expect(router.match('GET', '/jobs/a/b')).toEqual({ kind: 'none' });
  });

  it('reports the allowed methods when only the method is wrong', () => {
    const m = router.match('DELETE', '/jobs/train-1');
    expect(m.kind).toBe('method');
    expect(m.kind === 'method' && m.allowed.sort()).toEqual(['GET', 'PUT']);
  });

  it('accepts a trailing slash', () => {
    expect(router.match('GET', '/containers/').kind).toBe('found');
  });

  it('picks the Novita and training error styles for their paths only', () => {
    expect(styleForPath('/api/instances/x')).toBe('novita');
    expect(styleForPath('/api/metrics')).toBe('novita');
    expect(styleForPath('/api/migration/status')).toBe('novita');
    expect(styleForPath('/api/nodes/')).toBe('fastapi');
    expect(styleForPath('/jobs')).toBe('training');
    expect(styleForPath('/jobs/train-1/runs')).toBe('training');
    expect(styleForPath('/stats')).toBe('training');
    expect(styleForPath('/jobsx')).toBe('fastapi');
  });
});
