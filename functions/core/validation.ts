import type * as z from 'zod';
import { ValidationError, type ValidationIssue } from './errors.js';
import { hasControlCharacters } from './limits.js';

export type Location = 'body' | 'query' | 'path';

const TYPE_NAMES: Record<string, string> = {
  string: 'str',
  number: 'float',
  int: 'integer',
  boolean: 'bool',
  object: 'dict',
  record: 'dict',
  array: 'list',
};

/** The NVIDIA document's error `type` (pydantic's `value_error.missing` family) for a zod issue. */
function issueType(issue: z.core.$ZodIssue, missing: boolean): string {
  if (missing) return 'value_error.missing';
  const sized = (issue as { origin?: string }).origin;
  const inclusive = (issue as { inclusive?: boolean }).inclusive !== false;
  switch (issue.code) {
    case 'invalid_type':
      return `type_error.${TYPE_NAMES[issue.expected] ?? issue.expected}`;
    case 'too_small':
      if (sized === 'string') return 'value_error.any_str.min_length';
      if (sized === 'array' || sized === 'set') return 'value_error.list.min_items';
      return inclusive ? 'value_error.number.not_ge' : 'value_error.number.not_gt';
    case 'too_big':
      if (sized === 'string') return 'value_error.any_str.max_length';
      if (sized === 'array' || sized === 'set') return 'value_error.list.max_items';
      return inclusive ? 'value_error.number.not_le' : 'value_error.number.not_lt';
    case 'invalid_value':
      return 'type_error.enum';
    case 'invalid_format':
      return 'value_error.str.regex';
    case 'unrecognized_keys':
      return 'value_error.extra';
    case 'not_multiple_of':
      return 'value_error.number.not_multiple';
    default:
      return 'value_error';
  }
}

/** zod issues in FastAPI's `loc/msg/type` form, so clients written for the documented shape keep working. */
export function toIssues(location: Location, error: z.ZodError): ValidationIssue[] {
  return error.issues.map((issue) => {
    const missing = issue.code === 'invalid_type' && /received undefined/.test(issue.message);
    return {
      loc: [location, ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))],
      msg: missing ? 'field required' : issue.message,
      type: issueType(issue, missing),
    };
  });
}

export function parseOrThrow<S extends z.ZodType>(
  schema: S,
  value: unknown,
  location: Location,
): z.output<S> {
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
    .refine(
      (s) => !hasControlCharacters(s),
      'Names must not contain control, zero-width or bidirectional-override characters',
    );
}
