import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseMultipart } from '../../../functions/cluster/multipart.js';
import { HttpError } from '../../../functions/core/errors.js';

/** Encodes a form the way a browser or `fetch` does: the raw body and its content type. */
async function encode(form: FormData): Promise<{ body: Buffer; contentType: string }> {
  const req = new Request('http://x/', { method: 'POST', body: form });
  return { body: Buffer.from(await req.arrayBuffer()), contentType: req.headers.get('content-type')! };
}

async function status(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 0;
  } catch (error) {
    return (error as HttpError).status;
  }
}

describe('parseMultipart', () => {
  it('returns fields and files, bytes intact', async () => {
    const bytes = Buffer.from([0, 1, 2, 255, 13, 10, 45, 45, 0x80]);
    const form = new FormData();
    form.append('name', 'my_lora');
    form.append('file', new Blob([bytes], { type: 'application/octet-stream' }), 'lora_file.safetensors');
    const { body, contentType } = await encode(form);
    const out = await parseMultipart(body, contentType, 1024);
    expect(out.fields).toEqual({ name: 'my_lora' });
    expect(out.files).toHaveLength(1);
    expect(out.files[0]).toMatchObject({
      field: 'file',
      filename: 'lora_file.safetensors',
      contentType: 'application/octet-stream',
    });
    expect(out.files[0]!.data.equals(bytes)).toBe(true);
  });

  it('keeps any binary content byte for byte, boundary-like sequences included', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 2048 }),
        fc.string({ maxLength: 40 }),
        async (data, text) => {
          const form = new FormData();
          form.append('note', text);
          form.append('file', new Blob([Buffer.concat([Buffer.from('\r\n--'), Buffer.from(data)])]), 'f.bin');
          const { body, contentType } = await encode(form);
          const out = await parseMultipart(body, contentType, 1 << 20);
          expect(out.files[0]!.data.equals(Buffer.concat([Buffer.from('\r\n--'), Buffer.from(data)]))).toBe(
            true,
          );
          expect(out.fields.note).toBe(text.replace(/\r\n|\r|\n/g, '\r\n'));
        },
      ),
      { numRuns: 50 },
    );
  });

  it('refuses an oversized body before parsing it (413)', async () => {
    const form = new FormData();
    form.append('file', new Blob([Buffer.alloc(2048)]), 'big.safetensors');
    const { body, contentType } = await encode(form);
    expect(await status(parseMultipart(body, contentType, 1024))).toBe(413);
  });

  it('refuses a body that is not multipart (415), an empty one and a malformed one (400)', async () => {
    expect(await status(parseMultipart(Buffer.from('{}'), 'application/json', 1024))).toBe(415);
    expect(await status(parseMultipart(Buffer.from('x'), 'multipart/form-data', 1024))).toBe(415);
    expect(await status(parseMultipart(undefined, 'multipart/form-data; boundary=abc', 1024))).toBe(400);
    expect(
      await status(
        parseMultipart(Buffer.from('garbage without parts'), 'multipart/form-data; boundary=abc', 1024),
      ),
    ).toBe(400);
  });
});
