import {
  ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  GoneException,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { GoneConnectionError, type ConnectionSender } from '../ports/connections.js';

/**
 * The AWS adapter of the send port: API Gateway's Management API at the WebSocket stage's
 * callback URL. GoneException (the client left, API Gateway dropped it) becomes GoneConnectionError.
 */
export class ApiGatewayConnections implements ConnectionSender {
  private readonly client: ApiGatewayManagementApiClient;

  constructor(callbackUrl: string, region: string, client?: ApiGatewayManagementApiClient) {
    this.client = client ?? new ApiGatewayManagementApiClient({ endpoint: callbackUrl, region });
  }

  async send(connectionId: string, data: string): Promise<void> {
    try {
      await this.client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: Buffer.from(data) }));
    } catch (error) {
      if (error instanceof GoneException || (error as { name?: string }).name === 'GoneException')
        throw new GoneConnectionError(connectionId);
      throw error;
    }
  }

  /** API Gateway sets no custom close code: the client sees its own close (1006 or 1000). */
  async close(connectionId: string): Promise<void> {
    try {
      await this.client.send(new DeleteConnectionCommand({ ConnectionId: connectionId }));
    } catch (error) {
      if (!(error instanceof GoneException || (error as { name?: string }).name === 'GoneException')) throw error;
    }
  }
}
