import type { Logger } from '@aws-lambda-powertools/logger';

/** One INFO line per this many agent requests that went well; the rest at DEBUG. */
export const AGENT_LOG_SAMPLE = 100;
let agentRequests = 0;

/**
 * The access line of a request. Agent traffic (heartbeats, command polls, results: nearly every
 * request of a fleet) logs at DEBUG with every hundredth at INFO, so the flow stays visible without
 * paying CloudWatch for a line per heartbeat; an agent request that failed always logs at INFO.
 */
export function logRequest(
  logger: Logger,
  line: { requestId: string; method: string; path: string; status?: number; durationMs: number },
): void {
  if (!line.path.startsWith('/agent/') || (line.status ?? 200) >= 400) {
    logger.info('request', line);
    return;
  }
  if (agentRequests++ % AGENT_LOG_SAMPLE === 0)
    logger.info('request', { ...line, sampled: AGENT_LOG_SAMPLE });
  else logger.debug('request', line);
}
