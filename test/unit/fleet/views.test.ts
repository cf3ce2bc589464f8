import { describe, expect, it } from 'vitest';
import { hashToken, newToken } from '../../../functions/core/tokens.js';
import { engineStatus, healthLevel, portsView } from '../../../functions/orchestrator/views.js';

describe('healthLevel (documented thresholds)', () => {
  it.each([
    [0, 0, 'healthy'],
    [74.9, 10, 'healthy'],
    [75, 10, 'warning'],
    [10, 90, 'warning'],
    [90.1, 0, 'critical'],
    [0, 99, 'critical'],
  ] as const)('cpu %d, memory %d → %s', (cpu, mem, level) => expect(healthLevel(cpu, mem)).toBe(level));
});

describe('container views', () => {
  it('writes ports the way docker-py does', () => {
    expect(
      portsView([
        { containerPort: 80, hostPort: 8080, protocol: 'tcp' },
        { containerPort: 53, hostPort: 0, protocol: 'udp' },
      ]),
    ).toEqual({ '80/tcp': '8080' });
  });

  it('speaks docker status words', () => {
    expect(engineStatus('pending')).toBe('created');
    expect(engineStatus('running')).toBe('running');
    expect(engineStatus('stopped')).toBe('exited');
  });
});

describe('agent tokens', () => {
  it('carry the node id, are random, and are stored as SHA-256', () => {
    const a = newToken('agx0-1234abcd');
    const b = newToken('agx0-1234abcd');
    expect(a.startsWith('agx0-1234abcd.')).toBe(true);
    expect(a).not.toBe(b);
    expect(hashToken(a)).toMatch(/^[0-9a-f]{64}$/);
    expect(hashToken(a)).not.toBe(hashToken(b));
  });
});
