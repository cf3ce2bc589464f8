/**
 * The address index (keys.ts `nodeAddressKeys`): a node's addresses and, for a Jetson, its name
 * entries, written at registration (an address it no longer reports is dropped) and removed with
 * the node. The Network API, the install queue and GET /api/nodes/jetpack ask it "is a node (a
 * Jetson) at this address", "which nodes are in this subnet", "the first online Jetson by name"
 * (`JETSONSUP`, written where a Jetson's liveness changes) and read the liveness of the few nodes it
 * names, never the fleet. Nodes registered before the index get
 * their entries from `ensureIndexed`, a bounded page of the node index a call until done.
 */
import type { AppContext } from '../core/context.js';
import { fleetKeys, nodeAddressKeys } from '../core/keys.js';
import { deleteIf, type StoreItem } from '../ports/store.js';
import { ipv4ToNumber, type Cidr } from '../../protocol/network.js';
import { SHARDS, liveKey, type LiveRecord } from './node-records.js';
import { getNode, isOnline, type NodeItem } from './node-model.js';

/** What the index keeps of a node. */
export type IndexedNode = Pick<NodeItem, 'nodeId' | 'nodeName' | 'addresses'> & {
  hostname?: string | undefined;
  jetson?: unknown;
};

export interface AddressEntry extends StoreItem {
  nodeId: string;
  nodeName: string;
  address: string;
}

/** Addresses indexed per node (the agent reports its external ones; a longer list is not a LAN host's). */
const MAX_ADDRESSES = 16;
/** An address longer than this is no address: not indexed. */
const MAX_ADDRESS_LENGTH = 100;

const hex8 = (n: number) => n.toString(16).padStart(8, '0');

/** An address's partition and sortable form: IPv4 by its /16 and as hex; anything else lowercased. */
function placeOf(address: string): { partition: string; sortable: string } {
  const n = ipv4ToNumber(address);
  if (n === undefined) return { partition: 'other', sortable: address.toLowerCase() };
  return { partition: `${n >>> 24}.${(n >>> 16) & 255}`, sortable: hex8(n) };
}

/** `J` before a Jetson's id, `N` before another's: one Limit-1 query answers "a Jetson at this address". */
const kindOf = (node: { jetson?: unknown }) => (node.jetson ? 'J' : 'N');

/** The short, lowercased form of a host name (`agx0.local` → `agx0`), as scans report them. */
export const shortName = (host: string) => host.toLowerCase().split('.')[0]!;

/** The entries registration leaves for a node. */
export function addressEntries(node: IndexedNode): StoreItem[] {
  const addresses = [...new Set(node.addresses ?? [])]
    .filter((a) => a.length > 0 && a.length <= MAX_ADDRESS_LENGTH)
    .slice(0, MAX_ADDRESSES);
  const out: StoreItem[] = addresses.map((address) => {
    const { partition, sortable } = placeOf(address);
    return {
      ...nodeAddressKeys.address(partition, `${sortable}#${kindOf(node)}`, node.nodeId),
      nodeId: node.nodeId,
      nodeName: node.nodeName,
      address,
    } satisfies AddressEntry;
  });
  if (node.jetson) {
    out.push({ ...nodeAddressKeys.jetson(node.nodeName), nodeId: node.nodeId });
    const names = new Set([shortName(node.nodeName), shortName(node.hostname ?? '')]);
    for (const short of names)
      if (short && short.length <= MAX_ADDRESS_LENGTH)
        out.push({ ...nodeAddressKeys.jetsonName(short, node.nodeId), nodeId: node.nodeId });
  }
  return out;
}

const keyOf = (i: StoreItem) => `${i.pk}\n${i.sk}`;

/** Writes a node's entries and drops those of `before` it no longer has (an address it stopped reporting). */
export async function indexNode(ctx: AppContext, node: IndexedNode, before?: IndexedNode): Promise<void> {
  const now = addressEntries(node);
  const keep = new Set(now.map(keyOf));
  const stale = before ? addressEntries(before).filter((e) => !keep.has(keyOf(e))) : [];
  await Promise.all([...now.map((e) => ctx.store.put(e)), ...stale.map((e) => ctx.store.delete(e.pk, e.sk))]);
}

