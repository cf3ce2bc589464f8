import {
  DeleteParameterCommand,
  GetParameterCommand,
  GetParametersByPathCommand,
  PutParameterCommand,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import type { Config } from '../core/config.js';
import type { Secrets } from '../ports/secrets.js';
import { ssmClient } from './aws-clients.js';

const isNotFound = (err: unknown) => err instanceof Error && err.name === 'ParameterNotFound';

/** Secrets as SSM SecureString parameters named `<SECRETS_PREFIX><name>`. */
export class SsmSecrets implements Secrets {
  constructor(
    private readonly config: Pick<Config, 'AWS_REGION' | 'AWS_ENDPOINT_URL' | 'SECRETS_PREFIX'>,
    private readonly client: SSMClient = ssmClient(config),
  ) {}

  parameterName(name: string): string {
    return `${this.config.SECRETS_PREFIX}${name}`;
  }

  async get(name: string): Promise<string | undefined> {
    try {
      const out = await this.client.send(
        new GetParameterCommand({ Name: this.parameterName(name), WithDecryption: true }),
      );
      return out.Parameter?.Value;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async put(name: string, value: string): Promise<void> {
    await this.client.send(
      new PutParameterCommand({
        Name: this.parameterName(name),
        Value: value,
        Type: 'SecureString',
        Overwrite: true,
      }),
    );
  }

  async delete(name: string): Promise<void> {
    try {
      await this.client.send(new DeleteParameterCommand({ Name: this.parameterName(name) }));
    } catch (err) {
      if (!isNotFound(err)) throw err; // deleting what is not there is done already
    }
  }

  async list(): Promise<string[]> {
    const prefix = this.config.SECRETS_PREFIX;
    // GetParametersByPath takes a hierarchy path: the prefix up to its last '/', then filter by the rest.
    const path = prefix.slice(0, prefix.lastIndexOf('/') + 1) || '/';
    const names: string[] = [];
    let NextToken: string | undefined;
    do {
      // WithDecryption false: listing needs no kms:Decrypt, and the values are dropped below anyway.
      const page = await this.client.send(
        new GetParametersByPathCommand({ Path: path, Recursive: true, WithDecryption: false, NextToken }),
      );
      for (const p of page.Parameters ?? []) {
        if (p.Name?.startsWith(prefix)) names.push(p.Name.slice(prefix.length));
      }
      NextToken = page.NextToken || undefined;
    } while (NextToken);
    return names.sort();
  }
}
