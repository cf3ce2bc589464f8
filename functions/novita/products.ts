import type { NovitaProduct } from '../ports/novita-cloud.js';

export type ProductChoice =
  | { kind: 'chosen'; product: NovitaProduct; price: number }
  /** No product has that name. */
  | { kind: 'unknown'; known: string[] }
  /** It exists, but not in the region asked. */
  | { kind: 'wrong-region'; regions: string[] }
  /** It exists in the region, but Novita cannot deploy it now. */
  | { kind: 'unavailable' };

const norm = (s: string) => s.trim().toLowerCase().replace(/\s+/g, ' ');

/**
 * Optimal pricing selection: among products whose name matches exactly (case and spacing
 * aside), deployable now, in the region asked, the cheapest under the billing mode; ties go to
 * the lowest id so the choice is stable.
 */
export function chooseProduct(
  products: NovitaProduct[],
  ask: { productName: string; region: string; billingMode: 'onDemand' | 'spot' },
): ProductChoice {
  const named = products.filter((p) => norm(p.name) === norm(ask.productName));
  if (!named.length) return { kind: 'unknown', known: [...new Set(products.map((p) => p.name))].sort() };
  const inRegion = named.filter((p) => p.regions.includes(ask.region));
  if (!inRegion.length) return { kind: 'wrong-region', regions: [...new Set(named.flatMap((p) => p.regions))].sort() };
  const priceOf = (p: NovitaProduct) => (ask.billingMode === 'spot' ? (p.spotPrice ?? Number.POSITIVE_INFINITY) : p.price);
  const candidates = inRegion.filter((p) => p.availableDeploy && Number.isFinite(priceOf(p)));
  if (!candidates.length) return { kind: 'unavailable' };
  candidates.sort((a, b) => priceOf(a) - priceOf(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const product = candidates[0]!;
  return { kind: 'chosen', product, price: priceOf(product) };
}
