import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';

/**
 * A token issuer for tests: key pairs made here with node's crypto, their public halves as a
 * JWKS, and tokens signed as an OIDC provider (Cognito, an SSO) would sign them.
 */
export interface TestKey {
  kid: string;
  alg: 'RS256' | 'ES256';
  privateKey: KeyObject;
  publicJwk: Record<string, unknown>;
}

export function testKey(kid: string, alg: TestKey['alg'] = 'RS256'): TestKey {
  const { privateKey, publicKey } =
    alg === 'RS256'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    kid,
    alg,
    privateKey,
    publicJwk: { ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' },
  };
}

export const jwks = (...keys: TestKey[]) => ({ keys: keys.map((k) => k.publicJwk) });

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A compact JWS of `claims`, signed by `key` (header overrides allow forged variants). */
export function signJwt(
  key: TestKey,
  claims: Record<string, unknown>,
  header: Record<string, unknown> = {},
): string {
  const head = b64({ alg: key.alg, typ: 'JWT', kid: key.kid, ...header });
  const body = b64(claims);
  const input = Buffer.from(`${head}.${body}`);
  const signature =
    key.alg === 'RS256'
      ? sign('sha256', input, key.privateKey)
      : sign('sha256', input, { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  return `${head}.${body}.${signature.toString('base64url')}`;
}
