/** Receiver URLs can hold credentials (Slack's do): logs name the origin only. */
export function urlOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'invalid URL';
  }
}
