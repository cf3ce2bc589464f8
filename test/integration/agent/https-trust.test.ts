/**
 * Whom the installed agent trusts over https (agent/node-flags.ts: --use-openssl-ca): the host's CA
 * store, found where its OpenSSL looks (SSL_CERT_DIR, one file per CA named by its subject's hash,
 * read when a connection needs it), and a control plane's own CA given with NODE_EXTRA_CA_CERTS;
 * not Node.js's bundled roots, which it no longer holds. A child Node.js runs with the agent's flags
 * and environment and calls a local https server through the agent's HTTP client (agent/http.ts).
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_ENV, AGENT_NODE_FLAGS } from '../../../agent/node-flags.js';
import { writeCaStore } from '../../../scripts/agent-image.js';

const run = promisify(execFile);
const HTTP_CLIENT = fileURLToPath(new URL('../../../agent/http.ts', import.meta.url));

let dir: string;
let server: Server;
let url: string;

/** An openssl command in the test's folder; `args` split at spaces. */
const openssl = (args: string) => run('openssl', args.split(' '), { cwd: dir });
const EC = '-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agent-https-'));
  // A CA of its own, and the server's certificate for 127.0.0.1 signed by it.
  await openssl(`req -x509 ${EC} -days 1 -subj /CN=fleet-test-CA -keyout ca.key -out ca.pem`);
  await openssl(`req ${EC} -subj /CN=127.0.0.1 -keyout server.key -out server.csr`);
  await writeFile(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  await openssl(
    'x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile san.ext -out server.pem',
  );
  // The host's store: the CA in a folder of its own, linked by its subject's hash.
  await mkdir(join(dir, 'store'));
  await writeFile(join(dir, 'store', 'fleet-test-ca.pem'), await readFile(join(dir, 'ca.pem')));
  await openssl(`rehash ${join(dir, 'store')}`);
  await mkdir(join(dir, 'empty'));
  await writeFile(
    join(dir, 'call.mts'),
    `import tls from 'node:tls';
import { call } from ${JSON.stringify(HTTP_CLIENT)};
const answer = await call(process.argv[2], { method: 'GET' }).then(
  (a) => String(a.statusCode),
  (e) => String(e.code),
);
console.log(JSON.stringify({ answer, defaultCas: tls.getCACertificates('default').length }));
`,
  );
  server = createServer(
    { key: await readFile(join(dir, 'server.key')), cert: await readFile(join(dir, 'server.pem')) },
    (_req, res) => res.end('{"ok":true}'),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `https://127.0.0.1:${(server.address() as { port: number }).port}/`;
}, 60_000);

afterAll(async () => {
  server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The agent's HTTP client in a Node.js with the agent's flags and environment, and only `env`'s CA settings. */
async function callAsAgent(env: Record<string, string>): Promise<{ answer: string; defaultCas: number }> {
  const { SSL_CERT_DIR: _d, SSL_CERT_FILE: _f, NODE_EXTRA_CA_CERTS: _x, ...inherited } = process.env;
  const { stdout } = await run(
    process.execPath,
    [...AGENT_NODE_FLAGS, '--import', 'tsx', join(dir, 'call.mts'), url],
    { env: { ...inherited, ...AGENT_ENV, SSL_CERT_FILE: join(dir, 'no-bundle.pem'), ...env } },
  );
  return JSON.parse(stdout) as { answer: string; defaultCas: number };
}

describe("the installed agent's https trust: the host's CA store, looked up by hash", () => {
  it("verifies a server whose CA is in the host's store, without Node.js's bundled roots", async () => {
    expect(await callAsAgent({ SSL_CERT_DIR: join(dir, 'store') })).toEqual({ answer: '200', defaultCas: 0 });
  });

  it('verifies a control plane whose own CA is given with NODE_EXTRA_CA_CERTS', async () => {
    expect(
      await callAsAgent({ SSL_CERT_DIR: join(dir, 'empty'), NODE_EXTRA_CA_CERTS: join(dir, 'ca.pem') }),
    ).toEqual({ answer: '200', defaultCas: 1 });
  });

  it('refuses a server whose CA it was not given', async () => {
    expect(await callAsAgent({ SSL_CERT_DIR: join(dir, 'empty') })).toEqual({
      answer: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      defaultCas: 0,
    });
  });

  it("the agent image's store holds Node.js's roots, each linked by its hash", async () => {
    const root = join(dir, 'image-root');
    await writeCaStore(root);
    const files = await readdir(join(root, 'etc/ssl/certs'));
    expect(files.filter((f) => f.endsWith('.pem'))).toHaveLength(rootCertificates.length);
    expect(files.filter((f) => /^[0-9a-f]{8}\.\d+$/.test(f))).toHaveLength(rootCertificates.length);
  });
});
