import type { z } from 'zod';
import { ValidationError, type ValidationIssue } from './errors.js';

export type Location = 'body' | 'query' | 'path';

/** zod issues in FastAPI's `loc/msg/type` form, so clients written for the documented shape keep working. */
export function toIssues(location: Location, error: z.ZodError): ValidationIssue[] {
  return error.issues.map((issue) => {
    const missing = issue.code === 'invalid_type' && /received undefined/.test(issue.message);
    return {
      loc: [location, ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))],
      msg: missing ? 'Field required' : issue.message,
      type: missing ? 'missing' : issue.code,
    };
  });
}

export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, location: Location): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new ValidationError(toIssues(location, result.error));
  return result.data;
}