/** Removes a node's entries (the node is being deleted). */
export async function unindexNode(ctx: AppContext, node: IndexedNode): Promise<void> {
  await Promise.all([
    ...addressEntries(node).map((e) => ctx.store.delete(e.pk, e.sk)),
    ...(node.jetson ? [clearJetsonUp(ctx, node)] : []),
  ]);
}

/** A Jetson came online (registration, a heartbeat after silence): jetpack finds it by name. */
export async function markJetsonUp(
  ctx: AppContext,
  node: Pick<NodeItem, 'nodeId' | 'nodeName'>,
): Promise<void> {
  await ctx.store.put({ ...nodeAddressKeys.jetsonUp(node.nodeName), nodeId: node.nodeId });
}

/** A Jetson went offline or away; only its own entry goes (a new node may hold the name). */
export async function clearJetsonUp(
  ctx: AppContext,
  node: Pick<NodeItem, 'nodeId' | 'nodeName'>,
): Promise<void> {
  const k = nodeAddressKeys.jetsonUp(node.nodeName);
  await deleteIf(ctx.store, k.pk, k.sk, { equals: { nodeId: node.nodeId } });
}

/** Whether any node (`jetson`: any Jetson) has this address: one Limit-1 query. */
export async function nodeAt(ctx: AppContext, address: string, jetson = false): Promise<boolean> {
  const { partition, sortable } = placeOf(address);
  const { items } = await ctx.store.query(nodeAddressKeys.addressPk(partition), {
    prefix: `${sortable}#${jetson ? 'J#' : ''}`,
    limit: 1,
  });
  return items.length > 0;
}

/** Whether a Jetson's node name or host name has this short form: one Limit-1 query. */
export async function jetsonNamed(ctx: AppContext, host: string): Promise<boolean> {
  const short = shortName(host);
  if (!short || short.length > MAX_ADDRESS_LENGTH) return false;
  const { items } = await ctx.store.query(nodeAddressKeys.jetsonNamePk(short), { limit: 1 });
  return items.length > 0;
}

/** Most entries (and liveness checks) a pick reads from each source before it looks at the next. */
export const PICK_READS = 32;

/** Online now, from the node's liveness record alone (a node from before the split: its assembled record). */
async function onlineNow(ctx: AppContext, nodeId: string, now: number): Promise<boolean> {
  const k = liveKey(nodeId);
  const live = await ctx.store.get<LiveRecord>(k.pk, k.sk);
  if (live) return isOnline(live, ctx, now);
  const node = await getNode(ctx, nodeId);
  return !!node && isOnline(node, ctx, now);
}

/**
 * An online node that `accept`s: first one with an address in `subnet` (by address, from the
 * address index), else one from the eligible-node index (online and not cordoned, shard by shard).
 * Reads at most PICK_READS entries and liveness records from each, whatever the fleet's size.
 */
export async function pickOnlineNode(
  ctx: AppContext,
  options: { subnet?: Cidr | undefined; accept?: (node: NodeItem) => boolean },
): Promise<NodeItem | undefined> {
  const now = ctx.now();
  const seen = new Set<string>();
  const tryIds = async (ids: string[]): Promise<NodeItem | undefined> => {
    for (const id of ids) {
      if (seen.has(id)) continue;
      seen.add(id);
      if (!(await onlineNow(ctx, id, now))) continue;
      const node = await getNode(ctx, id);
      if (node && isOnline(node, ctx, now) && (options.accept?.(node) ?? true)) return node;
    }
    return undefined;
  };
  // A subnet of a /16 or less is one range of one partition (a scan's is a /22 at most).
  if (options.subnet && options.subnet.prefix >= 16) {
    const s = options.subnet;
    const { partition } = placeOf(s.cidr.split('/')[0]!);
    const { items } = await ctx.store.query<AddressEntry>(nodeAddressKeys.addressPk(partition), {
      between: [hex8(s.base), `${hex8(s.base + s.size - 1)}#\uffff`],
      limit: PICK_READS,
    });
    const found = await tryIds(items.map((e) => e.nodeId));
    if (found) return found;
  }
  let left = PICK_READS;
  for (const shard of SHARDS) {
    if (left <= 0) break;
    const { items } = await ctx.store.query<StoreItem & { nodeId: string }>(fleetKeys.nodeUpPk(shard), {
      limit: Math.min(8, left),
    });
    left -= items.length;
    const found = await tryIds(items.map((e) => e.nodeId));
    if (found) return found;
  }
  return undefined;
}

