import type { ApiGatewayManagementApiClient } from '@aws-sdk/client-apigatewaymanagementapi';
import { GoneConnectionError, type ConnectionSender } from '../ports/connections.js';

type Sdk = typeof import('@aws-sdk/client-apigatewaymanagementapi');
const isGone = (error: unknown) => (error as { name?: string } | undefined)?.name === 'GoneException';

/**
 * The AWS adapter of the send port: API Gateway's Management API at the WebSocket stage's
 * callback URL. GoneException (the client left, API Gateway dropped it) becomes GoneConnectionError.
 */
export class ApiGatewayConnections implements ConnectionSender {
  private apiPromise?: Promise<{ client: ApiGatewayManagementApiClient; m: Sdk }>;

  constructor(
    private readonly callbackUrl: string,
    private readonly region: string,
    private readonly injected?: ApiGatewayManagementApiClient,
  ) {}

  /** The SDK loads on first use: every function carries this adapter, only the pushing one sends. */
  private api(): Promise<{ client: ApiGatewayManagementApiClient; m: Sdk }> {
    return (this.apiPromise ??= (async () => {
      const m = await import('@aws-sdk/client-apigatewaymanagementapi');
      const client =
        this.injected ??
        new m.ApiGatewayManagementApiClient({ endpoint: this.callbackUrl, region: this.region });
      return { client, m };
    })());
  }

  async send(connectionId: string, data: string): Promise<void> {
    const { client, m } = await this.api();
    try {
      await client.send(
        new m.PostToConnectionCommand({ ConnectionId: connectionId, Data: Buffer.from(data) }),
      );
    } catch (error) {
      if (error instanceof m.GoneException || isGone(error)) throw new GoneConnectionError(connectionId);
      throw error;
    }
  }

  /** API Gateway sets no custom close code: the client sees its own close (1006 or 1000). */
  async close(connectionId: string): Promise<void> {
    const { client, m } = await this.api();
    try {
      await client.send(new m.DeleteConnectionCommand({ ConnectionId: connectionId }));
    } catch (error) {
      if (!(error instanceof m.GoneException || isGone(error))) throw error;
    }
  }
}
