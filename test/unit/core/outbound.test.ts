import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../functions/core/config.js';
import {
  checkOutboundUrl,
  OutboundRefusedError,
  parseAllowlist,
  specialRange,
  staticUrlRefusal,
} from '../../../functions/core/outbound.js';

describe('outbound address ranges', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.8.9.10', 'loopback'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.182', 'private'],
    ['fd12:3456::1', 'private (unique local)'],
    ['169.254.169.254', 'cloud metadata'],
    ['::ffff:169.254.169.254', 'cloud metadata'],
    ['fd00:ec2::254', 'cloud metadata'],
    ['169.254.1.1', 'link-local'],
    ['fe80::1', 'link-local'],
    ['224.0.0.251', 'multicast'],
    ['ff02::1', 'multicast'],
    ['0.0.0.0', '"this network"'],
    ['::', 'unspecified'],
    ['100.64.0.1', 'shared (carrier-grade NAT)'],
    ['255.255.255.255', 'reserved'],
  ])('%s is %s', (address, kind) => {
    expect(specialRange(address)).toBe(kind);
  });

  it.each(['8.8.8.8', '1.1.1.1', '172.32.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'])(
    '%s is public',
    (address) => expect(specialRange(address)).toBeUndefined(),
  );
});

describe('OUTBOUND_ALLOWLIST', () => {
  it('takes names, addresses and CIDR ranges; refuses anything else', () => {
    const a = parseAllowlist(' Hooks.LAN , 127.0.0.1, 10.0.0.0/8, [::1], fd00::/8 ');
    expect([...a.names]).toEqual(['hooks.lan']);
    expect(a.ranges.check('127.0.0.1', 'ipv4')).toBe(true);
    expect(a.ranges.check('127.0.0.2', 'ipv4')).toBe(false);
    expect(a.ranges.check('10.200.0.1', 'ipv4')).toBe(true);
    expect(a.ranges.check('::1', 'ipv6')).toBe(true);
    for (const bad of ['10.0.0.0/33', 'a b', 'http://x', '1.2.3.4/8/9', 'host/8'])
      expect(() => parseAllowlist(bad)).toThrow();
    expect(() => loadConfig({ OUTBOUND_ALLOWLIST: '10.0.0.0/40' })).toThrow(/OUTBOUND_ALLOWLIST/);
  });

  it('lets a named range or host through, nothing else', () => {
    expect(staticUrlRefusal('http://127.0.0.1:9/x', '')).toBe(
      '127.0.0.1 is a loopback address (OUTBOUND_ALLOWLIST may name it)',
    );
    expect(staticUrlRefusal('http://127.0.0.1:9/x', '127.0.0.1')).toBeUndefined();
    expect(staticUrlRefusal('http://169.254.169.254/latest/meta-data/', '127.0.0.0/8')).toMatch(
      /cloud metadata/,
    );
    expect(staticUrlRefusal('http://[fd00:ec2::254]/', '127.0.0.1')).toMatch(/cloud metadata/);
    expect(staticUrlRefusal('http://localhost:8080/', '')).toMatch(/loopback name/);
    expect(staticUrlRefusal('http://localhost:8080/', 'localhost')).toBeUndefined();
    expect(staticUrlRefusal('https://hooks.example.com/x', '')).toBeUndefined();
    expect(staticUrlRefusal('ftp://example.com/x', '')).toBe('only http(s) URLs');
  });
});

describe('checks against the resolved address', () => {
  it('refuses a name that resolves to loopback unless the allowlist covers the address or names the host', async () => {
    const refused = await checkOutboundUrl('http://localhost:9/hook', '').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OutboundRefusedError);
    expect((refused as Error).message).toMatch(
      /^localhost resolves to (127\.0\.0\.1|::1) is a loopback address/,
    );
    await expect(checkOutboundUrl('http://localhost:9/hook', '127.0.0.1,::1')).resolves.toBeUndefined();
    await expect(checkOutboundUrl('http://localhost:9/hook', 'localhost')).resolves.toBeUndefined();
    await expect(checkOutboundUrl('http://no-such-host.invalid/', '')).rejects.toThrow('does not resolve');
  });
});

describe('settings', () => {
  it('REGISTRY_URL: refused at start at a special address or localhost unless OUTBOUND_ALLOWLIST names it', () => {
    expect(() => loadConfig({ REGISTRY_URL: 'http://127.0.0.1:5000' })).toThrow(
      'REGISTRY_URL: http://127.0.0.1:5000 is refused: 127.0.0.1 is a loopback address (OUTBOUND_ALLOWLIST may name it)',
    );
    expect(() => loadConfig({ REGISTRY_URL: 'http://10.1.2.3:5000' })).toThrow(
      /REGISTRY_URL: .* 10\.1\.2\.3 is a private address \(OUTBOUND_ALLOWLIST may name it\)/,
    );
    expect(() => loadConfig({ REGISTRY_URL: 'http://localhost:5000' })).toThrow(
      /REGISTRY_URL: .*loopback name/,
    );
    expect(() => loadConfig({ REGISTRY_URL: 'http://169.254.169.254' })).toThrow(
      /REGISTRY_URL: .*cloud metadata/,
    );
    expect(
      loadConfig({ REGISTRY_URL: 'http://127.0.0.1:5000', OUTBOUND_ALLOWLIST: '127.0.0.0/8' }).REGISTRY_URL,
    ).toBe('http://127.0.0.1:5000');
    // A public name is resolved (and checked) per call, not at start.
    expect(loadConfig({ REGISTRY_URL: 'https://registry.example.com' }).REGISTRY_URL).toBe(
      'https://registry.example.com',
    );
  });

  it('TRAINING_WEBHOOK_URLS: receivers at special addresses or localhost need OUTBOUND_ALLOWLIST', () => {
    expect(() => loadConfig({ TRAINING_WEBHOOK_URLS: 'http://127.0.0.1:9/x' })).toThrow(
      /TRAINING_WEBHOOK_URLS: http:\/\/127\.0\.0\.1:9\/x: 127\.0\.0\.1 is a loopback address/,
    );
    expect(() => loadConfig({ TRAINING_WEBHOOK_URLS: 'slack+http://169.254.169.254/x' })).toThrow(
      /cloud metadata/,
    );
    expect(() => loadConfig({ TRAINING_WEBHOOK_URLS: 'http://localhost:9/x' })).toThrow(/loopback name/);
    expect(
      loadConfig({ TRAINING_WEBHOOK_URLS: 'http://127.0.0.1:9/x', OUTBOUND_ALLOWLIST: '127.0.0.1' })
        .TRAINING_WEBHOOK_URLS,
    ).toBe('http://127.0.0.1:9/x');
    expect(
      loadConfig({ TRAINING_WEBHOOK_URLS: 'https://hooks.slack.com/services/T/B/C' }).OUTBOUND_ALLOWLIST,
    ).toBe('');
  });
});
