import type * as z from 'zod';
import { ValidationError, type ValidationIssue } from './errors.js';
import { hasControlCharacters } from './limits.js';

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

/**
 * A free-form name: normalised to Unicode NFC (so one name has one spelling, and one guard record),
 * refused when it holds control, zero-width or bidirectional-override characters.
 */
export function displayName<S extends z.ZodString>(schema: S) {
  return schema
    .normalize('NFC')
    .refine((s) => !hasControlCharacters(s), 'Names must not contain control, zero-width or bidirectional-override characters');
}
