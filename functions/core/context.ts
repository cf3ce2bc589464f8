import type { Logger } from '@aws-lambda-powertools/logger';
import type { Config } from './config.js';
import type { ConnectionSender } from '../ports/connections.js';
import type { Blobs } from '../ports/blobs.js';
import type { ChatModel } from '../ports/chat-model.js';
import type { InstallFiles } from '../ports/install-files.js';
import type { NovitaCloud } from '../ports/novita-cloud.js';
import type { RunLauncher } from '../ports/run-launcher.js';
import type { NodeCredentials } from '../ports/node-credentials.js';
import type { Queue } from '../ports/queue.js';
import type { Scheduler } from '../ports/scheduler.js';
import type { Secrets } from '../ports/secrets.js';
import type { Store } from '../ports/store.js';

/** Everything a handler may use. Built once per process (Lambda container or local runtime). */
export interface AppContext {
  config: Config;
  store: Store;
  queue: Queue;
  scheduler: Scheduler;
  secrets: Secrets;
  blobs: Blobs;
  logger: Logger;
  /** Epoch milliseconds; injectable so tests control time. */
  now: () => number;
  /** When this process started, for `uptime`. */
  startedAt: number;
  /** Which adapters are wired: lambda (AWS), emulator (AWS_ENDPOINT_URL) or embedded. */
  mode: 'lambda' | 'emulator' | 'embedded';
  /** Extra dependency probes for /health (the node engine, the Novita API, ...). */
  probes?: Record<string, () => Promise<void>>;
  /** Vends agents credentials for their own command queue; absent when embedded (commands come over HTTP). */
  nodeCredentials?: NodeCredentials;
  /** Pushes frames to WebSocket connections; absent where no WebSocket API is wired (publishing is then a no-op). */
  connections?: ConnectionSender;
  /** The AI assistant's model (Bedrock's Converse API); absent where none is wired. */
  chatModel?: ChatModel;
  /** Novita's cloud API (the HTTP adapter at NOVITA_BASE_URL). */
  novita: NovitaCloud;
  /** How training runs reach the fleet; the fleet itself unless set (tests and the bench put their own). */
  launcher?: RunLauncher;
  /** Reads ORIGIN_SECRET_PARAMETER (functions/core/origin.ts); absent where none is set or no SSM is wired. */
  originSecret?: () => Promise<string | undefined>;
  /** install.sh's downloads on AWS (INSTALL_ASSETS_BUCKET); absent: served from INSTALL_ASSETS_DIR. */
  installFiles?: InstallFiles;
}
