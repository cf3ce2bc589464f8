import { randomUUID } from 'node:crypto';
import type { AppContext } from '../core/context.js';
import { ConflictError, NotFoundError, UpstreamError } from '../core/errors.js';
import { reply, type Reply } from '../core/http.js';
import { networkKeys } from '../core/keys.js';
import { type StoreItem, updateIf, putIf } from '../ports/store.js';
import { dispatchCommand, waitForCommands, type CommandItem } from '../nodes/commands.js';
import {
  networkScanOutput,
  parseCidr,
  type Cidr,
  type ScannedDevice,
} from '../../protocol/network.js';
import { isOnline, resolveNode, type NodeItem } from '../nodes/nodes.js';
import { ensureIndexed, jetsonNamed, nodeAt, pickOnlineNode } from '../nodes/address-index.js';

/**
 * The Network API's scans. The control plane cannot reach a LAN, so a node's agent probes it
 * (network.scan); the result is kept per subnet and served with in_swarm from the node registry
 * (the address index: a few small reads per device, none of the fleet).
 */

export type ScanStatus = 'scanning' | 'completed' | 'failed';

export interface ScanItem extends StoreItem {
  subnet: string;
  /** The scan in flight or last run; its result is applied only while it is still this one. */
  commandId: string;
  nodeId: string;
  /** Ports probed by the scan in flight or last run. */
  ports: number[];
  status: ScanStatus;
  startedAt: string;
  startedAtMs: number;
  completedAt?: string;
  error?: string;
  devicesFound?: number;
  /** The devices of the last completed scan, kept while a newer one runs or after one fails. */
  devices?: ScannedDevice[];
  scanTime?: string;
  scanTimeMs?: number;
  /** Ports probed for `devices`. */
  devicesPorts?: number[];
}

interface LatestItem extends StoreItem {
  subnet: string;
}

/** A scan with no result this long after it started is reported failed and not joined. */
export const SCAN_STALE_MS = 5 * 60 * 1000;

export interface ScanInput {
  subnet: Cidr;
  /** Sorted, without repeats. */
  ports: number[];
  refresh: boolean;
  node_id?: string | undefined;
}

export interface DeviceView {
  ip: string;
  hostname: string | null;
  mac: string | null;
  vendor: string | null;
  is_jetson: boolean;
  in_swarm: boolean;
  ports: number[];
}

const samePorts = (a: number[] | undefined, b: number[]) =>
  a !== undefined && a.length === b.length && a.every((p, i) => p === b[i]);

const isoSeconds = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

async function getScan(ctx: AppContext, cidr: string): Promise<ScanItem | undefined> {
  const k = networkKeys.scan(cidr);
  return ctx.store.get<ScanItem>(k.pk, k.sk);
}

/** The node asked for (online); else an online node with an address in the subnet (by address); else an online one (address-index.ts). */
async function scanNode(ctx: AppContext, ref: string | undefined, cidr: Cidr): Promise<NodeItem> {
  if (ref !== undefined) {
    const node = await resolveNode(ctx, ref);
    if (!node) throw new NotFoundError(`Node ${ref} not found`);
    if (!isOnline(node, ctx))
      throw new ConflictError(`Node ${node.nodeName} is offline: its agent cannot scan`, 'NODE_OFFLINE');
    return node;
  }
  await ensureIndexed(ctx);
  const node = await pickOnlineNode(ctx, { subnet: cidr });
  if (!node)
    throw new ConflictError('No node is online to scan from: start an agent on that network', 'NO_NODE');
  return node;
}

/** Devices looked up at once. */
const LOOKUPS_AT_ONCE = 16;

