/** Code-unit string order: locale-independent, so plans are identical on every host. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
