import { createHash } from 'node:crypto';
import type { Client, ClientChannel, SFTPWrapper } from 'ssh2';
import type { InstallCredential } from '../protocol/install.js';

/**
 * The SSH session host.install runs on: connect with the stored host key (trust on first use),
 * exec with stdin, and SFTP file transfers, each as a promise. Every ssh2 'error' is listened to:
 * a stray one would otherwise take the whole agent down.
 */

/** Where to connect, and the host key stored for it (none: trusted on first use). */
export interface SshTarget {
  host: string;
  port: number;
  hostKey?: string;
}

/** A connection or login that failed, with a reason a person can act on. */
export class SshConnectError extends Error {
  override name = 'SshConnectError';
}

/** `ssh-ed25519 AAAA...` from the raw key blob the server presented. */
export function openSshKey(blob: Buffer): string {
  const len = blob.length >= 4 ? blob.readUInt32BE(0) : 0;
  const type =
    len > 0 && len < 64 && blob.length >= 4 + len
      ? blob.subarray(4, 4 + len).toString('ascii')
      : 'ssh-unknown';
  return `${type} ${blob.toString('base64')}`;
}

/** OpenSSH's `SHA256:...` fingerprint of a key in OpenSSH form. */
export function fingerprint(openSsh: string): string {
  const b64 = openSsh.split(' ')[1] ?? '';
  return `SHA256:${createHash('sha256').update(Buffer.from(b64, 'base64')).digest('base64').replace(/=+$/, '')}`;
}

export interface Exec {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `command`; `onLine` sees each complete line of its stderr as it comes (progress). */
export function exec(
  conn: Client,
  command: string,
  stdin?: string,
  onLine?: (line: string) => void,
): Promise<Exec> {
  return new Promise((res, rej) => {
    conn.exec(command, (err, ch: ClientChannel) => {
      if (err) return rej(err);
      let stdout = '';
      let stderr = '';
      let seen = 0;
      ch.on('error', rej);
      ch.on('data', (d: Buffer) => (stdout += d.toString()));
      ch.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const end = stderr.lastIndexOf('\n');
        if (!onLine || end < seen) return;
        for (const line of stderr.slice(seen, end).split('\n')) onLine(line);
        seen = end + 1;
      });
      ch.on('close', (code: number | null) => res({ code, stdout, stderr }));
      if (stdin !== undefined) ch.end(stdin);
      else ch.end();
    });
  });
}

// Failures come back through the callbacks; a stray 'error' event must not end the agent.
export const sftpOf = (conn: Client) =>
  new Promise<SFTPWrapper>((res, rej) =>
    conn.sftp((err, s) => (err ? rej(err) : res(s.on('error', () => undefined)))),
  );

export const fastPut = (sftp: SFTPWrapper, local: string, remote: string) =>
  new Promise<void>((res, rej) =>
    sftp.fastPut(local, remote, { mode: 0o755 }, (err) => (err ? rej(err) : res())),
  );

export const writeRemote = (sftp: SFTPWrapper, remote: string, data: string, mode: number) =>
  new Promise<void>((res, rej) => sftp.writeFile(remote, data, { mode }, (err) => (err ? rej(err) : res())));

export const rename = (sftp: SFTPWrapper, from: string, to: string) =>
  new Promise<void>((res, rej) => sftp.ext_openssh_rename(from, to, (err) => (err ? rej(err) : res())));

export const readRemote = (sftp: SFTPWrapper, remote: string) =>
  new Promise<string | null>((res) =>
    sftp.readFile(remote, (err, data) => res(err ? null : data.toString('utf8'))),
  );

/** Reasons a person can act on, for the errors a connection and login give. */
function connectReason(
  error: Error & { level?: string; code?: string },
  target: string,
  user: string,
): string {
  if (error.level === 'client-authentication')
    return `authentication failed for user ${user} on ${target}: wrong username or password`;
  if (error.level === 'client-timeout') return `timed out connecting to ${target}`;
  switch (error.code) {
    case 'ECONNREFUSED':
      return `connection refused by ${target}: is SSH running there?`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `${target} is unreachable from this node`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `${target}: the name does not resolve`;
    case 'ETIMEDOUT':
      return `timed out connecting to ${target}`;
  }
  return `could not connect to ${target}: ${error.message}`;
}

type Ssh2 = typeof import('ssh2');

/**
 * ssh2 loads on the first session, not at start: only host.install needs it. In the agent bundle
 * it is a file of its own beside agent.mjs (agent-ssh2.cjs, agent/build.ts), so the idle agent's
 * heap does not hold its source either. A CommonJS module's namespace holds it as `default`.
 */
export async function loadSsh2(): Promise<Ssh2> {
  try {
    const m = (await import('ssh2')) as Ssh2 & { default?: Ssh2 };
    return m.default ?? m;
  } catch (error) {
    if ((error as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw error;
    throw new Error(
      'SSH is not installed with this agent: agent-ssh2.cjs must be beside agent.mjs (npm run build:agent writes both; install.sh installs both)',
      { cause: error },
    );
  }
}

/** Opens the session, refusing a host key other than the stored one. */
export async function connect(
  command: SshTarget,
  cred: InstallCredential,
  timeoutMs: number,
): Promise<{ conn: Client; hostKey: string }> {
  const target = `${command.host}:${command.port}`;
  const { Client } = await loadSsh2();
  return new Promise((res, rej) => {
    const conn = new Client();
    let presented: string | undefined;
    let changed = false;
    let settled = false;
    conn.once('ready', () => {
      settled = true;
      res({ conn, hostKey: presented! });
    });
    // A connection the host closes before SSH is up may end with no 'error' at all.
    conn.once('close', () => {
      if (settled) return;
      settled = true;
      rej(new SshConnectError(`${target} closed the connection before SSH was ready`));
    });
    // `on`, not `once`: ssh2 may emit a second error (lost before handshake, a session dropped
    // later), and an error without a listener would take the whole agent down.
    conn.on('error', (error: Error & { level?: string; code?: string }) => {
      if (settled) return;
      settled = true;
      conn.end();
      if (changed && presented && command.hostKey) {
        rej(
          new SshConnectError(
            `host key changed: ${target} presented ${fingerprint(presented)}, but ${fingerprint(command.hostKey)} is stored for it; refused (remove the stored key with DELETE /api/install-queue/host-keys/${command.host}?port=${command.port} if the change is expected)`,
          ),
        );
      } else rej(new SshConnectError(connectReason(error, target, cred.username)));
    });
    conn.connect({
      host: command.host,
      port: command.port,
      username: cred.username,
      password: cred.password,
      tryKeyboard: false,
      readyTimeout: timeoutMs,
      hostVerifier: (key: Buffer) => {
        presented = openSshKey(key);
        if (!command.hostKey) return true;
        changed = presented.split(' ')[1] !== command.hostKey.split(' ')[1];
        return !changed;
      },
    });
  });
}
