import type { Context } from 'aws-lambda';
import type { HttpEvent, HttpResult } from './http.js';
import type { AnyRoute, RouteGroup, TableRoute } from './route.js';

export type LambdaHttpHandler = (event: HttpEvent, context: Context) => Promise<HttpResult>;

/** One Lambda function of the HTTP API and the routes API Gateway sends to it. */
export interface RouteGroupDef<N extends RouteGroup = RouteGroup> {
  readonly name: N;
  /** The group's routes, each stamped with the group: what the stack integrates with this function. */
  readonly routes: readonly TableRoute[];
  /** Everything the function's router matches: its own routes, or the whole table for `$default`. */
  served(): Promise<readonly AnyRoute[]>;
  /** The Lambda entry: the pipeline over `served()`, built on the first invocation. */
  readonly handler: LambdaHttpHandler;
}

export interface RouteGroupOptions {
  /**
   * The `$default` target serves the whole table: API Gateway sends it paths no route key can
   * match (a trailing `/`, an id holding a raw `/`) and it answers 404/405 for the rest.
   */
  fallback?: () => Promise<readonly AnyRoute[]>;
}

/**
 * Declares a route group. The group's module is the function's entry (`functions/groups/<name>.ts`)
 * and the only place its routes are listed; the route table is the union of the groups.
 */
export function defineRouteGroup<N extends RouteGroup>(
  name: N,
  routes: AnyRoute[],
  options: RouteGroupOptions = {},
): RouteGroupDef<N> {
  const stamped: TableRoute[] = routes.map((r) => Object.freeze({ ...r, group: name }));
  const served = options.fallback ?? (async () => stamped);
  let built: Promise<LambdaHttpHandler> | undefined;
  const build = async (): Promise<LambdaHttpHandler> => {
    // Loaded with the first request so that importing a group (the local runtime, the stack) costs nothing.
    const { httpEntry } = await import('./lambda.js');
    return httpEntry([...(await served())]) as LambdaHttpHandler;
  };
  // On Lambda, start during init (billed less and done before the first request waits on it).
  if (process.env.AWS_LAMBDA_FUNCTION_NAME) built = build();
  return {
    name,
    routes: stamped,
    served,
    handler: async (event, context) => {
      built ??= build();
      return (await built)(event, context);
    },
  };
}
