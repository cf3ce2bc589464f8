import type { APIGatewayProxyResultV2, APIGatewayProxyWebsocketEventV2 } from 'aws-lambda';
import { emit } from '../core/events.js';
import { lambdaContext, websocketEntry } from '../core/lambda.js';
import { annotateTrace } from '../core/tracing.js';
import { closeConnection, openConnection } from '../realtime/session.js';

/** `$connect` events also carry the handshake's query and headers (absent from the aws-lambda type). */
export type WebSocketEvent = APIGatewayProxyWebsocketEventV2 & {
  queryStringParameters?: Record<string, string | undefined>;
  headers?: Record<string, string | undefined>;
};

/**
 * The WebSocket API's function: `$connect` checks the API key and the channel (one URL per API:
 * `wss://.../live?channel=metrics|logs|doctor&node_id=`) and records the connection; `$disconnect`
 * removes it. A refused connect answers the handshake with 400/401/404 (API Gateway cannot set a
 * close code). The first frame is sent by the events worker once the handshake is done.
 */
export async function handleWebSocket(event: WebSocketEvent): Promise<APIGatewayProxyResultV2> {
  const ctx = await lambdaContext();
  const { connectionId, routeKey, requestId } = event.requestContext;
  annotateTrace({ requestId, connectionId, route: `WS ${routeKey}` });
  if (routeKey === '$connect') {
    const opened = await openConnection(ctx, connectionId, {
      path: '/',
      query: event.queryStringParameters ?? {},
      headers: event.headers ?? {},
    });
    if (!opened.ok) return { statusCode: opened.status, body: opened.reason };
    // Delayed: API Gateway refuses posts to a connection until $connect has returned.
    await emit(ctx, { type: 'ws.connected', connectionId }, 1);
    return { statusCode: 200 };
  }
  if (routeKey === '$disconnect') {
    await closeConnection(ctx, connectionId);
    return { statusCode: 200 };
  }
  // Client frames are not part of the API: the stream is one way.
  return { statusCode: 400, body: 'This API only pushes; messages from clients are ignored' };
}

export const handler = websocketEntry(handleWebSocket);
