import { describe, expect, it } from 'vitest';
import {
  baseUrlOf,
  installCommand,
  installScript,
  pinnedNode,
  shQuote,
} from '../../../functions/system/install.js';

describe('install helpers', () => {
  it('the base URL is the one the caller reached, https behind API Gateway or a proxy', () => {
    expect(baseUrlOf({ host: '127.0.0.1:8000' })).toBe('http://127.0.0.1:8000');
    expect(baseUrlOf({ host: 'abc.execute-api.eu-west-1.amazonaws.com', 'x-forwarded-proto': 'https' })).toBe(
      'https://abc.execute-api.eu-west-1.amazonaws.com',
    );
    expect(
      baseUrlOf({
        host: 'internal:80',
        'x-forwarded-host': 'fleet.example.com',
        'x-forwarded-proto': 'https, http',
      }),
    ).toBe('https://fleet.example.com');
    expect(baseUrlOf({ host: 'h', 'x-forwarded-proto': 'gopher' })).toBe('http://h');
  });

  it('the pasted line quotes what it carries for sh', () => {
    expect(shQuote("it's")).toBe(`'it'\\''s'`);
    expect(installCommand('https://f.example', 'FLEETJT-1-abc')).toBe(
      "curl -fsSL https://f.example/install.sh | sudo sh -s -- --token 'FLEETJT-1-abc'",
    );
    expect(installCommand('https://f.example', 'FLEETJT-1-abc', 'gpu-01')).toBe(
      "curl -fsSL https://f.example/install.sh | sudo sh -s -- --token 'FLEETJT-1-abc' --name 'gpu-01'",
    );
  });

  it('the script gets the URL as its default, never a URL that could end its quote', async () => {
    const served = await installScript('https://fleet.example.com:8443', undefined);
    expect(served).toContain("FLEET_URL_DEFAULT='https://fleet.example.com:8443'");
    const hostile = await installScript("http://x';reboot;'", undefined);
    expect(hostile).toContain("FLEET_URL_DEFAULT='@FLEET_URL@'");
    expect(hostile).not.toContain('reboot');
  });

  it("the script gets the pinned node package's version, for a mirror download where no runtime is served", async () => {
    const { version } = pinnedNode()!;
    expect(version).toMatch(/^\d+\.\d+\.\d+$/);
    const served = await installScript('https://fleet.example.com', undefined);
    expect(served).toContain(`NODE_VERSION_DEFAULT='${version}'`);
    expect(served).not.toContain('@NODE_VERSION@');
  });
});
