import { HttpError } from '../core/errors.js';

/**
 * multipart/form-data through the platform's own parser (the Fetch API's `Request.formData()`,
 * undici in Node): no hand-written boundary scanning. The size limit is checked on the raw body
 * before parsing, so an oversized upload costs no parse.
 */

export interface UploadedFile {
  field: string;
  filename: string;
  contentType: string;
  data: Buffer;
}

export interface MultipartBody {
  fields: Record<string, string>;
  files: UploadedFile[];
}

export async function parseMultipart(
  rawBody: Buffer | undefined,
  contentType: string | undefined,
  maxBytes: number,
): Promise<MultipartBody> {
  if (!contentType || !/^multipart\/form-data\s*;/i.test(contentType) || !/boundary=/i.test(contentType))
    throw new HttpError(
      415,
      'Content-Type must be multipart/form-data with a boundary',
      'UNSUPPORTED_MEDIA_TYPE',
    );
  if (!rawBody?.length) throw new HttpError(400, 'Empty multipart body', 'BAD_REQUEST');
  if (rawBody.length > maxBytes)
    throw new HttpError(413, `Upload exceeds ${maxBytes} bytes`, 'PAYLOAD_TOO_LARGE');
  let form: FormData;
  try {
    form = await new Request('http://multipart.local/', {
      method: 'POST',
      headers: { 'content-type': contentType },
      body: rawBody,
    }).formData();
  } catch (error) {
    throw new HttpError(400, `Malformed multipart body: ${(error as Error).message}`, 'BAD_REQUEST');
  }
  const out: MultipartBody = { fields: {}, files: [] };
  for (const [field, value] of form.entries()) {
    if (typeof value === 'string') {
      if (!(field in out.fields)) out.fields[field] = value;
    } else {
      out.files.push({
        field,
        filename: value.name,
        contentType: value.type || 'application/octet-stream',
        data: Buffer.from(await value.arrayBuffer()),
      });
    }
  }
  return out;
}