/** in_swarm from the address index, and is_jetson also for a device at a Jetson's address or with a Jetson's name. */
async function deviceViews(ctx: AppContext, devices: ScannedDevice[]): Promise<DeviceView[]> {
  await ensureIndexed(ctx);
  const view = async (d: ScannedDevice): Promise<DeviceView> => {
    const inSwarm = await nodeAt(ctx, d.ip);
    const isJetson =
      d.isJetson ||
      (inSwarm && (await nodeAt(ctx, d.ip, true))) ||
      (d.hostname !== null && (await jetsonNamed(ctx, d.hostname)));
    return {
      ip: d.ip,
      hostname: d.hostname,
      mac: d.mac,
      vendor: d.vendor,
      is_jetson: isJetson,
      in_swarm: inSwarm,
      ports: d.ports,
    };
  };
  const out: DeviceView[] = [];
  for (let i = 0; i < devices.length; i += LOOKUPS_AT_ONCE)
    out.push(...(await Promise.all(devices.slice(i, i + LOOKUPS_AT_ONCE).map(view))));
  return out;
}

async function scanView(ctx: AppContext, devices: ScannedDevice[], scanTime: string) {
  return { devices: await deviceViews(ctx, devices), scan_time: scanTime };
}

/** Claims the subnet's item for a new scan (one conditional write) and sends network.scan. */
async function startScan(
  ctx: AppContext,
  input: ScanInput,
  current: ScanItem | undefined,
): Promise<ScanItem> {
  const node = await scanNode(ctx, input.node_id, input.subnet);
  const now = ctx.now();
  const item: ScanItem = {
    ...networkKeys.scan(input.subnet.cidr),
    ...(current?.devices
      ? {
          devices: current.devices,
          scanTime: current.scanTime,
          scanTimeMs: current.scanTimeMs,
          devicesPorts: current.devicesPorts,
        }
      : {}),
    subnet: input.subnet.cidr,
    commandId: randomUUID(),
    nodeId: node.nodeId,
    ports: input.ports,
    status: 'scanning',
    startedAt: isoSeconds(now),
    startedAtMs: now,
  };
  if (
    !(await putIf(
      ctx.store,
      item,
      current ? { equals: { commandId: current.commandId } } : { notExists: true },
    ))
  ) {
    // Another call started one a moment ago: follow it instead of scanning twice.
    const winner = await getScan(ctx, input.subnet.cidr);
    if (winner?.status === 'scanning' && samePorts(winner.ports, input.ports)) return winner;
    throw new ConflictError(
      `Another scan of ${input.subnet.cidr} started at the same moment: try again`,
      'SCAN_RACE',
    );
  }
  await ctx.store.put<LatestItem>({ ...networkKeys.latest(), subnet: input.subnet.cidr });
  try {
    await dispatchCommand(
      ctx,
      node.nodeId,
      { type: 'network.scan', subnet: input.subnet.cidr, ports: input.ports },
      { commandId: item.commandId },
    );
  } catch (error) {
    await markFailed(ctx, item, `could not send the scan to node ${node.nodeName}`);
    throw error;
  }
  return item;
}

async function markFailed(ctx: AppContext, item: ScanItem, reason: string): Promise<void> {
  await updateIf(
    ctx.store,
    item.pk,
    item.sk,
    { set: { status: 'failed', error: reason, completedAt: isoSeconds(ctx.now()) } },
    { equals: { commandId: item.commandId } },
  );
}

/**
 * GET /api/network/scan: the stored scan while fresh (unless refresh), else a scan by a node's
 * agent, waited for like the orchestrator's calls (202 past COMMAND_WAIT_MS).
 */
