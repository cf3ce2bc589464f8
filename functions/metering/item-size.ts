/**
 * DynamoDB's item size, the unit every read and write is billed by. The rules, from "DynamoDB item
 * sizes and formats" (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html):
 * a string is its UTF-8 bytes; a number about 1 byte per two significant digits plus 1; binary its raw
 * bytes; null and boolean 1 byte; a list or map 3 bytes plus 1 byte per element plus its elements; every
 * attribute also costs the UTF-8 bytes of its name (map keys included).
 */
const utf8 = (s: string): number => Buffer.byteLength(s, 'utf8');

function numberSize(n: number | bigint): number {
  // Significant digits: no sign, no point, no leading or trailing zeros.
  const digits = String(n)
    .replace(/^-/, '')
    .replace(/e[+-]?\d+$/i, '')
    .replace('.', '')
    .replace(/^0+/, '')
    .replace(/0+$/, '');
  return Math.ceil(Math.max(digits.length, 1) / 2) + 1;
}

/** Size of one value, without its attribute name. */
export function valueSize(value: unknown): number {
  if (value === null) return 1;
  switch (typeof value) {
    case 'string':
      return utf8(value);
    case 'number':
    case 'bigint':
      return numberSize(value);
    case 'boolean':
      return 1;
    case 'undefined':
      return 0;
  }
  if (value instanceof Uint8Array) return value.byteLength;
  if (value instanceof Set) {
    let size = 0;
    for (const v of value) size += valueSize(v);
    return size;
  }
  if (Array.isArray(value)) {
    let size = 3;
    for (const v of value) size += 1 + valueSize(v);
    return size;
  }
  if (typeof value === 'object') {
    let size = 3;
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (v === undefined) continue; // the store's marshaller drops undefined values
      size += 1 + utf8(k) + valueSize(v);
    }
    return size;
  }
  return 0;
}

/** Bytes of a whole item as DynamoDB counts them: attribute names plus values. */
export function itemSize(item: Record<string, unknown>): number {
  let size = 0;
  for (const [name, value] of Object.entries(item)) {
    if (value === undefined) continue;
    size += utf8(name) + valueSize(value);
  }
  return size;
}