/** Jetson entries read a page at a time, and most Jetsons whose liveness is checked from each index. */
const JETSON_PAGE = 16;
export const JETSON_CHECKS = 64;

/** Each entry's node, online and still a Jetson of that name, up to JETSON_CHECKS of the partition. */
async function* jetsonEntries(
  ctx: AppContext,
  pk: string,
): AsyncGenerator<{ entry: StoreItem & { nodeId: string }; online: NodeItem | undefined }> {
  const now = ctx.now();
  let checked = 0;
  let cursor: string | undefined;
  do {
    const page = await ctx.store.query<StoreItem & { nodeId: string }>(pk, {
      limit: Math.min(JETSON_PAGE, JETSON_CHECKS - checked),
      ...(cursor !== undefined ? { cursor } : {}),
    });
    for (const entry of page.items) {
      checked++;
      const node = (await onlineNow(ctx, entry.nodeId, now)) ? await getNode(ctx, entry.nodeId) : undefined;
      const online =
        node?.jetson && node.nodeName === entry.sk && isOnline(node, ctx, now) ? node : undefined;
      yield { entry, online };
    }
    cursor = page.cursor;
  } while (cursor !== undefined && checked < JETSON_CHECKS);
}

/**
 * The first online Jetson by name, from the online-Jetson entries (`JETSONSUP`): an entry whose
 * node is offline, gone or renamed (a lost write) is dropped as read, so offline Jetsons cost
 * nothing here. None there (no Jetson online, or Jetsons online since before those entries): the
 * first JETSON_CHECKS Jetsons by name, an online one getting its entry, else the first Jetson.
 */
export async function firstJetson(ctx: AppContext): Promise<NodeItem | undefined> {
  for await (const { entry, online } of jetsonEntries(ctx, nodeAddressKeys.jetsonsUpPk)) {
    if (online) return online;
    await deleteIf(ctx.store, entry.pk, entry.sk, { equals: { nodeId: entry.nodeId } });
  }
  const seen: string[] = [];
  for await (const { entry, online } of jetsonEntries(ctx, nodeAddressKeys.jetsonsPk)) {
    if (online) {
      await markJetsonUp(ctx, online);
      return online;
    }
    seen.push(entry.nodeId);
  }
  // The first whose node is still there (an entry a deletion left behind is skipped).
  for (const id of seen) {
    const node = await getNode(ctx, id);
    if (node?.jetson) return node;
  }
  return undefined;
}

/** Node index entries one call of `ensureIndexed` backfills. */
export const BACKFILL_PAGE = 500;

interface IndexedMarker extends StoreItem {
  done: boolean;
  /** Where the backfill goes on in the node index (gsi1 `NODES`). */
  cursor?: string;
}

/**
 * The upgrade path: nodes registered before the index get their entries here, BACKFILL_PAGE of
 * the node index a call from the marker's cursor until the marker says done (one read a call
 * after that); true once done. Registration writes a node's own entries at once, so an agent that restarts meanwhile
 * is found before its page comes.
 */
export async function ensureIndexed(ctx: AppContext): Promise<boolean> {
  const k = nodeAddressKeys.indexed;
  const marker = await ctx.store.get<IndexedMarker>(k.pk, k.sk);
  if (marker?.done) return true;
  const page = await ctx.store.query<NodeItem>(fleetKeys.nodesPk, {
    index: 'gsi1',
    ascending: true,
    limit: BACKFILL_PAGE,
    ...(marker?.cursor ? { cursor: marker.cursor } : {}),
  });
  for (let i = 0; i < page.items.length; i += 25)
    await Promise.all(page.items.slice(i, i + 25).map((m) => indexNode(ctx, m)));
  await ctx.store.put<IndexedMarker>({
    ...k,
    done: page.cursor === undefined,
    ...(page.cursor !== undefined ? { cursor: page.cursor } : {}),
  });
  return page.cursor === undefined;
}