export async function scanSubnet(ctx: AppContext, input: ScanInput) {
  const current = await getScan(ctx, input.subnet.cidr);
  const now = ctx.now();
  let scan: ScanItem;
  if (
    !input.refresh &&
    current?.devices &&
    current.scanTime &&
    samePorts(current.devicesPorts, input.ports) &&
    now - (current.scanTimeMs ?? 0) < ctx.config.NETWORK_SCAN_CACHE_SECONDS * 1000
  ) {
    return scanView(ctx, current.devices, current.scanTime);
  } else if (
    !input.refresh &&
    current?.status === 'scanning' &&
    samePorts(current.ports, input.ports) &&
    now - current.startedAtMs < SCAN_STALE_MS
  ) {
    scan = current;
  } else {
    scan = await startScan(ctx, input, current);
  }

  const waited = await waitForCommands(ctx, [scan.commandId]);
  const command = waited.done[0];
  if (!command) {
    return reply(202, {
      status: 'scanning',
      command_id: scan.commandId,
      subnet: scan.subnet,
      node_id: scan.nodeId,
      started_at: scan.startedAt,
      follow: 'GET /api/network/scan-status, then GET /api/network/scan (the stored result)',
    }) as Reply;
  }
  // The result route applied it already; again here in case that report is still on its way.
  await applyNetworkScanResult(ctx, command);
  if (command.status !== 'succeeded')
    throw new UpstreamError(
      `The scan of ${scan.subnet} failed on node ${scan.nodeId}: ${command.error ?? 'no reason given'}`,
    );
  const out = networkScanOutput.safeParse(command.output ?? {});
  if (!out.success)
    throw new UpstreamError(`The agent of node ${scan.nodeId} answered an unreadable scan result`);
  return scanView(ctx, out.data.devices, isoSeconds(Date.parse(command.completedAt ?? '') || ctx.now()));
}

/** Command-result hook: stores a network.scan's outcome on its subnet's item while it is still that scan. */
export async function applyNetworkScanResult(ctx: AppContext, command: CommandItem): Promise<void> {
  if (command.command.type !== 'network.scan' || command.status === 'pending') return;
  let cidr: Cidr;
  try {
    cidr = parseCidr(command.command.subnet);
  } catch {
    return;
  }
  const k = networkKeys.scan(cidr.cidr);
  const doneMs = Date.parse(command.completedAt ?? '') || ctx.now();
  const out = command.status === 'succeeded' ? networkScanOutput.safeParse(command.output ?? {}) : undefined;
  const set: Record<string, unknown> = out?.success
    ? {
        status: 'completed',
        completedAt: isoSeconds(doneMs),
        devices: out.data.devices,
        devicesPorts: command.command.ports,
        devicesFound: out.data.devices.length,
        scanTime: isoSeconds(doneMs),
        scanTimeMs: doneMs,
      }
    : {
        status: 'failed',
        completedAt: isoSeconds(doneMs),
        error: out ? 'the agent answered an unreadable scan result' : (command.error ?? 'failed'),
      };
  // A newer scan of the subnet took over: this result is not its.
  await updateIf(
    ctx.store,
    k.pk,
    k.sk,
    { set, ...(out?.success ? { remove: ['error'] } : {}) },
    { equals: { commandId: command.commandId } },
  );
}

/** GET /api/network/scan-status: the latest scan started, of any subnet. */
export async function scanStatus(ctx: AppContext) {
  const idle = {
    status: 'idle' as const,
    subnet: null,
    node_id: null,
    started_at: null,
    completed_at: null,
    devices_found: 0,
    error: null,
  };
  const l = networkKeys.latest();
  const latest = await ctx.store.get<LatestItem>(l.pk, l.sk);
  const scan = latest && (await getScan(ctx, latest.subnet));
  if (!scan) return idle;
  const stale = scan.status === 'scanning' && ctx.now() - scan.startedAtMs >= SCAN_STALE_MS;
  return {
    status: stale ? ('failed' as const) : scan.status,
    subnet: scan.subnet,
    node_id: scan.nodeId,
    started_at: scan.startedAt,
    completed_at: scan.completedAt ?? null,
    devices_found: scan.status === 'completed' ? (scan.devicesFound ?? 0) : 0,
    error: stale
      ? `no result from node ${scan.nodeId} within ${SCAN_STALE_MS / 1000} s`
      : (scan.error ?? null),
  };
}
