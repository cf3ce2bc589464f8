import type { AppContext } from '../core/context.js';
import { LORAS_PREFIX } from '../cluster/outputs.js';

/** LoRAs uploaded for image jobs: files under loras/ in blobs, named by their file name less its extension. */

/** Largest LoRA accepted. On AWS the API Gateway + Lambda payload limit (~6 MB) is lower still. */
export const LORA_MAX_BYTES = 50 * 1024 * 1024;
export const LORA_EXTENSIONS = ['.safetensors', '.pt', '.ckpt', '.bin'];

export interface LoraInfo {
  name: string;
  filename: string;
  size: number;
  uploaded_at: string;
}

export async function listLoras(ctx: AppContext): Promise<LoraInfo[]> {
  return (await ctx.blobs.list(LORAS_PREFIX))
    .map((b) => {
      const filename = b.key.slice(LORAS_PREFIX.length);
      const ext = LORA_EXTENSIONS.find((e) => filename.toLowerCase().endsWith(e));
      return {
        name: ext ? filename.slice(0, -ext.length) : filename,
        filename,
        size: b.size,
        uploaded_at: b.modifiedAt,
      };
    })
    .filter((l) => !l.filename.includes('/'));
}

/** By name (`detail_enhancer`) or file name (`detail_enhancer.safetensors`). */
export function findLora(loras: LoraInfo[], name: string): LoraInfo | undefined {
  return loras.find((l) => l.name === name) ?? loras.find((l) => l.filename === name);
}
