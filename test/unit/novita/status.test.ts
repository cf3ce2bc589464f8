import { describe, expect, it } from 'vitest';
import { isSpotReclaimed, mapNovitaStatus, startupOutcome } from '../../../functions/novita/status.js';

describe('mapNovitaStatus', () => {
  it.each([
    ['toCreate', 'creating'],
    ['creating', 'creating'],
    ['pending', 'creating'],
    ['pulling', 'starting'],
    ['toStart', 'starting'],
    ['starting', 'starting'],
    ['toRestart', 'starting'],
    ['restarting', 'starting'],
    ['toReset', 'starting'],
    ['resetting', 'starting'],
    ['migrating', 'starting'],
    ['running', 'running'],
    ['toStop', 'stopped'],
    ['stopping', 'stopped'],
    ['freezing', 'stopped'],
    ['exited', 'exited'],
    ['toRemove', 'exited'],
    ['removing', 'exited'],
    ['removed', 'exited'],
  ])('maps Novita %s to %s', (novita, ours) => {
    expect(mapNovitaStatus(novita)).toBe(ours);
  });

  it('leaves an unknown status unmapped so the caller keeps what it knew', () => {
    expect(mapNovitaStatus('hibernating')).toBeUndefined();
    expect(startupOutcome({ status: 'hibernating' }, 'starting')).toEqual({ kind: 'waiting', status: 'starting' });
  });
});

describe('startupOutcome', () => {
  it('is ready once running', () => {
    expect(startupOutcome({ status: 'running' }, 'starting')).toEqual({ kind: 'ready' });
  });

  it('waits through the progression', () => {
    expect(startupOutcome({ status: 'toCreate' }, 'creating')).toEqual({ kind: 'waiting', status: 'creating' });
    expect(startupOutcome({ status: 'pulling' }, 'creating')).toEqual({ kind: 'waiting', status: 'starting' });
  });

  it('fails on a status error, with its message', () => {
    expect(startupOutcome({ status: 'pulling', statusError: { state: 'pullFailed', message: 'image not found' } }, 'starting')).toEqual({
      kind: 'failed',
      code: 'NOVITA_INSTANCE_ERROR',
      message: 'image not found',
    });
  });

  it('ignores an empty status error, as Novita sends one on healthy instances', () => {
    expect(startupOutcome({ status: 'pulling', statusError: { state: '', message: '' } }, 'starting').kind).toBe('waiting');
  });

  it('fails an instance that stops or exits before it ever ran', () => {
    expect(startupOutcome({ status: 'exited' }, 'starting')).toMatchObject({ kind: 'failed', code: 'INSTANCE_EXITED' });
    expect(startupOutcome({ status: 'stopping' }, 'creating')).toMatchObject({ kind: 'failed', code: 'INSTANCE_EXITED' });
  });
});

describe('isSpotReclaimed', () => {
  it('needs exited and a non-zero reclaim time', () => {
    expect(isSpotReclaimed({ status: 'exited', spotReclaimTime: '1704067200' })).toBe(true);
    expect(isSpotReclaimed({ status: 'exited', spotReclaimTime: '0' })).toBe(false);
    expect(isSpotReclaimed({ status: 'exited' })).toBe(false);
    expect(isSpotReclaimed({ status: 'exited', spotReclaimTime: '' })).toBe(false);
    expect(isSpotReclaimed({ status: 'running', spotReclaimTime: '1704067200' })).toBe(false);
  });
});
