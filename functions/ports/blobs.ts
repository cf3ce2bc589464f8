/** Artifact storage: S3 on AWS, a folder when embedded. */
export interface BlobInfo {
  key: string;
  size: number;
  modifiedAt: string;
}

export interface Blobs {
  put(key: string, body: Uint8Array, contentType?: string): Promise<void>;
  get(key: string): Promise<{ body: Uint8Array; contentType?: string } | undefined>;
  delete(key: string): Promise<boolean>;
  list(prefix: string): Promise<BlobInfo[]>;
  ping(): Promise<void>;
}
