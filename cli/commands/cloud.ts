import { printJson, table } from '../output.js';
import { positiveInt, program, session } from '../program.js';

// ------------------------------------------------------------------ cloud and onboarding

program
  .command('instances')
  .description('Novita cloud GPU instances the control plane manages')
  .action(async () => {
    const { client, json } = await session();
    const body = await client.get<{ instances?: Record<string, unknown>[] } | Record<string, unknown>[]>(
      '/api/instances',
    );
    if (json) return printJson(body);
    const rows = Array.isArray(body) ? body : (body.instances ?? []);
    // Novita bills its products list's price per GPU hour × GPUs: the cost column is that product.
    const withCost = rows.map((r) => ({
      ...r,
      costPerHour:
        typeof r['pricePerHour'] === 'number' && typeof r['gpuNum'] === 'number'
          ? r['pricePerHour'] * r['gpuNum']
          : null,
    }));
    console.log(
      table(withCost, [
        'id',
        'name',
        'status',
        'region',
        'gpuNum',
        'pricePerHour',
        'costPerHour',
        'spot',
        'createdAt',
      ]),
    );
  });

program
  .command('join-command')
  .description('print the one line that joins a new node to the fleet (issues a join token; admin key)')
  .option('--ttl <seconds>', 'token lifetime (default JOIN_TOKEN_TTL_SECONDS, 24 h)', positiveInt)
  .option('--max-uses <n>', 'nodes the token may register', positiveInt)
  .option('--name <node>', 'the new node’s name (default: its hostname)')
  .action(async (o: { ttl?: number; maxUses?: number; name?: string }) => {
    const { client, json } = await session();
    const q = new URLSearchParams({ role: 'worker' });
    if (o.ttl !== undefined) q.set('ttl_seconds', String(o.ttl));
    if (o.maxUses !== undefined) q.set('max_uses', String(o.maxUses));
    if (o.name !== undefined) q.set('name', o.name);
    const t = await client.get<{
      token: string;
      id: string;
      expires_at: string;
      max_uses: number | null;
      install_command: string;
    }>(`/api/swarm/join-token?${q}`);
    if (json) return printJson(t);
    console.error(`# join token ${t.id}, valid until ${t.expires_at}; run this on the new node:`);
    console.log(t.install_command);
  });
