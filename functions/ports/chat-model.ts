/**
 * A conversational model (Amazon Bedrock's Converse API in production): text in, text out. The
 * assistant's domain sees only this, so it never touches AWS and tests can point it anywhere.
 */
export interface ChatTurn {
  role: 'user' | 'assistant';
  text: string;
}

export interface ChatRequest {
  system: string;
  messages: ChatTurn[];
  maxTokens: number;
  temperature?: number;
}

export interface ChatReply {
  text: string;
  stopReason?: string;
  usage?: { inputTokens?: number; outputTokens?: number; totalTokens?: number };
}

export interface ChatModel {
  converse(request: ChatRequest): Promise<ChatReply>;
}

/** Why no answer came: the routes turn every one into a 503, never a 500 with the upstream's words. */
export type ModelUnavailableReason =
  'disabled' | 'unreachable' | 'throttled' | 'rejected' | 'timeout' | 'empty';

export class ModelUnavailableError extends Error {
  constructor(
    readonly reason: ModelUnavailableReason,
    message: string,
  ) {
    super(message);
    this.name = 'ModelUnavailableError';
  }
}
