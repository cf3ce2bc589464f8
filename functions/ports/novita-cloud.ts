/**
 * The Novita cloud as this service sees it: a plain port, so the domain never touches HTTP and
 * tests can swap the endpoint. Shapes follow the Novita GPU instance API (v1); fields the
 * domain does not use are left out.
 */

export interface NovitaProduct {
  id: string;
  name: string;
  /** Whether Novita can deploy it now. */
  availableDeploy: boolean;
  regions: string[];
  /** On-demand price per GPU hour, in Novita's units (compared, never converted). */
  price: number;
  spotPrice?: number;
  minRootFS?: number;
  maxRootFS?: number;
}

export interface NovitaTemplate {
  id: string;
  name: string;
  imageUrl: string;
  imageAuth?: string;
  /** `"8888/http, 22/tcp"`, as create takes it. */
  ports?: string;
  envs?: { key: string; value: string }[];
  command?: string;
}

export interface NovitaCreate {
  name: string;
  productId: string;
  gpuNum: number;
  rootfsSize: number;
  imageUrl: string;
  imageAuth?: string;
  ports?: string;
  envs?: { key: string; value: string }[];
  command?: string;
  clusterId?: string;
  kind: 'gpu';
  billingMode: 'onDemand' | 'spot';
}

export interface NovitaPortMapping {
  port: number;
  endpoint: string;
  type: string;
}

export interface NovitaInstance {
  id: string;
  name: string;
  status: string;
  clusterId?: string;
  productId?: string;
  productName?: string;
  billingMode?: string;
  statusError?: { state?: string; message?: string };
  portMappings: NovitaPortMapping[];
  connectComponentSSH?: { command?: string; user?: string };
  connectComponentWebTerminal?: { url?: string };
  connectComponentJupyter?: { url?: string };
  spotStatus?: string;
  /** `"0"` until a spot reclaim starts. */
  spotReclaimTime?: string;
}

/** The Secrets port name of the Novita API key (SSM SecureString `<SECRETS_PREFIX>novita-api-key`). */
export const NOVITA_KEY_SECRET = 'novita-api-key';

export interface NovitaCloud {
  listProducts(filter: { productName?: string; gpuNum?: number }): Promise<NovitaProduct[]>;
  getTemplate(templateId: string): Promise<NovitaTemplate | undefined>;
  createInstance(request: NovitaCreate): Promise<{ id: string }>;
  getInstance(instanceId: string): Promise<NovitaInstance | undefined>;
  /** One page; pageNum starts at 1. */
  listInstances(page: { pageNum: number; pageSize: number }): Promise<NovitaInstance[]>;
  /** Returns the instance id after the migration (Novita's answer, or the same id). */
  migrateInstance(instanceId: string): Promise<{ id: string }>;
  /** Terminates and removes the instance (POST /gpu/instance/delete). */
  deleteInstance(instanceId: string): Promise<void>;
  /** A cheap authenticated call, for /health. */
  ping(): Promise<void>;
}

/**
 * A failed call to Novita. `status` is Novita's HTTP status (0: no answer); `code` its error code
 * when it sent one (INSUFFICIENT_RESOURCE). Messages never hold the API key.
 */
export class NovitaApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code?: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'NovitaApiError';
  }
}

/** No `novita-api-key` secret is set. */
export class NovitaKeyMissingError extends NovitaApiError {
  constructor(secretName: string) {
    super(401, `No Novita API key is configured (secret ${secretName})`, 'KEY_MISSING');
    this.name = 'NovitaKeyMissingError';
  }
}
