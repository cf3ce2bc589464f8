import type { BedrockRuntimeClient, ConverseCommandOutput } from '@aws-sdk/client-bedrock-runtime';
import type { Config } from '../core/config.js';
import {
  ModelUnavailableError,
  type ChatModel,
  type ChatReply,
  type ChatRequest,
} from '../ports/chat-model.js';

export type BedrockSettings = Pick<
  Config,
  'AI_MODEL_ID' | 'AI_REGION' | 'AI_ENDPOINT_URL' | 'AI_TIMEOUT_MS' | 'AWS_REGION' | 'AWS_ENDPOINT_URL'
>;

/** Errors Bedrock answers with, by what they mean for the caller. */
const THROTTLED = new Set(['ThrottlingException', 'ServiceQuotaExceededException']);
const REJECTED = new Set([
  'ValidationException',
  'AccessDeniedException',
  'ResourceNotFoundException',
  'UnrecognizedClientException',
]);
const TIMEOUT = new Set(['ModelTimeoutException', 'TimeoutError', 'AbortError']);

/** Amazon Bedrock Runtime's Converse API behind the ChatModel port. */
export class BedrockChatModel implements ChatModel {
  private apiPromise?: Promise<{
    client: BedrockRuntimeClient;
    m: typeof import('@aws-sdk/client-bedrock-runtime');
  }>;

  constructor(private readonly settings: BedrockSettings) {}

  /** The SDK loads on first use: the fleet function carries the AI routes, few requests call them. */
  private api() {
    return (this.apiPromise ??= (async () => {
      const m = await import('@aws-sdk/client-bedrock-runtime');
      const region = this.settings.AI_REGION ?? this.settings.AWS_REGION;
      // The SDK would follow AWS_ENDPOINT_URL to an emulator that serves no Bedrock: name the endpoint.
      const endpoint =
        this.settings.AI_ENDPOINT_URL ??
        (this.settings.AWS_ENDPOINT_URL ? `https://bedrock-runtime.${region}.amazonaws.com` : undefined);
      const client = new m.BedrockRuntimeClient({
        region,
        ...(endpoint ? { endpoint } : {}),
        // One retry: the request waits behind API Gateway's 29 s.
        maxAttempts: 2,
      });
      return { client, m };
    })());
  }

  async converse(request: ChatRequest): Promise<ChatReply> {
    let out: ConverseCommandOutput;
    try {
      const { client, m } = await this.api();
      out = await client.send(
        new m.ConverseCommand({
          modelId: this.settings.AI_MODEL_ID,
          system: [{ text: request.system }],
          messages: request.messages.map((m) => ({ role: m.role, content: [{ text: m.text }] })),
          inferenceConfig: {
            maxTokens: request.maxTokens,
            ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
          },
        }),
        { abortSignal: AbortSignal.timeout(this.settings.AI_TIMEOUT_MS) },
      );
    } catch (error) {
      throw toUnavailable(error);
    }
    const text = (out.output?.message?.content ?? [])
      .map((c) => ('text' in c && typeof c.text === 'string' ? c.text : ''))
      .join('')
      .trim();
    if (!text) throw new ModelUnavailableError('empty', 'The AI model returned no text');
    return {
      text,
      ...(out.stopReason ? { stopReason: out.stopReason } : {}),
      ...(out.usage
        ? {
            usage: {
              inputTokens: out.usage.inputTokens,
              outputTokens: out.usage.outputTokens,
              totalTokens: out.usage.totalTokens,
            },
          }
        : {}),
    };
  }

  destroy(): void {
    void this.apiPromise?.then(({ client }) => client.destroy());
  }
}

/** Our own words only: Bedrock's messages may quote the request. */
function toUnavailable(error: unknown): ModelUnavailableError {
  const name = (error as { name?: string })?.name ?? 'Error';
  if (THROTTLED.has(name))
    return new ModelUnavailableError(
      'throttled',
      `The AI model is throttling requests (${name}); try again shortly`,
    );
  if (REJECTED.has(name))
    return new ModelUnavailableError(
      'rejected',
      `The AI model refused the request (${name}); check AI_MODEL_ID, AI_REGION and model access`,
    );
  if (TIMEOUT.has(name)) return new ModelUnavailableError('timeout', 'The AI model did not answer in time');
  return new ModelUnavailableError('unreachable', `The AI model is unreachable (${name})`);
}
