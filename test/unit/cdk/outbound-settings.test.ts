import { App, Stack } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { readSettings } from '../../../lib/settings.js';

/** registryUrl and outboundAllowlist are checked at synth as the functions check them at start. */
const settings = (context: Record<string, unknown>) => readSettings(new Stack(new App({ context }), 'S'));

describe('registryUrl and outboundAllowlist settings', () => {
  it('refuses a registry at a special address the allowlist does not name, naming both settings', () => {
    expect(() => settings({ registryUrl: 'http://10.0.0.5:5000' })).toThrow(
      "context registryUrl / outboundAllowlist / jwt* (the functions' REGISTRY_URL, OUTBOUND_ALLOWLIST, JWT_*): REGISTRY_URL: http://10.0.0.5:5000 is refused: 10.0.0.5 is a private address (OUTBOUND_ALLOWLIST may name it)",
    );
    expect(() => settings({ registryUrl: 'http://169.254.169.254' })).toThrow(/cloud metadata/);
    expect(() => settings({ registryUrl: 'registry.example.com' })).toThrow(/REGISTRY_URL/);
    expect(() => settings({ outboundAllowlist: '10.0.0.0/40' })).toThrow(/OUTBOUND_ALLOWLIST/);
    // The JWT issuer's keys, fetched by the functions, likewise.
    expect(() =>
      settings({ jwtIssuer: 'https://issuer.example.com', jwtJwksUrl: 'https://10.0.0.9/jwks.json' }),
    ).toThrow(/JWT_JWKS_URL: https:\/\/10\.0\.0\.9\/jwks\.json is refused: .*private address/);
  });

  it('takes a registry the allowlist names, or a public one, and leaves both unset by default', () => {
    expect(settings({ registryUrl: 'http://10.0.0.5:5000', outboundAllowlist: '10.0.0.0/8' })).toMatchObject({
      registryUrl: 'http://10.0.0.5:5000',
      outboundAllowlist: '10.0.0.0/8',
    });
    expect(settings({ registryUrl: 'https://registry.example.com' }).registryUrl).toBe(
      'https://registry.example.com',
    );
    const none = settings({});
    expect(none.registryUrl).toBeUndefined();
    expect(none.outboundAllowlist).toBeUndefined();
  });
});
