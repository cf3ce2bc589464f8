import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedDynamo, type EmbeddedDynamo } from '../../../local/embedded-dynamo.js';

/** The embedded store answers only requests signed with the credentials it made at start. */
describe('embedded DynamoDB: a credential of its own', () => {
  let engine: EmbeddedDynamo;
  let other: EmbeddedDynamo;
  const clients: DynamoDBClient[] = [];
  const client = (credentials: { accessKeyId: string; secretAccessKey: string }, on = engine) => {
    const c = new DynamoDBClient({ endpoint: on.endpoint, region: 'us-east-1', credentials, maxAttempts: 1 });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    engine = await startEmbeddedDynamo();
    other = await startEmbeddedDynamo();
  });
  afterAll(async () => {
    for (const c of clients) c.destroy();
    await engine.stop();
    await other.stop();
  });

  it('makes fresh, distinct credentials per start', () => {
    expect(engine.credentials.accessKeyId).toMatch(/^EMBEDDED[0-9A-F]{32}$/);
    expect(engine.credentials.accessKeyId).not.toBe(other.credentials.accessKeyId);
    expect(engine.credentials.secretAccessKey).not.toBe(other.credentials.secretAccessKey);
  });

  it('serves its own credentials', async () => {
    const out = await client(engine.credentials).send(new ListTablesCommand({}));
    expect(out.TableNames).toEqual([]);
  });

  it.each([
    ['any key', { accessKeyId: 'x', secretAccessKey: 'x' }],
    ['the fixed key it used to take', { accessKeyId: 'embedded', secretAccessKey: 'embedded' }],
  ])('refuses %s as DynamoDB does', async (_what, credentials) => {
    await expect(client(credentials).send(new ListTablesCommand({}))).rejects.toMatchObject({
      name: 'UnrecognizedClientException',
      $metadata: { httpStatusCode: 400 },
    });
  });

  it("refuses another engine's credentials, and an unsigned request", async () => {
    await expect(client(other.credentials).send(new ListTablesCommand({}))).rejects.toMatchObject({
      name: 'UnrecognizedClientException',
    });
    const res = await fetch(engine.endpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-amz-json-1.0',
        'x-amz-target': 'DynamoDB_20120810.ListTables',
      },
      body: '{}',
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { __type: string }).__type).toMatch(/UnrecognizedClientException$/);
  });
});
