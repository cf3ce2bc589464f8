/**
 * A test double of Amazon Bedrock Runtime's Converse API on loopback: `POST /model/{modelId}/converse`
 * with the documented request (`messages`, `system`, `inferenceConfig`) and response
 * (`output.message`, `stopReason`, `usage`), and its errors as the service sends them
 * (`x-amzn-errortype` header, `{"message"}` body). Bedrock is the one dependency no machine here
 * reaches, and no emulator serves it. HTTP/2 in clear text: the Bedrock Runtime client speaks
 * HTTP/2 only (TLS against AWS).
 */
import {
  createServer,
  type Http2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type Http2Session,
} from 'node:http2';
import type { AddressInfo } from 'node:net';

export interface ConverseCall {
  modelId: string;
  /** SigV4 signed, as the SDK does. */
  authorization: string | undefined;
  body: {
    messages: { role: string; content: { text?: string }[] }[];
    system?: { text?: string }[];
    inferenceConfig?: { maxTokens?: number; temperature?: number };
  };
}

export type Behaviour =
  | { kind: 'text'; text: string }
  | { kind: 'validation'; message?: string }
  | { kind: 'throttle' }
  | { kind: 'hang'; ms: number };

export class FakeBedrock {
  readonly calls: ConverseCall[] = [];
  /** What the next calls get, in order; when empty, `fallback`. */
  readonly script: Behaviour[] = [];
  fallback: Behaviour = { kind: 'text', text: '{"response": "ok", "suggestions": []}' };
  private server?: Http2Server;
  private readonly sessions = new Set<Http2Session>();
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.on('session', (s: Http2Session) => {
      this.sessions.add(s);
      s.on('close', () => this.sessions.delete(s));
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const s of this.sessions) s.destroy();
    await new Promise((r) => this.server?.close(r));
  }

  /** The text of every user turn the model received, joined. */
  lastPrompt(): string {
    const call = this.calls.at(-1);
    if (!call) throw new Error('the model was not called');
    return call.body.messages.flatMap((m) => m.content.map((c) => c.text ?? '')).join('\n');
  }

  /** The fleet state JSON embedded in the last prompt. */
  lastState(): Record<string, unknown> {
    const prompt = this.lastPrompt();
    const start = prompt.indexOf('{');
    const end = prompt.lastIndexOf('}\n\n');
    return JSON.parse(prompt.slice(start, end + 1)) as Record<string, unknown>;
  }

  private async handle(req: Http2ServerRequest, res: Http2ServerResponse): Promise<void> {
    let raw = '';
    for await (const chunk of req) raw += String(chunk);
    const match = /^\/model\/([^/]+)\/converse$/.exec(req.url ?? '');
    if (req.method !== 'POST' || !match) {
      return this.error(res, 404, 'UnknownOperationException', `No route for ${req.method} ${req.url}`);
    }
    let body: ConverseCall['body'];
    try {
      body = JSON.parse(raw) as ConverseCall['body'];
    } catch {
      return this.error(res, 400, 'ValidationException', 'Malformed input request');
    }
    if (!Array.isArray(body.messages) || body.messages.length === 0) {
      return this.error(res, 400, 'ValidationException', 'messages: must have at least 1 item');
    }
    this.calls.push({
      modelId: decodeURIComponent(match[1]!),
      authorization: req.headers.authorization,
      body,
    });
    const b = this.script.shift() ?? this.fallback;
    switch (b.kind) {
      case 'validation':
        return this.error(
          res,
          400,
          'ValidationException',
          b.message ?? 'The provided model identifier is invalid.',
        );
      case 'throttle':
        return this.error(
          res,
          429,
          'ThrottlingException',
          'Too many requests, please wait before trying again.',
        );
      case 'hang':
        await new Promise((r) => setTimeout(r, b.ms));
        if (res.destroyed) return;
        return this.reply(res, '{"response": "late", "suggestions": []}');
      case 'text':
        return this.reply(res, b.text);
    }
  }

  private reply(res: Http2ServerResponse, text: string): void {
    const outputTokens = Math.ceil(text.length / 4);
    res.writeHead(200, { 'content-type': 'application/json', 'x-amzn-requestid': 'fake-request' }).end(
      JSON.stringify({
        output: { message: { role: 'assistant', content: [{ text }] } },
        stopReason: 'end_turn',
        usage: { inputTokens: 100, outputTokens, totalTokens: 100 + outputTokens },
        metrics: { latencyMs: 5 },
      }),
    );
  }

  private error(res: Http2ServerResponse, status: number, type: string, message: string): void {
    res
      .writeHead(status, {
        'content-type': 'application/json',
        'x-amzn-errortype': `${type}:http://internal.amazon.com/coral/com.amazon.bedrock/`,
      })
      .end(JSON.stringify({ message }));
  }
}
