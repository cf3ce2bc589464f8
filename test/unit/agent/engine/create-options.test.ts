import type Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import { LABELS } from '../../../../protocol/messages.js';
import { containerSpec, type ContainerSpec } from '../../../../protocol/commands.js';
import {
  buildCreateOptions,
  createOptionsFromInspect,
  portsFromInspect,
  type CreateContext,
} from '../../../../agent/engine/create-options.js';
import { DiskLimitUnsupportedError, GpuUnsupportedError } from '../../../../agent/engine/errors.js';

const spec = (overrides: Partial<ContainerSpec> = {}): ContainerSpec =>
  containerSpec.parse({
    instanceId: 'inst-1',
    imageId: 'localhost/fleet-test:busybox',
    name: 'svc-1',
    kind: 'service',
    ...overrides,
  });

const ctx: CreateContext = {
  nodeName: 'node-a',
  gpuMode: 'device-requests',
  diskLimit: { supported: false, reason: 'the engine reports storage driver overlay on extfs' },
  commandId: 'cmd-1',
};

describe('buildCreateOptions', () => {
  it('maps CPU and memory limits to engine units', () => {
    const o = buildCreateOptions(spec({ cpuLimit: 1.5, memoryLimitMb: 512 }), ctx);
    expect(o.HostConfig?.NanoCpus).toBe(1_500_000_000);
    expect(o.HostConfig?.Memory).toBe(512 * 1024 * 1024);
  });

  it('leaves limits unset when the spec has none (no accidental 0 = unlimited/invalid)', () => {
    const o = buildCreateOptions(spec(), ctx);
    expect(o.HostConfig).not.toHaveProperty('NanoCpus');
    expect(o.HostConfig).not.toHaveProperty('Memory');
    expect(o.HostConfig).not.toHaveProperty('DeviceRequests');
    expect(o.HostConfig).not.toHaveProperty('StorageOpt');
  });

  it("maps gpus 'all' and a count to nvidia DeviceRequests", () => {
    expect(buildCreateOptions(spec({ gpus: 'all' }), ctx).HostConfig?.DeviceRequests).toEqual([
      { Driver: 'nvidia', Count: -1, Capabilities: [['gpu']], Options: {} },
    ]);
    expect(buildCreateOptions(spec({ gpus: 2 }), ctx).HostConfig?.DeviceRequests?.[0]?.Count).toBe(2);
    expect(buildCreateOptions(spec({ gpus: 0 }), ctx).HostConfig).not.toHaveProperty('DeviceRequests');
  });

  it('uses the nvidia runtime instead on a Jetson', () => {
    const o = buildCreateOptions(spec({ gpus: 'all' }), { ...ctx, gpuMode: 'nvidia-runtime' });
    expect(o.HostConfig?.Runtime).toBe('nvidia');
    expect(o.HostConfig).not.toHaveProperty('DeviceRequests');
  });

  it('refuses GPUs when the engine has no GPU runtime', () => {
    expect(() => buildCreateOptions(spec({ gpus: 1 }), { ...ctx, gpuMode: 'none' })).toThrow(
      GpuUnsupportedError,
    );
  });

  it('binds ports to loopback unless the start names an address, host port 0 letting the engine pick', () => {
    const o = buildCreateOptions(
      spec({
        ports: [
          { containerPort: 8080, hostPort: 0, protocol: 'tcp' },
          { containerPort: 53, hostPort: 5353, protocol: 'udp', hostIp: '0.0.0.0' },
        ],
      }),
      ctx,
    );
    expect(o.ExposedPorts).toEqual({ '8080/tcp': {}, '53/udp': {} });
    expect(o.HostConfig?.PortBindings).toEqual({
      '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: '0' }],
      '53/udp': [{ HostIp: '0.0.0.0', HostPort: '5353' }],
    });
  });

  it('sets every agent label, and the spec cannot override them', () => {
    const o = buildCreateOptions(
      spec({ kind: 'run', labels: { team: 'ml', [LABELS.node]: 'spoofed', [LABELS.managed]: 'false' } }),
      ctx,
    );
    expect(o.Labels).toEqual({
      team: 'ml',
      [LABELS.managed]: 'true',
      [LABELS.node]: 'node-a',
      [LABELS.instance]: 'inst-1',
      [LABELS.image]: 'localhost/fleet-test:busybox',
      [LABELS.kind]: 'run',
      [LABELS.command]: 'cmd-1',
      [LABELS.run]: 'inst-1',
    });
  });

  it('maps env, volumes, command, restart policy and name', () => {
    const o = buildCreateOptions(
      spec({
        env: { A: '1', B: 'x=y' },
        volumes: [
          { hostPath: '/data', containerPath: '/data', readOnly: false },
          { hostPath: '/models', containerPath: '/models', readOnly: true },
        ],
        command: ['sleep', '60'],
        restart: 'on-failure',
      }),
      { ...ctx, model: 'llama' },
    );
    expect(o.name).toBe('svc-1');
    expect(o.Image).toBe('localhost/fleet-test:busybox');
    expect(o.Env).toEqual(['A=1', 'B=x=y']);
    expect(o.Cmd).toEqual(['sleep', '60']);
    expect(o.HostConfig?.Binds).toEqual(['/data:/data', '/models:/models:ro']);
    expect(o.HostConfig?.RestartPolicy).toEqual({ Name: 'on-failure', MaximumRetryCount: 0 });
    expect(o.Labels?.[LABELS.model]).toBe('llama');
  });
});

