import * as z from 'zod';

/** FastAPI's bool query parsing: true/false, 1/0, yes/no, on/off. */
export const boolQuery = z
  .enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'], { error: 'Input should be a valid boolean' })
  .transform((v) => ['true', '1', 'yes', 'on'].includes(v));
