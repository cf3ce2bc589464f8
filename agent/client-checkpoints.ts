import {
  checkpointCommitResponse,
  checkpointRestoreResponse,
  checkpointUploadsResponse,
  type CheckpointFileIn,
  type CheckpointRestoreResponse,
  type CheckpointUploadsResponse,
  type ChunkTransfer,
} from '../protocol/checkpoints.js';
import { ControlPlaneError, ControlPlaneTransport, type CallOptions } from './client-transport.js';
import { call } from './http.js';
import { currentRequestId } from './log.js';
import { AGENT_VERSION } from './version.js';

/** The checkpoint calls of a training run (agent/checkpoints.ts uses them). */
export class CheckpointCalls extends ControlPlaneTransport {
  /** The job's stored checkpoint and where to fetch its chunks, for this node's run. */
  async checkpointRestore(
    jobId: string,
    instanceId: string,
    options: CallOptions = {},
  ): Promise<CheckpointRestoreResponse> {
    const res = await this.withRetry('checkpoint.restore', { attempts: 3, ...options }, (signal) =>
      this.send('checkpoint.restore', 'POST', `/agent/checkpoints/${encodeURIComponent(jobId)}/restore`, {
        body: { instanceId },
        timeoutMs: this.timeouts.resultMs,
        signal,
      }),
    );
    return checkpointRestoreResponse.parse(res);
  }

  async checkpointUploads(
    jobId: string,
    body: { instanceId: string; totalBytes: number; chunks: { hash: string; size: number }[] },
    options: CallOptions = {},
  ): Promise<CheckpointUploadsResponse> {
    const res = await this.withRetry('checkpoint.uploads', { attempts: 3, ...options }, (signal) =>
      this.send('checkpoint.uploads', 'POST', `/agent/checkpoints/${encodeURIComponent(jobId)}/uploads`, {
        body,
        timeoutMs: this.timeouts.resultMs,
        signal,
      }),
    );
    return checkpointUploadsResponse.parse(res);
  }

  async checkpointCommit(
    jobId: string,
    body: { instanceId: string; chunkBytes: number; files: CheckpointFileIn[] },
    options: CallOptions = {},
  ): Promise<void> {
    const res = await this.withRetry('checkpoint.commit', { attempts: 3, ...options }, (signal) =>
      this.send('checkpoint.commit', 'PUT', `/agent/checkpoints/${encodeURIComponent(jobId)}/manifest`, {
        body,
        timeoutMs: this.timeouts.resultMs,
        signal,
      }),
    );
    checkpointCommitResponse.parse(res);
  }

  /**
   * One chunk up or down: an absolute URL is presigned (sent as is, without the node's
   * credential); a path is the control plane's agent route.
   */
  async checkpointChunk(t: ChunkTransfer, body?: Uint8Array, options: CallOptions = {}): Promise<Buffer> {
    const presigned = /^https?:\/\//.test(t.url);
    return this.withRetry('checkpoint.chunk', { attempts: 3, ...options }, async (signal) => {
      const headers: Record<string, string> = { 'user-agent': `fleet-agent/${AGENT_VERSION}`, ...t.headers };
      if (!presigned) headers['x-request-id'] = currentRequestId();
      if (body) headers['content-type'] = 'application/octet-stream';
      if (!presigned && this.token) headers['authorization'] = `Bearer ${this.token}`;
      const timeout = AbortSignal.timeout(this.timeouts.resultMs * 4);
      const res = await call(presigned ? t.url : `${this.baseUrl}${t.url}`, {
        method: body ? 'PUT' : 'GET',
        headers,
        ...(body ? { body } : {}),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      if (res.statusCode < 200 || res.statusCode >= 300)
        throw new ControlPlaneError('checkpoint.chunk', res.statusCode, presigned ? '' : res.text);
      return res.bytes;
    });
  }
}
