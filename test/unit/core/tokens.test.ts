import { describe, expect, it } from 'vitest';
import { hashToken, newToken } from '../../../functions/core/tokens.js';

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
