/**
 * AWS list prices, us-east-1, 2026, on-demand, no free tier: the only place the cost model reads
 * dollars from. Sources: the figures issue 16 gives (each AWS pricing page below), checked by the
 * reader against the page when prices change.
 */
export const PRICES = {
  /** https://aws.amazon.com/api-gateway/pricing/ : HTTP APIs, first 300 M requests a month. */
  httpApiPerRequest: 1.0 / 1e6,
  /** https://aws.amazon.com/lambda/pricing/ : requests. */
  lambdaPerInvocation: 0.2 / 1e6,
  /** https://aws.amazon.com/lambda/pricing/ : duration, arm64 (Graviton), first 7.5 billion GB-s. */
  lambdaPerGbSecond: 0.0000133334,
  /** https://aws.amazon.com/dynamodb/pricing/on-demand/ : write request units. */
  dynamoPerWriteUnit: 0.625 / 1e6,
  /** https://aws.amazon.com/dynamodb/pricing/on-demand/ : read request units. */
  dynamoPerReadUnit: 0.125 / 1e6,
  /** https://aws.amazon.com/dynamodb/pricing/on-demand/ : storage, Standard table class. */
  dynamoPerGbMonth: 0.25,
  /** https://aws.amazon.com/sqs/pricing/ : standard queues, 64 KB chunks. */
  sqsPerRequest: 0.4 / 1e6,
  /** https://aws.amazon.com/eventbridge/pricing/ : Scheduler invocations (API calls are not charged). */
  schedulerPerInvocation: 1.0 / 1e6,
  /** https://aws.amazon.com/cloudwatch/pricing/ : Logs, standard ingestion. */
  logsPerGbIngested: 0.5,
  /** https://aws.amazon.com/api-gateway/pricing/ : WebSocket APIs, messages in 32 KB chunks. */
  wsPerMessage: 1.0 / 1e6,
  /** https://aws.amazon.com/api-gateway/pricing/ : WebSocket APIs, connection minutes. */
  wsPerConnectionMinute: 0.25 / 1e6,
  /** https://aws.amazon.com/s3/pricing/ : S3 Standard PUT, COPY, POST, LIST (not among the figures). */
  s3PerWriteRequest: 0.005 / 1000,
  /** https://aws.amazon.com/s3/pricing/ : S3 Standard GET and the others. */
  s3PerReadRequest: 0.0004 / 1000,
  /** https://aws.amazon.com/systems-manager/pricing/ : Parameter Store standard parameters, standard throughput. */
  ssmPerCall: 0,
} as const;

/** Reference points for the per-node figure (list prices, same region and year). */
export const ANCHORS = [
  {
    name: 'AWS IoT Greengrass',
    usd: 0.16,
    per: 'device-month',
    source: 'https://aws.amazon.com/greengrass/pricing/',
  },
  {
    name: 'Amazon ECS Anywhere',
    usd: 7.4,
    per: 'instance-month',
    source: 'https://aws.amazon.com/ecs/anywhere/pricing/',
  },
  {
    name: 'Nomad server cluster (3 small instances, self-hosted)',
    usd: 75,
    per: 'month, flat',
    source: 'issue 16',
  },
] as const;

export const SECONDS_PER_MONTH = 30 * 24 * 3600;
