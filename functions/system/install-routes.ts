import { readFile } from 'node:fs/promises';
import * as z from 'zod';
import { NotFoundError } from '../core/errors.js';
import { rawReply } from '../core/http.js';
import { route, type AnyRoute } from '../core/route.js';
import {
  agentBundle,
  agentImage,
  agentSsh2,
  assetsDir,
  baseUrlOf,
  INSTALL_ARCHES,
  type InstallArch,
  installScript,
  nodeArchive,
} from './install.js';

/** How long a redirect to an install file stays valid: a slow link still gets the runtime. */
const INSTALL_URL_SECONDS = 900;

const common = { tags: ['Install'], errorStyle: 'fastapi' as const, scope: 'public' as const };
const INSTALL_FILES = [
  'agent.mjs',
  'agent-ssh2.cjs',
  ...INSTALL_ARCHES.map((a) => `node-${a}.tar.gz` as const),
  ...INSTALL_ARCHES.map((a) => `agent-image-${a}.tar` as const),
] as [string, ...string[]];

/** The one-line node install: the script and what it downloads (public: none of it is secret). */
export function installRoutes(): AnyRoute[] {
  return [
    route({
      ...common,
      method: 'GET',
      path: '/install.sh',
      summary:
        'The node installer: `curl -fsSL <url>/install.sh | sudo sh -s -- --token <join token> [--name <node>]` (flags: --token, --name, --url, --cluster, --labels, --uninstall)',
      produces: 'text/x-shellscript',
      handler: async (req, ctx) =>
        rawReply(
          200,
          await installScript(baseUrlOf(req.headers), ctx.config.INSTALL_ASSETS_DIR),
          'text/x-shellscript; charset=utf-8',
          { 'cache-control': 'no-store' },
        ),
    }),
    route({
      ...common,
      method: 'GET',
      path: '/install/{file}',
      summary:
        "What install.sh downloads: agent.mjs and agent-ssh2.cjs (npm run build:agent), node-<arch>.tar.gz (the pinned `node` package's runtime), agent-image-<arch>.tar (npm run build:agent-image); arch is x86_64 or aarch64",
      params: z.object({ file: z.enum(INSTALL_FILES) }),
      produces: ['text/javascript', 'application/gzip', 'application/x-tar'],
      responses: {
        302: 'On AWS: a presigned S3 URL of the file, valid 15 minutes',
        404: 'That file is not on this control plane (not built, or no runtime for that architecture)',
      },
      handler: async (req, ctx) => {
        const name = req.params.file;
        // On AWS the files are objects (a runtime or an image is far past Lambda's 6 MB answer):
        // a short-lived presigned redirect, which curl -L and wget follow.
        if (ctx.installFiles) {
          const location = await ctx.installFiles.downloadUrl(name, INSTALL_URL_SECONDS);
          if (!location) throw new NotFoundError(`${name} is not among this control plane's install files`);
          return rawReply(302, '', 'text/plain; charset=utf-8', { location, 'cache-control': 'no-store' });
        }
        const dir = assetsDir(ctx.config.INSTALL_ASSETS_DIR);
        if (name === 'agent.mjs' || name === 'agent-ssh2.cjs') {
          const file = await (name === 'agent.mjs' ? agentBundle : agentSsh2)(dir);
          if (!file) throw new NotFoundError('The agent bundle is not built here: run npm run build:agent');
          return rawReply(200, await readFile(file), 'text/javascript; charset=utf-8', {
            'cache-control': 'no-store',
          });
        }
        const [, kind, arch] = /^(node|agent-image)-(x86_64|aarch64)\./.exec(name)! as unknown as [
          string,
          string,
          InstallArch,
        ];
        if (kind === 'node') {
          const file = await nodeArchive(dir, arch);
          if (!file)
            throw new NotFoundError(
              `No Node.js runtime for ${arch} here: put node-${arch}.tar.gz (npm pack of the pinned node-linux-* package) in the install assets folder`,
            );
          return rawReply(200, await readFile(file), 'application/gzip');
        }
        const file = await agentImage(dir, arch);
        if (!file)
          throw new NotFoundError(
            `The agent image for ${arch} is not built here: run npm run build:agent-image`,
          );
        return rawReply(200, await readFile(file), 'application/x-tar');
      },
    }),
  ];
}
