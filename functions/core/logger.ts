import { randomUUID } from 'node:crypto';
import { LogFormatter, LogItem, Logger } from '@aws-lambda-powertools/logger';
import type { LogAttributes } from '@aws-lambda-powertools/logger/types';
import { redact } from '../../protocol/log.js';
import type { Config } from './config.js';
import { currentLogContext } from './log-context.js';

type Unformatted = Parameters<LogFormatter['formatAttributes']>[0];

/** Lines outside any request or event (start-up, a Lambda's init) carry the process's own id. */
const PROCESS_REQUEST_ID = `process-${randomUUID()}`;

/**
 * The agent's field names (protocol/log.ts): `timestamp`, `level`, `message`, `service`, then the
 * request id and command id of the work in progress, the X-Ray trace id on AWS, and the line's own
 * fields with secret-looking ones redacted.
 */
class FleetLogFormatter extends LogFormatter {
  override formatAttributes(attributes: Unformatted, additional: LogAttributes): LogItem {
    const ids = currentLogContext();
    return new LogItem({
      attributes: {
        timestamp: this.formatTimestamp(attributes.timestamp),
        level: attributes.logLevel,
        message: attributes.message,
        service: attributes.serviceName,
        requestId: ids.requestId ?? PROCESS_REQUEST_ID,
        ...(ids.commandId ? { commandId: ids.commandId } : {}),
        ...(ids.clientRequestId ? { clientRequestId: ids.clientRequestId } : {}),
        ...(attributes.xRayTraceId ? { xray_trace_id: attributes.xRayTraceId } : {}),
      },
    }).addAttributes(redact(additional) as LogAttributes);
  }
}

/** Structured JSON logs; SILENT maps to Powertools' silent level for tests. */
export function createLogger(config: Pick<Config, 'LOG_LEVEL' | 'SERVICE_NAME'>): Logger {
  return new Logger({
    serviceName: config.SERVICE_NAME,
    logLevel: config.LOG_LEVEL === 'SILENT' ? 'SILENT' : config.LOG_LEVEL,
    logFormatter: new FleetLogFormatter(),
  });
}
