import { afterAll, beforeAll, expect, it } from 'vitest';
import { resetApiKeyCache } from '../../../functions/core/http.js';
import { ORIGIN_HEADER, resetOriginSecretCache } from '../../../functions/core/origin.js';
import { startRuntime, type Runtime } from '../../../local/runtime.js';
import { awsEndpoint, deploymentNames, describeWithMoto, uniqueName } from '../../harness/services.js';

/**
 * Behind the WAF (`-c apiWaf=true`), CloudFront sends every API request `x-fleet-origin` holding a
 * Secrets Manager secret, and the HTTP functions refuse requests without it, so the execute-api URL
 * cannot go round the web ACL. Here the whole HTTP pipeline against moto, reading the secret as the
 * deployed functions do: through Parameter Store's `/aws/reference/secretsmanager/<name>`.
 */
const BOOTSTRAP = 'origin-bootstrap-key-0123456789';
const SECRET = `origin-${'s3cr3t'.repeat(6)}`;

/** Secrets Manager's JSON API on moto (no Secrets Manager client in the project; moto reads the target). */
async function secretsManager(target: string, body: unknown): Promise<void> {
  const res = await fetch(`${awsEndpoint()}/`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': `secretsmanager.${target}`,
      authorization: `AWS4-HMAC-SHA256 Credential=test/20260101/${process.env.AWS_REGION ?? 'us-east-1'}/secretsmanager/aws4_request, SignedHeaders=host, Signature=0`,
    },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`secretsmanager.${target}: ${res.status} ${await res.text()}`);
}

describeWithMoto('the origin secret CloudFront adds (ORIGIN_SECRET_PARAMETER)', () => {
  const id = uniqueName('origin');
  const secretName = `${id}/origin-secret`;
  let rt: Runtime;

  beforeAll(async () => {
    await secretsManager('CreateSecret', { Name: secretName, SecretString: SECRET });
    resetOriginSecretCache();
    rt = await startRuntime({
      port: 0,
      env: {
        AWS_ENDPOINT_URL: awsEndpoint(),
        AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
        AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'test',
        AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'test',
        ...deploymentNames(id),
        API_AUTH: 'true',
        LOG_LEVEL: 'SILENT',
        ORIGIN_SECRET_PARAMETER: `/aws/reference/secretsmanager/${secretName}`,
      },
    });
    await rt.ctx.secrets.put('api-key', BOOTSTRAP);
    resetApiKeyCache();
  });
  afterAll(async () => {
    await rt?.stop();
    resetOriginSecretCache();
    await secretsManager('DeleteSecret', { SecretId: secretName, ForceDeleteWithoutRecovery: true });
  });

  const call = async (path: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${rt.url}${path}`, { headers });
    const text = await res.text();
    return { status: res.status, text, body: JSON.parse(text) as Record<string, unknown> };
  };

  it('refuses a request without the header, or with another value, in the route document shape, naming no secret', async () => {
    const tries: Record<string, string>[] = [
      {},
      { [ORIGIN_HEADER]: 'guess' },
      { [ORIGIN_HEADER]: `${SECRET}x` },
    ];
    for (const headers of tries) {
      const health = await call('/health', headers);
      expect(health.status).toBe(403);
      expect(health.body.detail).toMatch(/served through its CloudFront URL/);
      expect(health.text).not.toContain(SECRET);
      // A valid API key does not stand in for the origin secret.
      const nodes = await call('/api/nodes', { ...headers, authorization: `Bearer ${BOOTSTRAP}` });
      expect(nodes.status).toBe(403);
    }
    // The Novita document's shape on its paths.
    const novita = await call('/api/instances');
    expect(novita.status).toBe(403);
    expect(novita.body).toMatchObject({ error: { code: 'FORBIDDEN' } });
  });

  it('lets a request with the secret through to the usual checks', async () => {
    expect((await call('/health', { [ORIGIN_HEADER]: SECRET })).status).toBe(200);
    // The API key is still required where the route's role asks for it.
    expect((await call('/api/nodes', { [ORIGIN_HEADER]: SECRET })).status).toBe(401);
    const nodes = await call('/api/nodes', { [ORIGIN_HEADER]: SECRET, authorization: `Bearer ${BOOTSTRAP}` });
    expect(nodes.status).toBe(200);
  });

  it("gives the distribution's URL in the join command and install.sh (the host CloudFront forwards)", async () => {
    // What the distribution's viewer-request function and API Gateway add (lib/console.ts).
    const front = {
      [ORIGIN_HEADER]: SECRET,
      'x-forwarded-host': 'd1234.cloudfront.net',
      'x-forwarded-proto': 'https',
    };
    const token = await call('/api/swarm/join-token?name=gpu-7', {
      ...front,
      authorization: `Bearer ${BOOTSTRAP}`,
    });
    expect(token.status).toBe(200);
    expect(token.body.install_command).toMatch(
      /^curl -fsSL https:\/\/d1234\.cloudfront\.net\/install\.sh \| sudo sh -s -- --token '[^']+' --name 'gpu-7'$/,
    );
    const script = await fetch(`${rt.url}/install.sh`, { headers: front });
    expect(script.status).toBe(200);
    expect(await script.text()).toContain("FLEET_URL_DEFAULT='https://d1234.cloudfront.net'");
  });
});
