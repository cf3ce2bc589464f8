import { ConditionalCheckFailedException, type AttributeValue } from '@aws-sdk/client-dynamodb';
import {
  BatchWriteCommand,
  DeleteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { marshall, unmarshall, type marshallOptions } from '@aws-sdk/util-dynamodb';

type Item = Record<string, unknown>;
type Wire = Record<string, AttributeValue>;
/** Sends one DynamoDB JSON request to the engine and gives back its JSON answer (or error body). */
export type EngineCall = (operation: string, body: object) => Promise<{ status: number; body: Item }>;

const MARSHALL: marshallOptions = { removeUndefinedValues: true, convertClassInstanceToMap: true };
const wire = (item: Item | undefined): Wire | undefined => (item ? marshall(item, MARSHALL) : undefined);
const plain = (item: Wire | undefined): Item | undefined => (item ? unmarshall(item) : undefined);

/**
 * The document client's six commands the store sends (dynamo-store.ts), straight to the embedded
 * engine in this process: the same DynamoDB JSON the SDK would send, marshalled and unmarshalled as
 * its document client does, without the SDK's per-call middleware (endpoint, auth, serde
 * schemas). Errors come back as the SDK's: ConditionalCheckFailedException, else one named after
 * the engine's `__type` (ValidationException, ...).
 */
export class EmbeddedDocument {
  constructor(
    private readonly call: EngineCall,
    private readonly track: <T>(work: () => Promise<T>) => Promise<T> = (work) => work(),
  ) {}

  send(command: object): Promise<Item> {
    return this.track(() => this.dispatch(command));
  }

  private async dispatch(command: object): Promise<Item> {
    if (command instanceof GetCommand) {
      const out = await this.request('GetItem', { ...command.input, Key: wire(command.input.Key) });
      return { Item: plain(out.Item as Wire | undefined) };
    }
    if (command instanceof PutCommand) {
      const i = command.input;
      await this.request('PutItem', {
        ...i,
        Item: wire(i.Item),
        ExpressionAttributeValues: wire(i.ExpressionAttributeValues),
      });
      return {};
    }
    if (command instanceof UpdateCommand || command instanceof DeleteCommand) {
      const i = command.input;
      const op = command instanceof UpdateCommand ? 'UpdateItem' : 'DeleteItem';
      const out = await this.request(op, {
        ...i,
        Key: wire(i.Key),
        ExpressionAttributeValues: wire(i.ExpressionAttributeValues),
      });
      return { Attributes: plain(out.Attributes as Wire | undefined) };
    }
    if (command instanceof QueryCommand) {
      const i = command.input;
      const out = await this.request('Query', {
        ...i,
        ExpressionAttributeValues: wire(i.ExpressionAttributeValues),
        ExclusiveStartKey: wire(i.ExclusiveStartKey),
      });
      return {
        Items: ((out.Items ?? []) as Wire[]).map((w) => unmarshall(w)),
        Count: out.Count,
        LastEvaluatedKey: plain(out.LastEvaluatedKey as Wire | undefined),
      };
    }
    if (command instanceof BatchWriteCommand) {
      const convert = (requests: Item[] | undefined) =>
        (requests ?? []).map((r) => {
          const put = r.PutRequest as { Item: Item } | undefined;
          const del = r.DeleteRequest as { Key: Item } | undefined;
          return put ? { PutRequest: { Item: wire(put.Item) } } : { DeleteRequest: { Key: wire(del!.Key) } };
        });
      const back = (requests: { PutRequest?: { Item: Wire }; DeleteRequest?: { Key: Wire } }[] | undefined) =>
        (requests ?? []).map((r) =>
          r.PutRequest
            ? { PutRequest: { Item: unmarshall(r.PutRequest.Item) } }
            : { DeleteRequest: { Key: unmarshall(r.DeleteRequest!.Key) } },
        );
      const RequestItems = Object.fromEntries(
        Object.entries(command.input.RequestItems ?? {}).map(([t, rs]) => [t, convert(rs as Item[])]),
      );
      const out = await this.request('BatchWriteItem', { RequestItems });
      const left = (out.UnprocessedItems ?? {}) as Record<string, Parameters<typeof back>[0]>;
      return { UnprocessedItems: Object.fromEntries(Object.entries(left).map(([t, rs]) => [t, back(rs)])) };
    }
    throw new Error(`the embedded document client does not send ${command.constructor.name}`);
  }

  private async request(operation: string, body: object): Promise<Item> {
    const out = await this.call(operation, body);
    if (out.status === 200) return out.body;
    const type =
      String(out.body.__type ?? '')
        .split('#')
        .pop() ?? 'UnknownError';
    const message = String(out.body.message ?? out.body.Message ?? type);
    const $metadata = { httpStatusCode: out.status };
    if (type === 'ConditionalCheckFailedException')
      throw new ConditionalCheckFailedException({
        message,
        $metadata,
        ...(out.body.Item ? { Item: out.body.Item as Wire } : {}),
      });
    throw Object.assign(new Error(message), {
      name: type,
      $metadata,
      $fault: out.status >= 500 ? 'server' : 'client',
    });
  }
}
