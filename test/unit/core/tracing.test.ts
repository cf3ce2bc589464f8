import { afterEach, describe, expect, it } from 'vitest';
import { handleWebSocket, type WebSocketEvent } from '../../../functions/handlers/websocket.js';
import { installTraceSink } from '../../../functions/core/tracing.js';

describe('trace annotations', () => {
  afterEach(() => installTraceSink(undefined));

  it('the WebSocket function annotates its request, connection and route', async () => {
    const seen: [string, string][] = [];
    installTraceSink({ annotate: (k, v) => seen.push([k, v]), span: (_n, fn) => fn() });
    const event = {
      requestContext: { connectionId: 'conn-1', routeKey: '$default', requestId: 'req-9' },
    } as unknown as WebSocketEvent;
    const answer = await handleWebSocket(event);
    expect(answer).toMatchObject({ statusCode: 400 });
    expect(seen).toEqual([
      ['requestId', 'req-9'],
      ['connectionId', 'conn-1'],
      ['route', 'WS $default'],
    ]);
  });
});
