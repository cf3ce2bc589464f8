/**
 * dynalite (the embedded table) writes an item's index entries before the item itself, in separate
 * LevelDB writes. Here its own write actions are run on the data folder with the item's write
 * never completing, which is what a SIGKILL of `npm start` between the two leaves behind: a copy
 * only the index shows, an update only the index shows, a delete the item outlived. The next start
 * after such a crash finds every index in step with the table again; a start after a clean stop
 * has nothing to repair.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { marshall } from '@aws-sdk/util-dynamodb';
import { afterAll, describe, expect, it } from 'vitest';
import type { StoreItem } from '../../../functions/ports/store.js';
import { startRuntime } from '../../../local/runtime.js';
import { call, ScriptedAgent } from '../../harness/scripted-agent.js';

const env = { ...process.env, LOG_LEVEL: 'SILENT', AWS_ENDPOINT_URL: undefined, COMMAND_WAIT_MS: '5000' };
const TABLE = process.env.TABLE_NAME ?? 'fleet';

interface Attr {
  S?: string;
  N?: string;
  [k: string]: unknown;
}
type RawItem = Record<string, Attr>;
type Callback = (error?: Error | null, value?: unknown) => void;
interface SubDb {
  put(key: string, value: unknown, cb: Callback): void;
  del(key: string, cb: Callback): void;
}
interface DynaliteStore {
  getItemDb(table: string): SubDb;
  db: { close(): Promise<void> };
}

/** dynalite's own store and write actions, on the folder while no runtime has it open. */
function dynaliteInternals() {
  const require = createRequire(import.meta.url);
  const root = dirname(require.resolve('dynalite/package.json'));
  return {
    db: require(join(root, 'db')) as { create(o: { path: string }): DynaliteStore },
    putItem: require(join(root, 'actions/putItem')) as (s: DynaliteStore, d: unknown, cb: Callback) => void,
    deleteItem: require(join(root, 'actions/deleteItem')) as (
      s: DynaliteStore,
      d: unknown,
      cb: Callback,
    ) => void,
  };
}

/** Runs writes on the folder's table with every item write (not the index writes) stalled forever. */
async function tornWrites(
  dbPath: string,
  writes: (torn: {
    put(item: RawItem): Promise<void>;
    del(pk: string, sk: string): Promise<void>;
  }) => Promise<void>,
) {
  const { db, putItem, deleteItem } = dynaliteInternals();
  const store = db.create({ path: dbPath });
  const items = store.getItemDb(TABLE);
  const indexesDone = new Set<() => void>();
  // The item's own write is the last step: called means the index writes are done.
  items.put = (_k, _v, _cb) => indexesDone.forEach((f) => f());
  items.del = (_k, _cb) => indexesDone.forEach((f) => f());
  const torn = (run: (cb: Callback) => void) =>
    new Promise<void>((resolve, reject) => {
      const done = () => {
        indexesDone.delete(done);
        resolve();
      };
      indexesDone.add(done);
      run((error) => (error ? reject(error) : undefined));
    });
  await writes({
    put: (item) => torn((cb) => putItem(store, { TableName: TABLE, Item: item }, cb)),
    del: (pk, sk) =>
      torn((cb) => deleteItem(store, { TableName: TABLE, Key: { pk: { S: pk }, sk: { S: sk } } }, cb)),
  });
  await store.db.close();
}

describe('index entries torn from their items by a kill are repaired at the next start (embedded)', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('a copy only the index shows, an update only the index shows, a delete the item outlived: all back in step', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'torn-writes-'));
    dirs.push(dir);
    // Prepare: a running copy and its service, written normally
    let rt = await startRuntime({ port: 0, dataDir: dir, env });
    const agent = new ScriptedAgent(rt.url, 'torn');
    await agent.register();
    agent.start(200);
    const started = await call(rt.url, 'POST', '/containers/torn:1/start', { count: 1 });
    expect(started.status).toBe(200);
    const [copy] = started.body.started as string[];
    await agent.stop();
    const instance = await rt.ctx.store.get<StoreItem>(`INSTANCE#${copy}`, 'META');
    const service = await rt.ctx.store.get<StoreItem>('SERVICE#torn:1', 'META');
    expect(instance?.status).toBe('running');
    expect(service).toBeDefined();
    await rt.stop();

    // Act: three writes cut between the index and the item, then a start after that "crash"
    const raw = (item: Record<string, unknown>) => marshall(item, { removeUndefinedValues: true }) as RawItem;
    await tornWrites(join(dir, 'db'), async (torn) => {
      await torn.put(raw({ ...instance!, status: 'exited' }));
      await torn.put(
        raw({
          ...instance!,
          pk: 'INSTANCE#phantom00000',
          instanceId: 'phantom00000',
          gsi1sk: 'phantom00000',
          gsi2sk: 'phantom00000',
          status: 'pending',
        }),
      );
      await torn.del(String(service!.pk), String(service!.sk));
    });
    const seen = async (url: string) => ({
      instances: (
        (await call(url, 'GET', '/containers/torn:1/instances')).body.instances as {
          id: string;
          status: string;
        }[]
      )
        .map((i) => `${i.id} ${i.status}`)
        .sort(),
      images: ((await call(url, 'GET', '/images')).body.images as { image: string }[]).map((i) => i.image),
    });
    // Without the repair (a start that does not know of the crash), the indexes show the torn writes.
    rt = await startRuntime({ port: 0, dataDir: dir, env });
    expect(await seen(rt.url)).toEqual({
      instances: [`${copy} exited`, 'phantom00000 created'].sort(),
      images: [],
    });
    await rt.stop();
    // As a killed process leaves it: its marker still there.
    await writeFile(join(dir, 'db.open'), '1\n');
    rt = await startRuntime({ port: 0, dataDir: dir, env });

    // Assess: the table's word everywhere
    expect(await seen(rt.url)).toEqual({ instances: [`${copy} running`], images: ['torn:1'] });
    expect(await rt.ctx.store.get(`INSTANCE#${copy}`, 'META')).toEqual(instance);
    expect(await rt.ctx.store.get('INSTANCE#phantom00000', 'META')).toBeUndefined();
    await rt.stop();
  });
});
