import { GetParameterCommand } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { resetAwsClients, ssmClient } from '../../../functions/adapters/aws-clients.js';
import { SsmSecrets } from '../../../functions/adapters/ssm-secrets.js';
import type { Config } from '../../../functions/core/config.js';
import { describeWithMoto, resetMoto, testConfig } from '../../harness/services.js';

describeWithMoto('SsmSecrets against the AWS emulator', () => {
  let config: Config;
  let secrets: SsmSecrets;

  beforeAll(async () => {
    await resetMoto();
    config = testConfig();
    secrets = new SsmSecrets(config);
  });

  afterAll(() => resetAwsClients());

  it('round-trips a value stored as a SecureString under the prefix', async () => {
    expect(await secrets.get('api-key')).toBeUndefined();
    await secrets.put('api-key', 's3cr3t-value');
    expect(await secrets.get('api-key')).toBe('s3cr3t-value');

    const raw = await (await ssmClient(config)).send(
      new GetParameterCommand({ Name: `${config.SECRETS_PREFIX}api-key` }),
    );
    expect(raw.Parameter?.Type).toBe('SecureString');
    // Without decryption the stored value is not the plain text.
    expect(raw.Parameter?.Value).not.toBe('s3cr3t-value');
  });

  it('put overwrites an existing value', async () => {
    await secrets.put('rotating', 'v1');
    await secrets.put('rotating', 'v2');
    expect(await secrets.get('rotating')).toBe('v2');
  });

  it('lists names only, prefix stripped, nested names included, values absent', async () => {
    await secrets.put('nodes/n-1/token', 'node-token-value');
    // Outside this prefix: must not be listed.
    const other = new SsmSecrets(testConfig());
    await other.put('foreign', 'foreign-value');

    const names = await secrets.list();
    expect(names).toEqual(['api-key', 'nodes/n-1/token', 'rotating']);
    const listed = JSON.stringify(names);
    for (const value of ['s3cr3t-value', 'v2', 'node-token-value', 'foreign-value']) {
      expect(listed).not.toContain(value);
    }
  });

  it('lists across pages (GetParametersByPath returns at most 10 per page)', async () => {
    const many = new SsmSecrets(testConfig());
    const names = Array.from({ length: 23 }, (_, i) => `k${String(i).padStart(2, '0')}`);
    for (const name of names) await many.put(name, `value-${name}`);
    expect(await many.list()).toEqual(names);
  });

  it('delete removes a value and tolerates a missing one', async () => {
    await secrets.delete('rotating');
    expect(await secrets.get('rotating')).toBeUndefined();
    await secrets.delete('rotating');
    expect(await secrets.list()).not.toContain('rotating');
  });
});
