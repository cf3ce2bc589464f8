/** Where install.sh's downloads are kept on AWS (too big for a Lambda answer): fetched by a short-lived URL. */
export interface InstallFiles {
  /** A URL that downloads `file` for `seconds`; undefined when there is no such file. */
  downloadUrl(file: string, seconds: number): Promise<string | undefined>;
}
