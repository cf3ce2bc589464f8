import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseLabels } from '../../../agent/config.js';
import { DEFAULT_POLICY } from '../../../agent/policy.js';

const deps = { hostname: () => 'gpu-box-1', homedir: () => '/home/op' };
const run = (argv: string[], env: NodeJS.ProcessEnv = {}, files: Record<string, string> = {}) => {
  const parsed = loadConfig(argv, env, { ...deps, readFile: (p) => files[p] ?? '' });
  if (parsed.kind !== 'run') throw new Error(parsed.kind);
  return parsed.config;
};

describe('loadConfig', () => {
  it('has defaults: local control plane, hostname, ~/.fleet-agent/<name>', () => {
    expect(run([])).toEqual({
      url: 'http://127.0.0.1:8000',
      nodeName: 'gpu-box-1',
      labels: {},
      stateDir: '/home/op/.fleet-agent/gpu-box-1',
      logLevel: 'info',
      logFormat: 'json',
      policy: DEFAULT_POLICY,
    });
  });

  it('takes the log format from the flag, FLEET_LOG_FORMAT or the config file, and refuses others', () => {
    expect(run(['--log-format', 'text']).logFormat).toBe('text');
    expect(run([], { FLEET_LOG_FORMAT: 'text' }).logFormat).toBe('text');
    expect(run(['--config', '/a.json'], {}, { '/a.json': '{"logFormat": "text"}' }).logFormat).toBe('text');
    expect(run(['--log-format', 'json'], { FLEET_LOG_FORMAT: 'text' }).logFormat).toBe('json');
    expect(() => run(['--log-format', 'xml'])).toThrow(/log format "xml" is not one of json, text/);
  });

  it('node policy: off by default, set by flag > env > config file, never widened by anything else', () => {
    expect(DEFAULT_POLICY).toEqual({
      allowHostPaths: ['/var/lib/fleet/checkpoints'],
      allowEngineSocket: false,
      allowPrivileged: false,
      allowHostNetwork: false,
      allowHostPid: false,
      allowCapabilities: [],
    });
    const files = {
      '/etc/agent.json': JSON.stringify({
        policy: { allowHostPaths: ['/data'], allowPrivileged: true, allowCapabilities: ['NET_ADMIN'] },
      }),
    };
    expect(run(['--config', '/etc/agent.json'], {}, files).policy).toEqual({
      ...DEFAULT_POLICY,
      allowHostPaths: ['/data'],
      allowPrivileged: true,
      allowCapabilities: ['NET_ADMIN'],
    });
    const env = { FLEET_ALLOW_HOST_PATHS: '/srv/a, /srv/b/', FLEET_ALLOW_PRIVILEGED: 'false' };
    expect(run(['--config', '/etc/agent.json'], env, files).policy).toMatchObject({
      allowHostPaths: ['/srv/a', '/srv/b'],
      allowPrivileged: false,
    });
    expect(
      run(['--allow-host-paths', '/x', '--allow-engine-socket', '--allow-host-pid'], env, files).policy,
    ).toMatchObject({
      allowHostPaths: ['/x'],
      allowEngineSocket: true,
      allowHostPid: true,
      allowHostNetwork: false,
    });
    expect(() => run([], { FLEET_ALLOW_ENGINE_SOCKET: 'yes please' })).toThrow(ConfigError);
    expect(() => run(['--allow-host-paths', 'relative/dir'])).toThrow(/not absolute/);
    expect(() =>
      run(['--config', '/etc/p.json'], {}, { '/etc/p.json': JSON.stringify({ policy: { allowAll: true } }) }),
    ).toThrow(ConfigError);
  });

  it('flag beats env beats config file', () => {
    const files = {
      '/etc/agent.json': JSON.stringify({
        url: 'http://file:1',
        name: 'from-file',
        labels: { zone: 'a' },
        heartbeat: 30,
        apiKey: 'k',
      }),
    };
    const env = { FLEET_URL: 'http://env:2', FLEET_AGENT_CONFIG: '/etc/agent.json' };
    const c = run(['--url', 'http://flag:3', '--labels', 'gpu=h100,zone=b', '--cluster', 'edge'], env, files);
    expect(c).toMatchObject({
      url: 'http://flag:3',
      nodeName: 'from-file',
      labels: { gpu: 'h100', zone: 'b' },
      cluster: 'edge',
      heartbeatSeconds: 30,
      apiKey: 'k',
    });
    expect(run([], env, files).url).toBe('http://env:2');
  });

  it('reads FLEET_API_KEY from the environment only', () => {
    expect(run([], { FLEET_API_KEY: 'secret' }).apiKey).toBe('secret');
  });

  it('rejects bad input with a message that says what to fix', () => {
    expect(() => run(['--name', 'has space'])).toThrow(/node name "has space" is not valid/);
    expect(() => run(['--heartbeat', '0'])).toThrow(ConfigError);
    expect(() => run(['--url', 'ftp://x'])).toThrow(/not an http\(s\) URL/);
    expect(() => run(['--bogus'])).toThrow(ConfigError);
    expect(() => run(['--config', '/x.json'], {}, { '/x.json': '{"unknown": 1}' })).toThrow(
      /config file \/x.json/,
    );
  });

  it('the driver: container unless process is asked for; anything else is an error', () => {
    expect(run([]).driver).toBeUndefined();
    expect(run(['--driver', 'process']).driver).toBe('process');
    expect(run([], { FLEET_DRIVER: 'process' }).driver).toBe('process');
    expect(run(['--driver', 'container'], { FLEET_DRIVER: 'process' }).driver).toBe('container');
    const files = { '/d.json': JSON.stringify({ driver: 'process' }) };
    expect(run(['--config', '/d.json'], {}, files).driver).toBe('process');
    expect(() => run(['--driver', 'exec'])).toThrow(/driver "exec" is not one of container, process/);
  });

  it('remote execution stays off unless asked for explicitly', () => {
    expect(run([]).allowExec).toBeUndefined();
    expect(run(['--allow-exec']).allowExec).toBe(true);
    expect(run([], { FLEET_ALLOW_EXEC: 'true' }).allowExec).toBe(true);
    expect(run([], { FLEET_ALLOW_EXEC: 'false' }).allowExec).toBeUndefined();
    const files = { '/a.json': JSON.stringify({ allowExec: true }) };
    expect(run(['--config', '/a.json'], {}, files).allowExec).toBe(true);
    // The environment's explicit "false" wins over the file; the flag wins over both.
    expect(run(['--config', '/a.json'], { FLEET_ALLOW_EXEC: '0' }, files).allowExec).toBeUndefined();
    expect(run(['--allow-exec'], { FLEET_ALLOW_EXEC: 'no' }).allowExec).toBe(true);
    // A typo is an error, not a silent on or off.
    expect(() => run([], { FLEET_ALLOW_EXEC: 'ture' })).toThrow(
      /FLEET_ALLOW_EXEC must be true or false, got "ture"/,
    );
  });

  it('help and version', () => {
    expect(loadConfig(['--help'], {}, deps)).toEqual({ kind: 'help' });
    expect(loadConfig(['-v'], {}, deps)).toEqual({ kind: 'version' });
  });

  it('parseLabels keeps "=" inside values and refuses entries without one', () => {
    expect(parseLabels('a=1, b=x=y,')).toEqual({ a: '1', b: 'x=y' });
    expect(() => parseLabels('a')).toThrow(/not key=value/);
  });
});
