import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { outputName } from '../../../functions/cluster/outputs.js';
import { isSafeFilename } from '../../../functions/cluster/validation.js';

describe('output names', () => {
  it('are always one safe path segment carrying the task id', () => {
    fc.assert(
      fc.property(fc.string(), (agentName) => {
        const name = outputName('550e8400-e29b-41d4-a716-446655440000', agentName);
        expect(isSafeFilename(name)).toBe(true);
        expect(name.startsWith('550e8400-e29b-41d4-a716-446655440000_')).toBe(true);
      }),
    );
    expect(outputName('t1', '../../etc/passwd')).toBe('t1_passwd');
    expect(outputName('t1', 'image_0.png')).toBe('t1_image_0.png');
  });
});
