/**
 * A real OpenSSH server (Debian's openssh-server) for the onboarding suites: started by the suite
 * itself on a loopback address of its own, port 22, with its own host key, plus a throwaway login.
 * Needs root (sshd with password logins and no PAM, useradd); under CI=true a missing sshd or
 * root is a failure, not a skip.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { inCi, type ServiceStatus } from './services.js';

const run = promisify(execFile);
export const SSHD = '/usr/sbin/sshd';

export function requireSshd(): ServiceStatus {
  const why = !existsSync(SSHD)
    ? `${SSHD} is missing (apt-get install openssh-server)`
    : process.getuid?.() !== 0
      ? 'not root: sshd with password logins and useradd need root'
      : '';
  if (!why) return { available: true, reason: '' };
  if (inCi) throw new Error(`CI=true and ${why}. CI must run these suites, not skip them.`);
  return { available: false, reason: why };
}

/** A loopback address of this run's own in 127.0.0.0/8 (all of it is local on Linux), and one beside it where nothing listens. */
export function loopbackPair(): { address: string; silent: string } {
  const b = 100 + Math.floor(Math.random() * 150);
  const c = 1 + Math.floor(Math.random() * 250);
  return { address: `127.${b}.${c}.10`, silent: `127.${b}.${c}.11` };
}

export class Sshd {
  private child: ChildProcess | undefined;
  private dir = '';
  readonly stderr: string[] = [];

  constructor(
    readonly address: string,
    readonly port = 22,
  ) {}

  get hostKeyPath(): string {
    return join(this.dir, 'host_key');
  }

  async start(): Promise<void> {
    this.dir ||= await mkdtemp(join(tmpdir(), 'fleet-sshd-'));
    if (!existsSync(this.hostKeyPath)) await this.newHostKey();
    const config = join(this.dir, 'sshd_config');
    await writeFile(
      config,
      [
        `ListenAddress ${this.address}`,
        `Port ${this.port}`,
        `HostKey ${this.hostKeyPath}`,
        `PidFile ${join(this.dir, 'sshd.pid')}`,
        'PasswordAuthentication yes',
        'KbdInteractiveAuthentication no',
        'PubkeyAuthentication no',
        'UsePAM no',
        'StrictModes no',
        'PermitRootLogin no',
        'Subsystem sftp internal-sftp',
        'LogLevel VERBOSE',
        '',
      ].join('\n'),
    );
    await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
    const child = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      let buffer = '';
      child.stderr!.on('data', (d: Buffer) => {
        buffer += d.toString();
        const lines = buffer.split('\n');
        buffer = lines.pop() ?? '';
        for (const line of lines) {
          this.stderr.push(line);
          if (this.stderr.length > 200) this.stderr.shift();
          if (line.includes('Server listening on')) resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`sshd exited (${code}):\n${this.stderr.join('\n')}`)));
    });
  }

  /** A different host key (the host was reinstalled, or someone is in the middle). */
  async newHostKey(): Promise<void> {
    await rm(this.hostKeyPath, { force: true });
    await rm(`${this.hostKeyPath}.pub`, { force: true });
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', this.hostKeyPath]);
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
  }

  async remove(): Promise<void> {
    await this.stop();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }
}

/** A login on this machine, removed with its home by `remove`. */
export class TestUser {
  constructor(
    readonly name: string,
    public password: string,
  ) {}

  get home(): string {
    return `/home/${this.name}`;
  }

  async create(): Promise<void> {
    await run('useradd', ['-m', '-s', '/bin/sh', this.name]);
    await this.setPassword(this.password);
  }

  async setPassword(password: string): Promise<void> {
    const child = spawn('chpasswd', [], { stdio: ['pipe', 'ignore', 'pipe'] });
    child.stdin!.end(`${this.name}:${password}\n`);
    const [code] = (await once(child, 'exit')) as [number];
    if (code !== 0) throw new Error(`chpasswd exited ${code}`);
    this.password = password;
  }

  async remove(): Promise<void> {
    await run('userdel', ['-r', '-f', this.name]).catch(() => undefined);
  }
}
