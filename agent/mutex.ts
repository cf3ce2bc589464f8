/**
 * Serialises work per key (an instance id): a stop never overtakes the start it follows, while
 * commands for different containers run side by side.
 */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(fn, fn);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      // Forget idle keys so the map does not grow with every instance ever seen.
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}
