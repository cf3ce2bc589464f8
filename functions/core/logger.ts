import { Logger } from '@aws-lambda-powertools/logger';
import type { Config } from './config.js';

/** Structured JSON logs; SILENT maps to Powertools' silent level for tests. */
export function createLogger(config: Pick<Config, 'LOG_LEVEL' | 'SERVICE_NAME'>): Logger {
  return new Logger({
    serviceName: config.SERVICE_NAME,
    logLevel: config.LOG_LEVEL === 'SILENT' ? 'SILENT' : config.LOG_LEVEL,
  });
}
