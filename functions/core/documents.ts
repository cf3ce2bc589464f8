/**
 * Which of the five API documents a path belongs to, and the status each gives invalid input:
 * the NVIDIA orchestrator's FastAPI 422, the others' 400. Our own routes (`/agent/*`, `/metrics`,
 * `/openapi.json`, the docs) answer as FastAPI does. One table, read by the HTTP pipeline and
 * the OpenAPI generator.
 */
export type ApiDocument = 'nvidia' | 'cluster' | 'training' | 'fleet' | 'novita' | 'own';

const BY_PREFIX: readonly [RegExp, ApiDocument][] = [
  [/^\/api\/(instances|metrics|migration)(\/|$)/, 'novita'],
  [/^\/api\//, 'fleet'],
  [/^\/(jobs|stats)(\/|$)/, 'training'],
  [/^\/(workers|tasks|models|cluster)(\/|$)/, 'cluster'],
  [/^\/(start|containers|images|registry|system|test|health)(\/|$)/, 'nvidia'],
];

export function documentOf(path: string): ApiDocument {
  return BY_PREFIX.find(([re]) => re.test(path))?.[1] ?? 'own';
}

/** The status of a request whose fields do not validate. */
export function invalidInputStatus(path: string): 400 | 422 {
  const doc = documentOf(path);
  return doc === 'nvidia' || doc === 'own' ? 422 : 400;
}
