/** Short-lived AWS credentials for one node's command queue (STS on AWS; none when embedded). */
export interface QueueCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  /** ISO 8601; the holder asks again before then. */
  expiration: string;
}

export interface NodeCredentials {
  /** Credentials that may receive, delete and extend the messages of this one queue and nothing else. */
  forQueue(queueUrl: string, sessionName: string): Promise<QueueCredentials>;
}
