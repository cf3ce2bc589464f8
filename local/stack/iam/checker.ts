/**
 * The AWS call checker: every AWS call a function of the synthesized stack makes is checked against
 * that function's own role before the emulator sees it.
 *
 *   const checker = await startAwsCallChecker({ upstream, template, resolve, region, account });
 *   // each function's workers: AWS_ENDPOINT_URL = checker.endpoint, and its own keys:
 *   const { accessKeyId, secretAccessKey } = checker.credentialsFor('FleetFunctionFE311912');
 *   ...
 *   checker.denials()   // what a suite asserts empty; formatDenials() names function, action, resource
 *   await checker.stop();
 *
 * It is an HTTP proxy on 127.0.0.1. The access key id of a request's SigV4 credential names the
 * function; the request is described as IAM sees it (service, action, resource ARNs: requests.ts),
 * and each (action, resource) is evaluated with @cloud-copilot/iam-simulate against the identity
 * policies the template attaches to the function's role (roles.ts) and the resource policy, if the
 * template has one, of the queue, bucket or role it touches. An allowed call is forwarded unchanged
 * to `upstream` (moto); a denied one never reaches it and is answered with the AccessDenied error of
 * its protocol, and recorded. Calls the checker cannot describe, or that come with an unknown key,
 * are denied and recorded the same way: nothing passes unchecked (unless `unknownKeys: 'forward'`
 * says that callers other than functions, such as agents with keys of their own, may pass, each
 * recorded as unchecked). The credentials a checked AssumeRole of a template role vends (the
 * agents' queue credentials) are checked in turn: that role's policies narrowed by the session
 * policy, until they expire.
 *
 * `checkManagementApiCall(functionLogicalId, connectionArn)` checks execute-api:ManageConnections for
 * the WebSocket Management API, which the stack runtime serves itself (build the ARN with
 * `connectionArn()`); `callerOf(headers)` tells which function signed a request it received.
 *
 * What it does not check: SCPs and permission boundaries (none in the template), KMS key policies,
 * condition keys only AWS knows at request time (source IP, VPC endpoint, tags of resources), and
 * the Lambda service's own calls (logs, event source polling); see docs/architecture.md,
 * "Permissions: checked locally".
 */
import { createHash } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttp2Server } from 'node:http2';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { runSimulation } from '@cloud-copilot/iam-simulate';
import { deny, forward, H2_PREFACE, plainHeaders, replay, type Incoming, type Outgoing } from './proxy.js';
import { describeRequest, signingScope, type Authorization, type DescribedRequest } from './requests.js';
import {
  functionIdentities,
  resourcePolicies,
  resourcePolicyFor,
  roleIdentities,
  sessionPrincipal,
  type CfnTemplate,
  type Resolve,
  type RoleIdentity,
} from './roles.js';

export interface AwsCallCheckerOptions {
  /** The emulator the allowed calls go to, e.g. http://127.0.0.1:4566. */
  upstream: string;
  /** The synthesized CloudFormation template (cdk.out/<stack>.template.json, parsed). */
  template: CfnTemplate;
  /** Resolves the template's intrinsics to the emulator's concrete names and ARNs. */
  resolve: Resolve;
  region: string;
  /** The account of the emulator's resources (moto: 123456789012). */
  account: string;
  /** Services served elsewhere than `upstream` (e.g. `{ bedrock: 'http://127.0.0.1:9000' }` for a model double). */
  serviceUpstreams?: Record<string, string>;
  /**
   * Calls signed with a key that is neither a function's nor a session a checked AssumeRole vended:
   * denied (default), or forwarded unchecked and recorded as such (callers that are not functions,
   * such as agents with keys of their own, when they share the endpoint).
   */
  unknownKeys?: 'deny' | 'forward';
  /** Told of each denial as it happens (the stack logs it). */
  onDenial?: (call: CheckedCall) => void;
}

