import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  agentEventsRequest,
  heartbeatRequest,
  registerRequest,
  type AgentEvent,
  type HeartbeatRequest,
  type RegisterRequest,
} from '../../../protocol/messages.js';
import { commandResult, type CommandEnvelope, type CommandResult } from '../../../protocol/commands.js';

/**
 * A stand-in control plane for suites that run the whole agent (runAgent) against the real
 * engine: it speaks the contract in protocol/messages.ts, validating every body with its
 * schemas, and queues the commands a test sends.
 */
export class FakeControlPlane {
  server!: Server;
  url = '';
  token = 'token-1';
  registrations: RegisterRequest[] = [];
  heartbeats: HeartbeatRequest[] = [];
  results: Array<{ commandId: string; result: CommandResult }> = [];
  events: AgentEvent[] = [];
  acks: string[] = [];
  /** POST /agent/stopping calls (the agent's word on its way out). */
  stopping = 0;
  queue: Array<{ receiptHandle: string; body: string }> = [];
  unauthorized: string[] = [];
  invalid: string[] = [];
  private seq = 0;

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => this.route(req, body, res));
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }

  send(envelope: CommandEnvelope): void {
    this.queue.push({ receiptHandle: `rh-${++this.seq}`, body: JSON.stringify(envelope) });
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  }

  private route(req: IncomingMessage, body: string, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', this.url);
    const parse = <T>(schema: { safeParse(v: unknown): { success: boolean; data?: T } }): T | undefined => {
      const r = schema.safeParse(JSON.parse(body || '{}'));
      if (!r.success) this.invalid.push(`${url.pathname}: ${body.slice(0, 200)}`);
      return r.data;
    };
    if (url.pathname === '/agent/register' && req.method === 'POST') {
      const r = parse<RegisterRequest>(registerRequest);
      if (r) this.registrations.push(r);
      this.token = `token-${this.registrations.length}`;
      return this.json(res, 200, {
        nodeId: 'node-e2e',
        token: this.token,
        channel: { type: 'http' },
        heartbeatIntervalSeconds: 1,
      });
    }
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      this.unauthorized.push(url.pathname);
      return this.json(res, 401, { message: 'unknown token' });
    }
    if (url.pathname === '/agent/heartbeat') {
      const h = parse<HeartbeatRequest>(heartbeatRequest);
      if (h) this.heartbeats.push(h);
      return this.json(res, 200, {});
    }
    if (url.pathname === '/agent/commands' && req.method === 'GET') {
      const max = Number(url.searchParams.get('max') ?? 10);
      const answer = () => this.json(res, 200, { messages: this.queue.splice(0, max) });
      // A short long-poll: answer when something is queued or after 300 ms.
      if (this.queue.length > 0) return answer();
      setTimeout(answer, 300);
      return;
    }
    if (url.pathname === '/agent/commands/ack') {
      this.acks.push(...(JSON.parse(body) as { receiptHandles: string[] }).receiptHandles);
      return this.json(res, 200, {});
    }
    const result = /^\/agent\/commands\/([^/]+)\/result$/.exec(url.pathname);
    if (result) {
      const r = parse<CommandResult>(commandResult);
      if (r) this.results.push({ commandId: decodeURIComponent(result[1]!), result: r });
      return this.json(res, 200, {});
    }
    if (url.pathname === '/agent/stopping' && req.method === 'POST') {
      this.stopping++;
      return this.json(res, 200, { ok: true, nodeId: 'node-e2e', status: 'offline' });
    }
    if (url.pathname === '/agent/events') {
      const e = parse<{ events: AgentEvent[] }>(agentEventsRequest);
      if (e) this.events.push(...e.events);
      return this.json(res, 200, {});
    }
    this.json(res, 404, { message: 'no route' });
  }
}