describe('disk limit', () => {
  it('fails with an explicit error when the engine cannot enforce it, instead of dropping it', () => {
    let error: unknown;
    try {
      buildCreateOptions(spec({ diskLimitGb: 20 }), ctx);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DiskLimitUnsupportedError);
    expect((error as Error).message).toMatch(/diskLimitGb=20 cannot be enforced/);
    expect((error as Error).message).toMatch(/overlay on extfs/);
    expect((error as Error).message).toMatch(/refusing to start/);
  });

  it('passes StorageOpt size when the engine reports a capable storage setup', () => {
    const o = buildCreateOptions(spec({ diskLimitGb: 20 }), {
      ...ctx,
      diskLimit: { supported: true, reason: 'xfs' },
    });
    expect(o.HostConfig?.StorageOpt).toEqual({ size: '20G' });
  });

  it('an update that changes the disk limit fails the same way', () => {
    const info = inspectInfo();
    expect(() =>
      createOptionsFromInspect(
        info,
        { diskLimitGb: 5 },
        { diskLimit: { supported: false, reason: 'overlay on extfs' } },
      ),
    ).toThrow(DiskLimitUnsupportedError);
  });
});

function inspectInfo(): Docker.ContainerInspectInfo {
  return {
    Id: 'abc',
    Name: '/svc-1',
    Image: 'sha256:1',
    State: {
      Status: 'running',
      Running: true,
      ExitCode: 0,
      StartedAt: '2026-01-01T00:00:00Z',
      FinishedAt: '0001-01-01T00:00:00Z',
    },
    Config: {
      Image: 'localhost/fleet-test:busybox',
      Cmd: ['sleep', '60'],
      Entrypoint: [],
      Env: ['A=1', 'HOSTNAME=abc', 'container=podman', 'PATH=/bin'],
      Labels: { [LABELS.managed]: 'true', [LABELS.instance]: 'inst-1', [LABELS.command]: 'cmd-1' },
      ExposedPorts: { '8080/tcp': {} },
      Tty: false,
      WorkingDir: '',
      User: '',
    },
    HostConfig: {
      NanoCpus: 500_000_000,
      Memory: 64 * 1024 * 1024,
      PortBindings: { '8080/tcp': [{ HostIp: '', HostPort: '0' }] },
      RestartPolicy: { Name: 'always', MaximumRetryCount: 0 },
      Binds: ['/data:/data:ro'],
    },
    NetworkSettings: {
      Ports: {
        '8080/tcp': [
          { HostIp: '0.0.0.0', HostPort: '41234' },
          { HostIp: '::', HostPort: '41234' },
        ],
      },
    },
  } as unknown as Docker.ContainerInspectInfo;
}

describe('createOptionsFromInspect (recreate fallback)', () => {
  it('keeps name, labels, command, binds, restart and the bound host port; applies new limits', () => {
    const o = createOptionsFromInspect(
      inspectInfo(),
      { memoryLimitMb: 128 },
      { diskLimit: { supported: false, reason: '' }, commandId: 'cmd-2' },
    );
    expect(o.name).toBe('svc-1');
    expect(o.Image).toBe('localhost/fleet-test:busybox');
    expect(o.Cmd).toEqual(['sleep', '60']);
    expect(o).not.toHaveProperty('Entrypoint');
    expect(o.Env).toEqual(['A=1', 'PATH=/bin']);
    expect(o.Labels).toEqual({
      [LABELS.managed]: 'true',
      [LABELS.instance]: 'inst-1',
      [LABELS.command]: 'cmd-2',
    });
    expect(o.HostConfig?.Memory).toBe(128 * 1024 * 1024);
    expect(o.HostConfig?.NanoCpus).toBe(500_000_000);
    expect(o.HostConfig?.Binds).toEqual(['/data:/data:ro']);
    expect(o.HostConfig?.RestartPolicy).toEqual({ Name: 'always', MaximumRetryCount: 0 });
    expect(o.HostConfig?.PortBindings).toEqual({ '8080/tcp': [{ HostIp: '', HostPort: '41234' }] });
  });

  it('reads host ports, folding IPv4/IPv6 duplicates', () => {
    expect(portsFromInspect(inspectInfo())).toEqual([
      { containerPort: 8080, hostPort: 41234, protocol: 'tcp' },
    ]);
  });
});
