/**
 * Replaced at bundle time (esbuild `define`, lib/bundling.ts) by `"true"`: Lambda bundles serve
 * the OpenAPI document written at synth instead of generating it. Unbundled code (the local
 * runtime, tests) sees it unset and generates the document from the route table.
 */
export const OPENAPI_PREBUILT = 'process.env.FLEET_OPENAPI_PREBUILT';
export const OPENAPI_FILE = 'openapi.json';
