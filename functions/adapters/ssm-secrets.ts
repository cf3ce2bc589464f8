import type { SSMClient } from '@aws-sdk/client-ssm';
import type { Config } from '../core/config.js';
import type { Secrets } from '../ports/secrets.js';
import { ssmClient } from './aws-clients.js';

/** Loaded on first use with its client (see aws-clients.ts). */
type Sdk = typeof import('@aws-sdk/client-ssm');

const isNotFound = (err: unknown) => err instanceof Error && err.name === 'ParameterNotFound';

/** Secrets as SSM SecureString parameters named `<SECRETS_PREFIX><name>`. */
export class SsmSecrets implements Secrets {
  constructor(
    private readonly config: Pick<Config, 'AWS_REGION' | 'AWS_ENDPOINT_URL' | 'SECRETS_PREFIX'>,
    private readonly injected?: SSMClient,
  ) {}

  private apiPromise?: Promise<{ client: SSMClient; m: Sdk }>;

  /** The client and the SDK's commands, loaded on first use. */
  private api(): Promise<{ client: SSMClient; m: Sdk }> {
    return (this.apiPromise ??= (async () => ({
      client: this.injected ?? (await ssmClient(this.config)),
      m: await import('@aws-sdk/client-ssm'),
    }))());
  }

  parameterName(name: string): string {
    return `${this.config.SECRETS_PREFIX}${name}`;
  }

  async get(name: string): Promise<string | undefined> {
    return this.getAbsolute(this.parameterName(name));
  }

  /** A parameter by its full name, outside the prefix (`/aws/reference/secretsmanager/<secret>`). */
  async getAbsolute(parameter: string): Promise<string | undefined> {
    const { client, m } = await this.api();
    try {
      const out = await client.send(new m.GetParameterCommand({ Name: parameter, WithDecryption: true }));
      return out.Parameter?.Value;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async put(name: string, value: string): Promise<void> {
    const { client, m } = await this.api();
    await client.send(
      new m.PutParameterCommand({
        Name: this.parameterName(name),
        Value: value,
        Type: 'SecureString',
        Overwrite: true,
      }),
    );
  }

  async delete(name: string): Promise<void> {
    const { client, m } = await this.api();
    try {
      await client.send(new m.DeleteParameterCommand({ Name: this.parameterName(name) }));
    } catch (err) {
      if (!isNotFound(err)) throw err; // deleting what is not there is done already
    }
  }

  async list(): Promise<string[]> {
    const { client, m } = await this.api();
    const prefix = this.config.SECRETS_PREFIX;
    // GetParametersByPath takes a hierarchy path: the prefix up to its last '/', then filter by the rest.
    const path = prefix.slice(0, prefix.lastIndexOf('/') + 1) || '/';
    const names: string[] = [];
    let NextToken: string | undefined;
    do {
      // WithDecryption false: listing needs no kms:Decrypt, and the values are dropped below anyway.
      const page = await client.send(
        new m.GetParametersByPathCommand({
          Path: path,
          Recursive: true,
          WithDecryption: false,
          NextToken,
        }),
      );
      for (const p of page.Parameters ?? []) {
        if (p.Name?.startsWith(prefix)) names.push(p.Name.slice(prefix.length));
      }
      NextToken = page.NextToken || undefined;
    } while (NextToken);
    return names.sort();
  }
}
