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
  /**
   * A URL that lets its holder GET or PUT this one key for `expiresSeconds`, without credentials
   * of its own (S3 presigned URLs). Absent where the store has no such URLs (the local folder).
   * `sha256` (hex) on a PUT: the body's SHA-256 is signed into the URL, so the store refuses any
   * other body (S3's x-amz-checksum-sha256).
   */
  presign?(
    method: 'GET' | 'PUT',
    key: string,
    expiresSeconds: number,
    options?: { sha256?: string },
  ): Promise<PresignedUrl>;
}

export interface PresignedUrl {
  url: string;
  /** Headers the request must carry as signed. */
  headers: Record<string, string>;
}
