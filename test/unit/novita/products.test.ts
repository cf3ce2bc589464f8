import { describe, expect, it } from 'vitest';
import type { NovitaProduct } from '../../../functions/ports/novita-cloud.js';
import { parseInstance, parseProduct, parseTemplate } from '../../../functions/adapters/http-novita-cloud.js';
import { chooseProduct } from '../../../functions/novita/products.js';

const product = (over: Partial<NovitaProduct>): NovitaProduct => ({
  id: 'p',
  name: 'RTX 4090 24GB',
  availableDeploy: true,
  regions: ['CN-HK-01'],
  price: 100,
  spotPrice: 50,
  ...over,
});

const ask = { productName: 'RTX 4090 24GB', region: 'CN-HK-01', billingMode: 'onDemand' as const };

describe('chooseProduct (optimal pricing selection)', () => {
  it('picks the cheapest deployable offer in the region', () => {
    const products = [
      product({ id: 'a', price: 300 }),
      product({ id: 'b', price: 200 }),
      product({ id: 'c', price: 50, availableDeploy: false }),
      product({ id: 'd', price: 10, regions: ['US-CA-06'] }),
    ];
    expect(chooseProduct(products, ask)).toMatchObject({ kind: 'chosen', product: { id: 'b' }, price: 200 });
  });

  it('compares spot prices under spot billing', () => {
    const products = [product({ id: 'a', price: 300, spotPrice: 90 }), product({ id: 'b', price: 200, spotPrice: 120 })];
    expect(chooseProduct(products, { ...ask, billingMode: 'spot' })).toMatchObject({ product: { id: 'a' }, price: 90 });
    expect(chooseProduct([product({ id: 'x', spotPrice: undefined })], { ...ask, billingMode: 'spot' })).toEqual({ kind: 'unavailable' });
  });

  it('matches the name whatever its case and spacing, and breaks price ties by id', () => {
    const products = [product({ id: 'z', name: 'rtx  4090 24gb' }), product({ id: 'm' })];
    expect(chooseProduct(products, ask)).toMatchObject({ product: { id: 'm' } });
  });

  it('tells an unknown product, a wrong region and no capacity apart', () => {
    expect(chooseProduct([product({ name: 'A100 80GB' })], ask)).toEqual({ kind: 'unknown', known: ['A100 80GB'] });
    expect(chooseProduct([product({ regions: ['US-CA-06', 'EU-DE-01'] })], ask)).toEqual({ kind: 'wrong-region', regions: ['EU-DE-01', 'US-CA-06'] });
    expect(chooseProduct([product({ availableDeploy: false })], ask)).toEqual({ kind: 'unavailable' });
  });
});

describe('Novita response parsing', () => {
  it('reads products with prices as numbers or strings, skipping broken entries', () => {
    expect(parseProduct({ id: 'p1', name: 'A', availableDeploy: true, regions: ['R'], price: '350000', spotPrice: 1 })).toMatchObject({ price: 350000, spotPrice: 1 });
    expect(parseProduct({ name: 'no id' })).toBeUndefined();
  });

  it('reads a template with its capital Id and port list', () => {
    expect(parseTemplate({ template: { Id: 't1', name: 'x', image: 'img', ports: [{ type: 'http', ports: [8888, 8080] }, { type: 'tcp', ports: [22] }] } })).toEqual({
      id: 't1',
      name: 'x',
      imageUrl: 'img',
      ports: '8888/http, 8080/http, 22/tcp',
    });
  });

  it('keeps the SSH command and URLs of an instance but not its password or token', () => {
    const i = parseInstance({
      id: 'i1',
      status: 'running',
      portMappings: [{ port: '22', endpoint: 'ssh://h:22', type: 'tcp' }],
      connectComponentSSH: { user: 'root', password: 'secret', command: 'ssh root@h' },
      connectComponentJupyter: { url: 'https://h:8888', token: 'tok' },
      spotReclaimTime: '0',
    })!;
    expect(i).toMatchObject({ id: 'i1', portMappings: [{ port: 22 }], connectComponentSSH: { command: 'ssh root@h' }, spotReclaimTime: '0' });
    expect(JSON.stringify(i)).not.toMatch(/secret|tok"/);
  });
});
