import * as z from 'zod';

/**
 * Onboarding a host over SSH (host.install): an online agent on the host's network connects with
 * a vault credential it fetches for the command, checks the host, runs the agent installer there
 * (install.sh) with a one-use join token, and reports each step. Schemas only, shared by both sides.
 */

/**
 * The steps, in order; a failed install names the one that failed. A login that can be root runs
 * the agent installer (`install`); one that cannot gets the agent copied to its home (`upload`,
 * `start`).
 */
export const INSTALL_STEPS = ['connect', 'check', 'install', 'upload', 'start', 'register'] as const;
export type InstallStep = (typeof INSTALL_STEPS)[number];

/** Node names and host names the installer puts into remote paths and commands. */
export const INSTALL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export const installStepReport = z.object({
  name: z.enum(INSTALL_STEPS),
  status: z.enum(['running', 'ok', 'failed']),
  /** What was found or done, or why it failed; never a secret. */
  detail: z.string().max(2000).default(''),
  at: z.string(),
});
export type InstallStepReport = z.infer<typeof installStepReport>;

/** What the host check found. */
export const hostFacts = z.object({
  arch: z.string(),
  os: z.string(),
  hostname: z.string(),
  /** `docker` or `podman` with the socket the agent will use; null when none is reachable. */
  engine: z.string().nullable(),
  /** `root`, `passwordless`, `password` (sudo asks for one), or `absent`. */
  sudo: z.enum(['root', 'passwordless', 'password', 'absent']),
});
export type HostFacts = z.infer<typeof hostFacts>;

/** A host.install's `output`: the install ran (joined or failed at a step); `failed` commands never reached the host. */
export const hostInstallOutput = z.object({
  outcome: z.enum(['joined', 'failed']),
  failedStep: z.enum(INSTALL_STEPS).optional(),
  reason: z.string().optional(),
  steps: z.array(installStepReport),
  facts: hostFacts.optional(),
  /** OpenSSH form (`ssh-ed25519 AAAA...`) of the key the host presented. */
  hostKey: z.string().optional(),
  nodeId: z.string().optional(),
  nodeName: z.string().optional(),
});
export type HostInstallOutput = z.infer<typeof hostInstallOutput>;

/** POST /agent/install/{commandId}/credential: what the agent logs in and joins with; sent once per call, never stored by the agent. */
export const installCredential = z.object({
  username: z.string(),
  password: z.string(),
  /** One-use join token for the new node. */
  joinToken: z.string(),
});
export type InstallCredential = z.infer<typeof installCredential>;

/** POST /agent/install/{commandId}/steps: the steps so far (replaces the job's list). */
export const installStepsRequest = z.object({ steps: z.array(installStepReport).max(20) });
