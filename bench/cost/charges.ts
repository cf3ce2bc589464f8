/**
 * What the meter's record is charged on AWS: which entries count, an operation's units as the
 * report shows them, a month of units in dollars (prices.ts).
 */
import { parseExpression } from '../../functions/core/schedule-expressions.js';
import {
  UNLABELLED,
  addUnits,
  zeroUnits,
  type MeterEntry,
  type Units,
} from '../../functions/metering/meter.js';
import { PRICES, SECONDS_PER_MONTH } from './prices.js';

/** Units of one operation, the fields a reader compares. */
export interface OperationUnits {
  read_units: number;
  write_units: number;
  index_write_units: number;
  dynamo_calls: number;
  sqs_requests: number;
  http_requests: number;
  lambda_invocations: number;
  log_bytes: number;
}

export const round = (n: number, digits = 3) => Math.round(n * 10 ** digits) / 10 ** digits;

export function operationUnits(u: Units, per = 1): OperationUnits {
  return {
    read_units: round(u.readUnits / per),
    write_units: round(u.writeUnits / per),
    index_write_units: round(u.indexWriteUnits / per),
    dynamo_calls: round(u.dynamoCalls / per),
    sqs_requests: round(u.sqsRequests / per),
    http_requests: round(u.httpRequests / per),
    lambda_invocations: round(u.lambdaInvocations / per),
    log_bytes: Math.round(u.logBytes / per),
  };
}

/**
 * What an operation costs on AWS, from what the embedded runtime did:
 * - empty receives are left out: the events queue's poller is a per-deployment cost, and an idle
 *   node's command channel is charged at its long-poll rate instead;
 * - on AWS the agent receives and deletes its commands on its own SQS queue, so the embedded
 *   long-poll and ack routes count only their SQS calls (no API request, Lambda or table read);
 * - the local server's body gate (local/http-server.ts routeGate) checks a request's credential
 *   before any handler runs, outside every operation; API Gateway has no such step (the handler
 *   checks it again, and that read is counted), so unlabelled table and SSM reads are left out.
 */
export function awsCharged(e: MeterEntry): boolean {
  if (e.kind === 'sqs.receive.empty') return false;
  if (e.label === UNLABELLED && (e.kind.startsWith('dynamo.') || e.kind.startsWith('ssm.'))) return false;
  if (e.label === 'GET /agent/commands') return e.kind === 'sqs.receive';
  if (e.label === 'POST /agent/commands/ack') return e.kind.startsWith('sqs.');
  return true;
}

export function divide(u: Units, by: number): Units {
  return addUnits(zeroUnits(), u, 1 / by);
}

/** Firings of a schedule expression in 30 days. */
export function firingsPerMonth(expression: string): number {
  const trigger = parseExpression(expression);
  const start = new Date('2026-01-01T00:00:00Z');
  const end = start.getTime() + SECONDS_PER_MONTH * 1000;
  let count = 0;
  for (let at = trigger.next(start); at && at.getTime() <= end; at = trigger.next(at)) count++;
  return count;
}

/** Dollars per item for a month of units. */
export function price(u: Units, storedBytes: number): Record<string, number> {
  const GB = 1024 ** 3;
  return {
    'API Gateway HTTP API requests': u.httpRequests * PRICES.httpApiPerRequest,
    'Lambda requests': u.lambdaInvocations * PRICES.lambdaPerInvocation,
    'Lambda duration': u.lambdaGbSeconds * PRICES.lambdaPerGbSecond,
    'DynamoDB writes': u.writeUnits * PRICES.dynamoPerWriteUnit,
    'DynamoDB reads': u.readUnits * PRICES.dynamoPerReadUnit,
    'DynamoDB storage': (storedBytes / GB) * PRICES.dynamoPerGbMonth,
    SQS: u.sqsRequests * PRICES.sqsPerRequest,
    'EventBridge Scheduler': u.schedulerInvocations * PRICES.schedulerPerInvocation,
    'CloudWatch Logs': (u.logBytes / GB) * PRICES.logsPerGbIngested,
    'API Gateway WebSocket':
      u.wsMessages * PRICES.wsPerMessage + u.wsConnectionMinutes * PRICES.wsPerConnectionMinute,
    S3: u.s3WriteRequests * PRICES.s3PerWriteRequest + u.s3ReadRequests * PRICES.s3PerReadRequest,
  };
}