/** One authorisation of one call, as decided. */
export interface CheckedCall {
  function: string;
  service: string;
  operation: string;
  action: string;
  resource: string;
  allowed: boolean;
  /** Why it was denied: no statement allows it, a statement denies it, or the call was not understood. */
  reason?: string;
  /** Forwarded without a decision: the key was neither a function's nor a checked session's (unknownKeys: 'forward'). */
  unchecked?: true;
}

export interface AwsCallChecker {
  /** What the functions get as AWS_ENDPOINT_URL. */
  endpoint: string;
  /** Credentials that identify a function to the checker (any secret works with the emulator). */
  credentialsFor(functionLogicalId: string): { accessKeyId: string; secretAccessKey: string };
  /** The function (or vended session) a SigV4-signed request came from, by its access key id. */
  callerOf(headers: Record<string, string | string[] | undefined>, url?: string): string | undefined;
  /** execute-api:ManageConnections for a Management API call the stack runtime serves itself. */
  checkManagementApiCall(functionLogicalId: string, connectionArn: string): Promise<CheckedCall>;
  /** Every authorisation decided so far, in order. */
  calls(): CheckedCall[];
  /** The denied ones. */
  denials(): CheckedCall[];
  /** Calls forwarded unchecked (unknownKeys: 'forward'). */
  unchecked(): CheckedCall[];
  stop(): Promise<void>;
}

/** `arn:aws:execute-api:<region>:<account>:<apiId>/<stage>/<METHOD>/@connections/<id>`. */
export function connectionArn(p: {
  region: string;
  account: string;
  apiId: string;
  stage: string;
  method: 'POST' | 'GET' | 'DELETE';
  connectionId: string;
}): string {
  return `arn:aws:execute-api:${p.region}:${p.account}:${p.apiId}/${p.stage}/${p.method}/@connections/${p.connectionId}`;
}

/** One line per denial: what a failing suite prints. */
export function formatDenials(denials: CheckedCall[]): string {
  return denials
    .map((d) => `${d.function}: ${d.action} on ${d.resource} (${d.operation}): ${d.reason ?? 'denied'}`)
    .join('\n');
}

/** A 20-character AWS-looking access key id, stable per function. */
function accessKeyFor(functionLogicalId: string): string {
  const digest = createHash('sha256').update(functionLogicalId).digest('hex').toUpperCase();
  return `AKIA${digest.replace(/[^A-Z0-9]/g, '').slice(0, 16)}`;
}

/** Who signed a request: a function's role, or a session of a template role that a checked AssumeRole vended. */
interface Principal {
  /** What calls() records as `function`: the function's logical id, or `<role> session <name>`. */
  label: string;
  identity: RoleIdentity;
  principalArn: string;
  /** The `Policy` of the AssumeRole that made the session: it narrows the role's policies. */
  sessionPolicy?: unknown;
  /** When the session's credentials expire (epoch ms). */
  expiresAt?: number;
}

const xmlField = (xml: string, name: string) => xml.match(new RegExp(`<${name}>([^<]*)</${name}>`))?.[1];

