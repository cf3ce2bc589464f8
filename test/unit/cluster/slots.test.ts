import { describe, expect, it } from 'vitest';
import { freeSlots, type SlotItem } from '../../../functions/cluster/slots.js';

describe('slots', () => {
  it('offers the free slot numbers, lowest first', () => {
    const held = [{ slot: 1 }, { slot: 3 }] as SlotItem[];
    expect(freeSlots(4, held)).toEqual([0, 2]);
    expect(freeSlots(2, [{ slot: 0 }, { slot: 1 }] as SlotItem[])).toEqual([]);
  });
});
