export interface Secrets {
  /** The decrypted value, or undefined when it is not set. */
  get(name: string): Promise<string | undefined>;
  put(name: string, value: string): Promise<void>;
  delete(name: string): Promise<void>;
  /** Names only: values never leave this port in listings. */
  list(): Promise<string[]>;
}
