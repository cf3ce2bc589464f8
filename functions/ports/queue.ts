/** A message queue with at-least-once delivery (SQS semantics). */
export interface ReceivedMessage {
  messageId: string;
  body: string;
  receiptHandle: string;
  /** How many times this message has been received, this time included. */
  receiveCount: number;
  sentAt: number;
}

export interface QueueDefinition {
  /** Logical name; adapters add the deployment prefix. */
  name: string;
  visibilityTimeoutSeconds?: number;
  /** Messages received more often than this go to `<name>-dlq`. */
  maxReceiveCount?: number;
}

export interface ReceiveOptions {
  maxMessages?: number;
  /** Long-poll wait, 0-20 s. */
  waitSeconds?: number;
  visibilityTimeoutSeconds?: number;
  signal?: AbortSignal;
}

export interface Queue {
  ensure(definition: QueueDefinition): Promise<void>;
  send(queue: string, body: string, options?: { delaySeconds?: number }): Promise<string>;
  sendBatch(queue: string, bodies: string[]): Promise<string[]>;
  receive(queue: string, options?: ReceiveOptions): Promise<ReceivedMessage[]>;
  delete(queue: string, receiptHandle: string): Promise<void>;
  deleteBatch(queue: string, receiptHandles: string[]): Promise<void>;
  changeVisibility(queue: string, receiptHandle: string, timeoutSeconds: number): Promise<void>;
  /**
   * Makes every message in flight visible again; how many. In-process queues only: an agent that
   * registers anew (restarted) holds none of its node's in-flight commands, which its killed
   * predecessor received. SQS has no such call: there they come back after the visibility timeout.
   */
  releaseInFlight?(queue: string): Promise<number>;
  /** Removes a queue and its dead-letter queue (a deregistered node's command queue). */
  remove(queue: string): Promise<void>;
  ping(): Promise<void>;
  /** The queue's address for consumers outside this process (SQS URL); absent for in-process queues. */
  url?(queue: string): Promise<string>;
}

export const dlqName = (queue: string) => `${queue}-dlq`;
