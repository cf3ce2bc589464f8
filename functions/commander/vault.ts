import { randomUUID } from 'node:crypto';
import * as z from 'zod';
import type { AppContext } from '../core/context.js';
import { NotFoundError } from '../core/errors.js';
import { reply } from '../core/http.js';
import { fleetClusterKeys } from '../core/keys.js';
import { route, type AnyRoute, type RouteSpec } from '../core/route.js';
import { ConditionFailedError, queryAll, type StoreItem, deleteIf } from '../ports/store.js';

/**
 * Fleet Commander's Vault: named node credentials. The password lives only in the Secrets port
 * (SSM SecureString on AWS, the owner-only secrets file embedded) as `vault/<id>`; the table
 * holds the name, username and id, and no response or log carries the password.
 */
export interface CredentialItem extends StoreItem {
  credId: string;
  name: string;
  username: string;
  createdAt: string;
  updatedAt: string;
}

export const secretName = (credId: string) => `vault/${credId}`;

const credentialBody = z
  .object({
    name: z
      .string()
      .min(1)
      .max(64)
      .regex(
        /^[A-Za-z0-9][A-Za-z0-9_.-]*$/,
        'letters, digits, ".", "_" and "-", starting with a letter or digit',
      ),
    username: z.string().min(1).max(256),
    password: z.string().min(1).max(4096),
  })
  .strict();

const credentialOut = z.object({
  id: z.string(),
  name: z.string(),
  username: z.string(),
  created_at: z.string(),
});

const view = (c: CredentialItem) => ({
  id: c.credId,
  name: c.name,
  username: c.username,
  created_at: c.createdAt,
});

/**
 * Saves by name: a new name creates a credential (201), a known one replaces its username and
 * password (200). The secret is written before the item, so a listed credential always has one.
 */
export async function saveCredential(
  ctx: AppContext,
  body: z.output<typeof credentialBody>,
): Promise<{ item: CredentialItem; created: boolean }> {
  const k = fleetClusterKeys.credential(body.name);
  const now = new Date(ctx.now()).toISOString();
  for (let attempt = 0; ; attempt++) {
    const existing = await ctx.store.get<CredentialItem>(k.pk, k.sk);
    if (existing) {
      await ctx.secrets.put(secretName(existing.credId), body.password);
      try {
        const item = await ctx.store.update<CredentialItem>(
          k.pk,
          k.sk,
          { set: { username: body.username, updatedAt: now } },
          { equals: { credId: existing.credId } },
        );
        return { item, created: false };
      } catch (error) {
        if (!(error instanceof ConditionFailedError) || attempt >= 2) throw error;
        continue; // deleted and saved again meanwhile: start over with the new id
      }
    }
    const credId = randomUUID();
    await ctx.secrets.put(secretName(credId), body.password);
    const item: CredentialItem = {
      ...k,
      ...fleetClusterKeys.credentialsIndex(credId),
      credId,
      name: body.name,
      username: body.username,
      createdAt: now,
      updatedAt: now,
      version: 1,
    };
    try {
      await ctx.store.put(item, { notExists: true });
      return { item, created: true };
    } catch (error) {
      // Another save of this name won: drop our unused secret and update theirs instead.
      await ctx.secrets.delete(secretName(credId)).catch(() => undefined);
      if (!(error instanceof ConditionFailedError) || attempt >= 2) throw error;
    }
  }
}

export async function findCredentialById(ctx: AppContext, credId: string): Promise<CredentialItem | undefined> {
  const page = await ctx.store.query<CredentialItem>(fleetClusterKeys.credentialsPk, {
    index: 'gsi1',
    between: [credId, credId],
    limit: 1,
  });
  return page.items[0];
}

/** The secret first, then the item: a crash between leaves a listed credential a retry deletes. */
export async function deleteCredential(ctx: AppContext, credId: string): Promise<CredentialItem> {
  const found = await findCredentialById(ctx, credId);
  if (!found) throw new NotFoundError(`Credential ${credId} not found`);
  await ctx.secrets.delete(secretName(found.credId));
  await deleteIf(ctx.store, found.pk, found.sk, { equals: { credId } });
  return found;
}

const common: Pick<RouteSpec, 'tags' | 'errorStyle' | 'scope' | 'role'> = {
  tags: ['Vault'],
  errorStyle: 'fastapi',
  scope: 'user',
  role: 'admin',
};

export function vaultRoutes(): AnyRoute[] {
  return [
    route({
      ...common,
      method: 'GET',
      path: '/api/vault/',
      summary: 'List credentials (never their passwords)',
      response: z.array(credentialOut),
      handler: async (_req, ctx) => {
        const items = await queryAll<CredentialItem>(ctx.store, fleetClusterKeys.credentialsPk, {
          index: 'gsi1',
        });
        return items.sort((a, b) => a.name.localeCompare(b.name)).map(view);
      },
    }),
    route({
      ...common,
      method: 'POST',
      path: '/api/vault/',
      summary: 'Save a credential by name: 201 when new, 200 when it replaces one',
      body: credentialBody,
      response: credentialOut,
      successStatus: 201,
      responses: { 200: { description: 'Replaced the credential of that name', schema: credentialOut } },
      handler: async (req, ctx) => {
        const { item, created } = await saveCredential(ctx, req.body);
        return reply(created ? 201 : 200, view(item));
      },
    }),
    route({
      ...common,
      method: 'DELETE',
      path: '/api/vault/{cred_id}',
      summary: 'Delete a credential and its password',
      params: z.object({ cred_id: z.string().min(1) }),
      response: z.object({ status: z.literal('deleted'), id: z.string(), name: z.string() }),
      responses: { 404: 'Unknown credential' },
      handler: async (req, ctx) => {
        const c = await deleteCredential(ctx, req.params.cred_id);
        return { status: 'deleted' as const, id: c.credId, name: c.name };
      },
    }),
  ];
}