export async function startAwsCallChecker(options: AwsCallCheckerOptions): Promise<AwsCallChecker> {
  const { account, region } = options;
  const roles = roleIdentities(options.template, options.resolve);
  const identities = functionIdentities(options.template, options.resolve, account, roles);
  const guards = resourcePolicies(options.template, options.resolve);
  const byKey = new Map<string, Principal>(
    [...identities.values()].map((f) => [
      accessKeyFor(f.functionLogicalId),
      { label: f.functionLogicalId, identity: f, principalArn: f.principalArn },
    ]),
  );
  const log: CheckedCall[] = [];
  const decisions = new Map<string, Promise<{ allowed: boolean; reason?: string }>>();

  const decide = (principal: Principal, auth: Authorization) => {
    const key = JSON.stringify([
      principal.label,
      principal.principalArn,
      auth.action,
      auth.resource,
      auth.context ?? {},
    ]);
    let decision = decisions.get(key);
    if (!decision) {
      decision = simulate(principal, auth);
      decisions.set(key, decision);
    }
    return decision;
  };

  const simulate = async (
    principal: Principal,
    auth: Authorization,
  ): Promise<{ allowed: boolean; reason?: string }> => {
    const { identity } = principal;
    const resourcePolicy = resourcePolicyFor(guards, auth.action, auth.resource);
    const result = await runSimulation(
      {
        request: {
          principal: principal.principalArn,
          action: auth.action,
          resource: { resource: auth.resource, accountId: account },
          contextVariables: {
            // Lambda reaches AWS over TLS, as the template's deny-insecure-transport policies expect.
            'aws:SecureTransport': 'true',
            'aws:PrincipalArn': identity.roleArn,
            'aws:PrincipalAccount': account,
            'aws:RequestedRegion': region,
            ...auth.context,
          },
        },
        identityPolicies: identity.identityPolicies,
        serviceControlPolicies: [],
        resourceControlPolicies: [],
        ...(resourcePolicy ? { resourcePolicy } : {}),
        ...(principal.sessionPolicy ? { sessionPolicy: principal.sessionPolicy } : {}),
      },
      {},
    );
    if (result.resultType === 'error') {
      const { message, ...details } = result.errors;
      return { allowed: false, reason: `not evaluable: ${message} ${JSON.stringify(details)}` };
    }
    if (result.overallResult === 'Allowed') return { allowed: true };
    return {
      allowed: false,
      reason:
        result.overallResult === 'ExplicitlyDenied'
          ? 'a Deny statement matches'
          : `no statement of ${identity.roleLogicalId}'s policies${principal.sessionPolicy ? ' and the session policy' : ''} allows it`,
    };
  };

  const record = (call: CheckedCall) => {
    log.push(call);
    if (!call.allowed) options.onDenial?.(call);
    return call;
  };

  /** Decides every authorisation of a described call; the call passes only if all are allowed. */
  const check = async (principal: Principal, described: DescribedRequest): Promise<CheckedCall[]> => {
    const out: CheckedCall[] = [];
    for (const auth of described.authorizations) {
      const base = {
        function: principal.label,
        service: described.service,
        operation: described.operation,
        action: auth.action,
        resource: auth.resource,
      };
      if (principal.expiresAt !== undefined && Date.now() >= principal.expiresAt) {
        const at = new Date(principal.expiresAt).toISOString();
        out.push(record({ ...base, allowed: false, reason: `the session's credentials expired at ${at}` }));
        continue;
      }
      const { allowed, reason } = await decide(principal, auth);
      out.push(record({ ...base, allowed, ...(reason ? { reason } : {}) }));
    }
    return out;
  };

  /** A checked AssumeRole of a template role: its credentials become a principal of their own. */
  const learnSession = (params: URLSearchParams, answer: string) => {
    const identity = roles.get(params.get('RoleArn') ?? '');
    const accessKeyId = xmlField(answer, 'AccessKeyId');
    if (!identity || !accessKeyId) return;
    const session = params.get('RoleSessionName') ?? 'session';
    const policy = params.get('Policy');
    const expiration = Date.parse(xmlField(answer, 'Expiration') ?? '');
    byKey.set(accessKeyId, {
      label: `${identity.roleLogicalId} session ${session}`,
      identity,
      principalArn: sessionPrincipal(account, identity.roleArn, session),
      ...(policy ? { sessionPolicy: JSON.parse(policy) as unknown } : {}),
      ...(Number.isFinite(expiration) ? { expiresAt: expiration } : {}),
    });
  };

  const onRequest = (req: Incoming, res: Outgoing) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void handle(req, Buffer.concat(chunks), res).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`AWS call checker: ${(error as Error).message}`);
      });
    });
  };
  // HTTP/1.1 for most SDK clients; cleartext HTTP/2 for those that default to it (Bedrock Runtime).
  const http1 = createHttpServer(onRequest);
  const http2 = createHttp2Server((req, res) => onRequest(req, res));
  const sockets = new Set<Socket>();
  const server = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.once('data', (first) => {
      socket.pause();
      if (first.subarray(0, H2_PREFACE.length).equals(H2_PREFACE)) {
        http2.emit('connection', replay(socket, first));
      } else {
        socket.unshift(first);
        http1.emit('connection', socket);
        socket.resume();
      }
    });
  });

  const handle = async (req: Incoming, body: Buffer, res: Outgoing) => {
    const raw = {
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      headers: plainHeaders(req.headers),
      body,
    };
    const upstream = (service: string | undefined) =>
      options.serviceUpstreams?.[service ?? ''] ?? options.upstream;
    const described = describeRequest(raw, account);
    const accessKeyId = 'accessKeyId' in described ? described.accessKeyId : undefined;
    const principal = byKey.get(accessKeyId ?? '');
    if (!principal && options.unknownKeys === 'forward') {
      // Not a function's key nor a checked session's: the caller's own business (an agent's keys).
      const service = described.service ?? 'unknown';
      record({
        function: '(not a function)',
        service,
        operation: 'operation' in described ? described.operation : 'unknown',
        action: 'authorizations' in described ? (described.authorizations[0]?.action ?? '') : `${service}:?`,
        resource: 'authorizations' in described ? (described.authorizations[0]?.resource ?? '*') : raw.url,
        allowed: true,
        unchecked: true,
      });
      return forward(upstream(described.service), raw, res);
    }
    const who = principal?.label ?? '(unknown caller)';
    if ('error' in described) {
      const call = record({
        function: who,
        service: described.service ?? 'unknown',
        operation: 'unknown',
        action: `${described.service ?? 'unknown'}:?`,
        resource: raw.url,
        allowed: false,
        reason: described.error,
      });
      return deny(res, raw.method, described.service, call);
    }
    if (!principal) {
      const call = record({
        function: who,
        service: described.service,
        operation: described.operation,
        action: described.authorizations[0]?.action ?? `${described.service}:${described.operation}`,
        resource: described.authorizations[0]?.resource ?? '*',
        allowed: false,
        reason: `access key ${described.accessKeyId} is not one the checker gave a function or saw vended`,
      });
      return deny(res, raw.method, described.service, call);
    }
    const decided = await check(principal, described);
    const denied = decided.find((c) => !c.allowed);
    if (denied) return deny(res, raw.method, described.service, denied);
    if (described.service === 'sts' && described.operation === 'AssumeRole') {
      const params = new URLSearchParams(raw.body.toString('utf8'));
      return forward(upstream(described.service), raw, res, (status, answer) => {
        if (status === 200) learnSession(params, answer.toString('utf8'));
      });
    }
    await forward(upstream(described.service), raw, res);
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    credentialsFor(functionLogicalId) {
      if (!identities.has(functionLogicalId))
        throw new Error(`${functionLogicalId} is not an AWS::Lambda::Function of the template`);
      return { accessKeyId: accessKeyFor(functionLogicalId), secretAccessKey: 'checked-locally' };
    },
    callerOf(headers, url = '/') {
      const scope = signingScope({ headers, url });
      return scope ? byKey.get(scope.accessKeyId)?.label : undefined;
    },
    async checkManagementApiCall(functionLogicalId, connectionArnValue) {
      const principal = byKey.get(accessKeyFor(functionLogicalId));
      const base = {
        function: functionLogicalId,
        service: 'execute-api',
        operation: 'ManageConnections',
        action: 'execute-api:ManageConnections',
        resource: connectionArnValue,
      };
      if (!principal) return record({ ...base, allowed: false, reason: 'no such function in the template' });
      const [call] = await check(principal, {
        service: 'execute-api',
        operation: 'ManageConnections',
        accessKeyId: accessKeyFor(functionLogicalId),
        region,
        authorizations: [{ action: 'execute-api:ManageConnections', resource: connectionArnValue }],
      });
      return call!;
    },
    calls: () => [...log],
    denials: () => log.filter((c) => !c.allowed),
    unchecked: () => log.filter((c) => c.unchecked),
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
