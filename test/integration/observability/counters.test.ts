import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../functions/core/config.js';
import type { AppContext } from '../../../functions/core/context.js';
import { observabilityKeys } from '../../../functions/core/keys.js';
import {
  countCommandResult,
  countHttpRequest,
  countPlacement,
  countTaskFinished,
  flushCounters,
  readCounters,
} from '../../../functions/observability/counters.js';
import { renderMetrics } from '../../../functions/observability/prometheus.js';
import type { Store } from '../../../functions/ports/store.js';
import { createEmbeddedContext } from '../../../local/embedded-context.js';

/** Counts the store's update calls: the cost of counting. */
function countingUpdates(store: Store): { store: Store; updates: () => number } {
  let n = 0;
  const wrapped = Object.create(store) as Store;
  wrapped.update = (...args: Parameters<Store['update']>) => {
    n++;
    return store.update(...args);
  };
  return { store: wrapped, updates: () => n };
}

describe('stored counters (dynalite)', () => {
  let stops: (() => Promise<void>)[] = [];
  const context = async (env: Record<string, string>) => {
    const embedded = await createEmbeddedContext(loadConfig({ LOG_LEVEL: 'SILENT', ...env }), {});
    stops.push(embedded.stop);
    const counted = countingUpdates(embedded.ctx.store);
    const ctx: AppContext = { ...embedded.ctx, store: counted.store };
    return { ctx, updates: counted.updates };
  };
  const original = process.stdout.write;
  afterEach(() => {
    process.stdout.write = original;
  });
  afterAll(async () => {
    for (const stop of stops) await stop();
    stops = [];
  });

  it('writes one small ADD per event when the flush interval is 0, summed across instances', async () => {
    const a = await context({ METRICS_FLUSH_SECONDS: '0' });
    // A second "instance" of the API over the same table: a context of its own, the same store.
    const b = { ...a.ctx, config: { ...a.ctx.config } } as AppContext;
    await countHttpRequest(a.ctx, 'GET', '/api/nodes/{nodeId}', 200, 12);
    await countHttpRequest(b, 'GET', '/api/nodes/{nodeId}', 200, 8);
    await countHttpRequest(b, 'GET', '/api/nodes/{nodeId}', 404, 1);
    expect(a.updates()).toBe(3);
    const item = await a.ctx.store.get<Record<string, unknown> & { pk: string; sk: string }>(
      observabilityKeys.pk,
      observabilityKeys.http('GET', '/api/nodes/{nodeId}'),
    );
    expect(item).toMatchObject({ s200: 2, s404: 1, ms: 21 });
    // Small: a counter item stays far below one write unit (1 KB).
    expect(JSON.stringify(item).length).toBeLessThan(200);
  });

  it('buffers per process by default (10 s): one write per item per interval, a read flushes first', async () => {
    const { ctx, updates } = await context({});
    for (let i = 0; i < 50; i++) await countHttpRequest(ctx, 'POST', '/agent/heartbeat', 200, 2);
    // The first event of the process flushes (no flush yet); the next 49 wait for the interval.
    expect(updates()).toBe(1);
    const counters = await readCounters(ctx);
    expect(updates()).toBe(2);
    await flushCounters(ctx); // nothing left: no write
    expect(updates()).toBe(2);
    expect(counters.http.find((r) => r.route === '/agent/heartbeat')?.byStatus.get(200)).toBe(50);
  });

  it('renders placements, task and command histograms and problems in the Prometheus text', async () => {
    const { ctx } = await context({});
    await countPlacement(ctx, 'placed');
    await countPlacement(ctx, 'placed');
    await countPlacement(ctx, 'lost');
    await countTaskFinished(ctx, 'completed', 0.3);
    await countTaskFinished(ctx, 'completed', 7);
    await countTaskFinished(ctx, 'failed', 400);
    await countCommandResult(ctx, 'container.stop', 'failed', 1.5);
    const { body } = await renderMetrics(ctx);
    expect(body).toContain('fleet_placements_total{outcome="placed"} 2');
    expect(body).toContain('fleet_placements_total{outcome="lost"} 1');
    expect(body).toContain('fleet_task_duration_seconds_bucket{outcome="completed",le="0.25"} 0');
    expect(body).toContain('fleet_task_duration_seconds_bucket{outcome="completed",le="0.5"} 1');
    expect(body).toContain('fleet_task_duration_seconds_bucket{outcome="completed",le="10"} 2');
    expect(body).toContain('fleet_task_duration_seconds_bucket{outcome="failed",le="300"} 0');
    expect(body).toContain('fleet_task_duration_seconds_bucket{outcome="failed",le="+Inf"} 1');
    expect(body).toContain('fleet_task_duration_seconds_count{outcome="completed"} 2');
    expect(body).toContain('fleet_task_duration_seconds_sum{outcome="completed"} 7.3');
    expect(body).toContain('fleet_commands_total{type="container.stop",status="failed"} 1');
    expect(body).toContain('fleet_command_duration_seconds_count{type="container.stop"} 1');
    expect(body).toContain('# TYPE fleet_problems gauge');
  });

  it('writes the counters as CloudWatch EMF on the flush where EMF is on, with no API call', async () => {
    const { ctx } = await context({
      METRICS_EMF: 'true',
      SERVICE_NAME: 'emf-test',
      METRICS_FLUSH_SECONDS: '0',
    });
    const lines: string[] = [];
    process.stdout.write = ((chunk: string | Uint8Array) => {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      return true;
    }) as typeof process.stdout.write;
    await countHttpRequest(ctx, 'GET', '/metrics', 503, 5);
    await countCommandResult(ctx, 'container.start', 'succeeded', 2);
    process.stdout.write = original;
    const docs = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((d) => '_aws' in d);
    expect(docs).toHaveLength(2);
    const [http, command] = docs as Record<string, unknown>[];
    const directive = (
      http!['_aws'] as {
        CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[];
      }
    ).CloudWatchMetrics[0]!;
    expect(directive.Namespace).toBe('GpuFleet');
    expect(directive.Dimensions).toEqual([['service']]);
    expect(directive.Metrics.map((m) => m.Name).sort()).toEqual(['Http5xx', 'HttpRequests']);
    expect(http).toMatchObject({ service: 'emf-test', HttpRequests: 1, Http5xx: 1 });
    expect(command).toMatchObject({ CommandLatency: 2, CommandsSucceeded: 1 });
  });
});
