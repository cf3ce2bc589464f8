import { describe, expect, it } from 'vitest';
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
